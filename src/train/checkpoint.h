// Training checkpoints: RUN_DIR/checkpoints/step-NNNNNNNN/ is a Hugging Face model folder (FP32,
// the master weights exactly, the balance biases included, the tokenizer files copied), loadable
// by `dsv3 generate` and by transformers, plus the trainer's state beside it: its own files
// (optimizer moments, EMA) and trainer_state.json (step, data cursor, run fingerprint). Each
// checkpoint is written into a temporary folder and renamed into place only when complete (a full
// disk or a crash leaves the previous one loadable); then all but the newest keep_last are removed.
// A distributed run writes the same folder, each rank its part in place (CheckpointJob).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/json.h"
#include "model/param_store.h"
#include "train/data_parallel.h"

namespace dsv3 {

// Which part of its files a writer of a checkpoint writes: a single process everything (kWhole);
// the ranks of a job write one folder together, rank 0 each file's layout (kLayout: headers and
// sizes, SafetensorsWriter::write_layout), then every rank the values it keeps (kValues).
enum class CheckpointPart { kWhole, kLayout, kValues };

// A checkpoint written by the ranks of a job into one shared folder, none gathering the state:
// `all` holds every rank; `writes` selects the model tensors this rank writes (each tensor by one
// rank).
struct CheckpointJob {
  DataParallelGroup& all;
  std::function<bool(const Param&)> writes;
};

// Writes the checkpoint of `step` and returns its folder ("" on the ranks of a job but its rank
// 0). copy_files: files copied verbatim into the model folder when they exist (tokenizer.json,
// tokenizer_config.json, ...); write_state writes the trainer's files (optimizer moments, EMA)
// into the folder it is given, before the folder is renamed into place, and returns the bytes of
// tensor values it wrote. In a job (job non-null, every rank calls it) the ranks agree after
// each phase, so an error on any rank removes the folder and throws on every rank, and the
// values the ranks wrote must add up to every byte of the folder's tensors (Error otherwise).
std::string write_checkpoint(
    const std::string& run_dir, int64_t step, const ParamStore& params, const Json& meta,
    const std::vector<std::string>& copy_files,
    const std::function<uint64_t(const std::string& dir, CheckpointPart part)>& write_state,
    int keep_last, const CheckpointJob* job = nullptr);

// The newest complete checkpoint folder in run_dir ("" when there is none).
std::string latest_checkpoint(const std::string& run_dir);

// A checkpoint's trainer_state.json, checked: throws Error naming the file when malformed.
class CheckpointState {
 public:
  explicit CheckpointState(const std::string& dir);
  const std::string& dir() const { return dir_; }
  const Json& meta() const { return meta_; }
  int64_t step() const { return step_; }

 private:
  std::string dir_;
  Json meta_;
  int64_t step_ = 0;
};

}  // namespace dsv3

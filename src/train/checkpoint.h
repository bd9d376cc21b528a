// Training checkpoints: RUN_DIR/checkpoints/step-NNNNNNNN/ is a Hugging Face model folder (FP32,
// the master weights exactly, the balance biases included, the tokenizer files copied), loadable
// by `dsv3 generate` and by transformers, plus the trainer's state beside it: its own files
// (optimizer moments, EMA) and trainer_state.json (step, data cursor, run fingerprint). Each
// checkpoint is written into a temporary folder and renamed into place only when complete (a full
// disk or a crash leaves the previous one loadable); then all but the newest keep_last are removed.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/json.h"
#include "model/param_store.h"

namespace dsv3 {

// Writes the checkpoint of `step` and returns its folder. copy_files: files copied verbatim into
// the model folder when they exist (tokenizer.json, tokenizer_config.json, ...); write_state
// writes the trainer's files (optimizer moments, EMA) into the folder it is given, before the
// folder is renamed into place. absent: the values of the experts `params` does not hold (expert
// parallelism: gathered from their owners), so the folder is the whole model.
std::string write_checkpoint(const std::string& run_dir, int64_t step, const ParamStore& params,
                             const Json& meta, const std::vector<std::string>& copy_files,
                             const std::function<void(const std::string& dir)>& write_state,
                             int keep_last, const ParamStore::AbsentValues& absent = {});

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

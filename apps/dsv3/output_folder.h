// The output of a command that writes a model (init, convert): an occupied folder is refused
// unless --force, the disk must have room before the first byte is written, and the new files are
// written into a staging folder inside the output folder, so that the old model stays whole and
// loadable until the new one is complete; only then do the old files go, in one quick sequence of
// renames. An interrupted run leaves only its staging folder, which the next run names (and
// removes with --force).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/staged_folder.h"

namespace dsv3::cli {

class ModelOutput {
 public:
  // Checks `dir`; removes nothing. Refused: a path that is not a folder; without `force`, a
  // non-empty folder, and one holding the temporary files of an unfinished earlier run (named,
  // with how to remove them); with `force` too, a file the new model would replace that is not a
  // regular file (a link, a FIFO: never replaced).
  ModelOutput(std::string dir, bool force);
  ModelOutput(const ModelOutput&) = delete;
  ModelOutput& operator=(const ModelOutput&) = delete;

  const std::string& dir() const { return dir_; }
  // Bytes of leftover temporary files that begin() removes (counted as free space).
  uint64_t leftover_bytes() const { return leftovers_.bytes; }
  // Throws Error (with `hint`) when the disk of `dir` has less than `need` bytes plus a margin for
  // headers and JSON files (1% + 64 MiB, which also leaves the disk usable). The old model stays
  // until commit(), so its bytes are not counted as free.
  void check_free_space(uint64_t need, const std::string& hint) const;

  // After every check: removes the leftovers, creates `dir` and the staging folder in it.
  void begin();
  // Where the command writes every file of the new model (begin() first). A write that does not
  // commit removes it when the ModelOutput goes.
  const std::string& staging() const;
  // Moves the staged files into `dir`: config.json is removed first and put back last (a folder
  // caught in between is never taken for a model), old weight files the new model lacks (shards,
  // index) and the names in `also_remove` are deleted. The staging folder is removed.
  void commit(const std::vector<std::string>& also_remove = {});

 private:
  std::string dir_;
  bool force_;
  Leftovers leftovers_;
  std::optional<StagedFolder> staging_;
};

// For commands that write a model read from `in` into `out` (convert, quantize): refuses an `out`
// that is the input folder itself (its tensors are memory-mapped, and --force would remove them;
// links and other spellings count too).
void check_not_input_folder(const std::string& in, const std::string& out);
// Copies the files of model folder `in` that are not weights (tokenizer.json,
// tokenizer_config.json, generation_config.json) into `to`; returns those `in` lacks, for
// ModelOutput::commit to remove (with --force an old one would not belong to the new model).
std::vector<std::string> copy_model_side_files(const std::string& in, const std::string& to);

// Refuses, before any work, an output file path that write_file_atomic would refuse (a directory,
// a device other than a character device) and one that is a file this command has read as an
// input (links and other spellings of the path included): `option` names it ("--out").
void check_output_file(const std::string& path, const std::string& option);

}  // namespace dsv3::cli

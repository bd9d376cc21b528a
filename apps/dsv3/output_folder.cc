// Output folders of the commands that write a model: refusal without --force, free space, and
// the staged write that replaces the old model only at the end.
#include "apps/dsv3/output_folder.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "base/error.h"
#include "base/file.h"
#include "base/staged_folder.h"
#include "base/strings.h"

namespace dsv3::cli {

namespace fs = std::filesystem;

namespace {

// Free bytes on the file system that holds `dir` (or its nearest existing parent).
uint64_t free_bytes(const std::string& dir) {
  fs::path p = fs::absolute(dir);
  while (!p.empty() && !fs::exists(p) && p != p.parent_path()) p = p.parent_path();
  struct statvfs st;
  if (statvfs(p.c_str(), &st) != 0) throw Error("cannot read the free space of " + p.string());
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

// The files a new model replaces: weights, their index, config.json; and the ones a model folder
// may also get written (generation config, tokenizer).
bool replaced_by_a_model(const std::string& name) {
  return name == "config.json" ||
         (starts_with(name, "model") &&
          (ends_with(name, ".safetensors") || name == "model.safetensors.index.json"));
}
bool written_with_a_model(const std::string& name) {
  return replaced_by_a_model(name) || name == "generation_config.json" ||
         name == "tokenizer.json" || name == "tokenizer_config.json";
}

}  // namespace

ModelOutput::ModelOutput(std::string dir, bool force)
    : dir_(std::move(dir)), force_(force), leftovers_(find_leftovers(dir_)) {
  std::error_code ec;
  if (!fs::exists(dir_, ec)) return;
  if (!fs::is_directory(dir_, ec)) throw Error(dir_ + " exists and is not a folder");
  if (!leftovers_.empty() && !force) leftovers_.refuse();
  std::vector<std::string> others;
  for (const auto& e : fs::directory_iterator(dir_)) {
    const std::string name = e.path().filename().string();
    if (!is_temporary_name(name)) others.push_back(name);
  }
  if (!others.empty() && !force)
    throw Error(dir_ + " is not empty", "choose another folder or pass --force to overwrite");
  // Only regular files are ever replaced: a link could lead into another model's folder.
  for (const std::string& name : others) {
    if (!written_with_a_model(name)) continue;
    const fs::path p = fs::path(dir_) / name;
    if (!fs::is_regular_file(fs::symlink_status(p, ec)))
      throw Error(p.string() + " is " +
                      (fs::is_symlink(fs::symlink_status(p, ec)) ? "a symbolic link"
                                                                 : "not a regular file") +
                      ": a new model replaces only regular files",
                  "remove it (or choose another folder) and run again");
  }
}

void ModelOutput::check_free_space(uint64_t need, const std::string& hint) const {
  const uint64_t room = free_bytes(dir_) + leftovers_.bytes;
  const uint64_t margin = need / 100 + (64ull << 20);
  if (room < need + margin)
    throw Error(dir_ + " needs " + human_bytes(need + margin) + " but its disk has " +
                    human_bytes(room) + " free",
                hint + (force_ ? " (with --force the old model stays until the new one is "
                                 "complete, so the disk must hold both)"
                               : ""));
}

void ModelOutput::begin() {
  leftovers_.remove();
  staging_.emplace(dir_);
}

const std::string& ModelOutput::staging() const {
  DSV3_CHECK(staging_.has_value(), "internal: ModelOutput::staging() before begin()");
  return staging_->path();
}

void ModelOutput::commit(const std::vector<std::string>& also_remove) {
  staging_->commit("config.json", [&](const std::string& name) {
    return replaced_by_a_model(name) ||
           std::find(also_remove.begin(), also_remove.end(), name) != also_remove.end();
  });
}

void check_not_input_folder(const std::string& in, const std::string& out) {
  // equivalent() compares the folders themselves, so links and "a/../b" count too.
  std::error_code ec;
  if (fs::equivalent(in, out, ec))
    throw Error("-o " + out + " is the folder being read (-m " + in + ")",
                "this command writes a new folder; choose another -o (and move it over the old "
                "one afterwards if you mean to replace it)");
}

std::vector<std::string> copy_model_side_files(const std::string& in, const std::string& to) {
  std::vector<std::string> lacking;
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "generation_config.json"}) {
    const std::string src = path_join(in, f);
    if (file_exists(src))
      write_file_atomic(path_join(to, f), read_file(src));
    else
      lacking.emplace_back(f);
  }
  return lacking;
}

void check_output_file(const std::string& path, const std::string& option) {
  if (auto in = input_file_at(path))
    throw Error(option + " " + path + " is " +
                    (*in == path ? "an input of this command" : "the input " + *in) +
                    ": writing there would destroy it",
                "choose another output path");
  check_output_path(path);
}

}  // namespace dsv3::cli

// Output folders of the commands that write a model: refusal without --force, free space, and
// the staged write that replaces the old model only at the end.
#include "apps/dsv3/output_folder.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <set>

#include "base/error.h"
#include "base/file.h"
#include "base/strings.h"

namespace dsv3::cli {

namespace fs = std::filesystem;

namespace {

constexpr char kStagingPrefix[] = "dsv3-tmp.";  // + pid: the staging folder of one run

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

// The temporary files dsv3 leaves when killed: a staging folder, or write_file_atomic's
// "NAME.tmp.PID[.N]" beside a file.
bool is_leftover(const std::string& name) {
  if (starts_with(name, kStagingPrefix)) return true;
  const size_t at = name.rfind(".tmp.");
  if (at == std::string::npos || at + 5 == name.size()) return false;
  return std::all_of(name.begin() + static_cast<std::ptrdiff_t>(at + 5), name.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c)) || c == '.';
  });
}

uint64_t bytes_under(const fs::path& p) {
  std::error_code ec;
  if (!fs::is_directory(fs::symlink_status(p, ec))) {
    const auto n = fs::file_size(p, ec);
    return ec ? 0 : n;
  }
  uint64_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(p, ec))
    if (e.is_regular_file(ec)) n += e.file_size(ec);
  return n;
}

}  // namespace

ModelOutput::ModelOutput(std::string dir, bool force) : dir_(std::move(dir)), force_(force) {
  std::error_code ec;
  if (!fs::exists(dir_, ec)) return;
  if (!fs::is_directory(dir_, ec)) throw Error(dir_ + " exists and is not a folder");
  std::vector<std::string> others;
  for (const auto& e : fs::directory_iterator(dir_)) {
    const std::string name = e.path().filename().string();
    (is_leftover(name) ? leftovers_ : others).push_back(name);
  }
  std::sort(leftovers_.begin(), leftovers_.end());
  for (const std::string& name : leftovers_) leftover_bytes_ += bytes_under(fs::path(dir_) / name);
  if (!leftovers_.empty() && !force) {
    std::string names, rm = "rm -r";
    for (const std::string& n : leftovers_) {
      if (!names.empty()) names.append(", ");
      names.append(n);
      rm.append(" '").append(path_join(dir_, n)).append("'");
    }
    throw Error(dir_ + " holds the temporary files of an unfinished dsv3 run (" + names + ", " +
                    human_bytes(leftover_bytes_) + ")",
                "pass --force to remove them and write the model, or remove them yourself: " + rm);
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

ModelOutput::~ModelOutput() {
  if (committed_ || staging_.empty()) return;
  std::error_code ec;
  fs::remove_all(staging_, ec);
}

void ModelOutput::check_free_space(uint64_t need, const std::string& hint) const {
  const uint64_t room = free_bytes(dir_) + leftover_bytes_;
  const uint64_t margin = need / 100 + (64ull << 20);
  if (room < need + margin)
    throw Error(dir_ + " needs " + human_bytes(need + margin) + " but its disk has " +
                    human_bytes(room) + " free",
                hint + (force_ ? " (with --force the old model stays until the new one is "
                                 "complete, so the disk must hold both)"
                               : ""));
}

void ModelOutput::begin() {
  for (const std::string& name : leftovers_) {
    std::error_code ec;
    fs::remove_all(fs::path(dir_) / name, ec);
    if (ec)
      throw Error("cannot remove " + path_join(dir_, name) + ": " + ec.message(),
                  "remove it yourself and run again");
  }
  make_dirs(dir_);
  staging_ = path_join(dir_, kStagingPrefix + std::to_string(::getpid()));
  std::error_code ec;
  fs::remove_all(staging_, ec);
  make_dirs(staging_);
}

void ModelOutput::commit(const std::vector<std::string>& also_remove) {
  std::set<std::string> staged;
  for (const auto& e : fs::directory_iterator(staging_))
    staged.insert(e.path().filename().string());
  const fs::path dir(dir_);
  auto remove = [&](const std::string& name) {
    std::error_code ec;
    fs::remove(dir / name, ec);
    if (ec) throw Error("cannot remove " + (dir / name).string() + ": " + ec.message());
  };
  auto move_in = [&](const std::string& name) {
    std::error_code ec;
    fs::rename(fs::path(staging_) / name, dir / name, ec);
    if (ec) throw Error("cannot move the new " + name + " into " + dir_ + ": " + ec.message());
  };
  remove("config.json");  // from here until it is back the folder is not a model
  std::vector<std::string> stale;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    const bool listed =
        std::find(also_remove.begin(), also_remove.end(), name) != also_remove.end();
    if ((replaced_by_a_model(name) || listed) && !staged.contains(name)) stale.push_back(name);
  }
  for (const std::string& name : stale) remove(name);
  for (const std::string& name : staged)
    if (name != "config.json") move_in(name);
  if (staged.contains("config.json")) move_in("config.json");
  std::error_code ec;
  fs::remove_all(staging_, ec);
  committed_ = true;
  sync_dir(dir_);
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

#include "base/staged_folder.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <set>
#include <vector>

#include "base/error.h"
#include "base/file.h"
#include "base/strings.h"

namespace dsv3 {

namespace fs = std::filesystem;

namespace {
constexpr char kStagingPrefix[] = "dsv3-tmp.";
}

bool is_temporary_name(const std::string& name) {
  if (starts_with(name, kStagingPrefix)) return true;
  const size_t at = name.rfind(".tmp.");
  if (at == std::string::npos || at + 5 == name.size()) return false;
  return std::all_of(name.begin() + static_cast<std::ptrdiff_t>(at + 5), name.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c)) || c == '.';
  });
}

namespace {
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

Leftovers find_leftovers(const std::string& dir) {
  Leftovers l{dir, {}, 0};
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return l;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (!is_temporary_name(name)) continue;
    l.names.push_back(name);
    l.bytes += bytes_under(e.path());
  }
  std::sort(l.names.begin(), l.names.end());
  return l;
}

void Leftovers::refuse() const {
  std::string list, rm = "rm -r";
  for (const std::string& n : names) {
    if (!list.empty()) list.append(", ");
    list.append(n);
    rm.append(" '").append(path_join(dir, n)).append("'");
  }
  throw Error(dir + " holds the temporary files of an unfinished dsv3 run (" + list + ", " +
                  human_bytes(bytes) + ")",
              "pass --force to remove them and write, or remove them yourself: " + rm);
}

void Leftovers::remove() const {
  for (const std::string& name : names) {
    std::error_code ec;
    fs::remove_all(fs::path(dir) / name, ec);
    if (ec)
      throw Error("cannot remove " + path_join(dir, name) + ": " + ec.message(),
                  "remove it yourself and run again");
  }
}

StagedFolder::StagedFolder(std::string dir) : dir_(std::move(dir)) {
  make_dirs(dir_);
  staging_ = path_join(dir_, kStagingPrefix + std::to_string(::getpid()));
  std::error_code ec;
  fs::remove_all(staging_, ec);  // this process's own, from an earlier write that threw
  make_dirs(staging_);
}

StagedFolder::~StagedFolder() {
  if (committed_) return;
  std::error_code ec;
  fs::remove_all(staging_, ec);
}

void StagedFolder::commit(const std::string& marker,
                          const std::function<bool(const std::string&)>& stale) {
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
  remove(marker);  // from here until it is back the folder is not a complete one
  std::vector<std::string> old;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (!staged.contains(name) && !is_temporary_name(name) && stale(name)) old.push_back(name);
  }
  for (const std::string& name : old) remove(name);
  for (const std::string& name : staged)
    if (name != marker) move_in(name);
  if (staged.contains(marker)) move_in(marker);
  std::error_code ec;
  fs::remove_all(staging_, ec);
  committed_ = true;
  sync_dir(dir_);
}

}  // namespace dsv3

// Output folders of the commands that write a model: refusal without --force, free space.
#include "apps/dsv3/output_folder.h"

#include <sys/statvfs.h>

#include <filesystem>

#include "base/error.h"
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

}  // namespace

namespace {
// The files a new model replaces: weights, their index and config.json.
bool replaced_by_a_model(const fs::path& p) {
  const std::string name = p.filename().string();
  return name == "config.json" ||
         (starts_with(name, "model") &&
          (ends_with(name, ".safetensors") || name == "model.safetensors.index.json"));
}
}  // namespace

uint64_t check_output(const std::string& dir, bool force) {
  if (!fs::exists(dir)) return 0;
  if (!fs::is_directory(dir)) throw Error(dir + " exists and is not a folder");
  if (fs::is_empty(dir)) return 0;
  if (!force)
    throw Error(dir + " is not empty", "choose another folder or pass --force to overwrite");
  uint64_t bytes = 0;
  for (const auto& e : fs::directory_iterator(dir))
    if (replaced_by_a_model(e.path()) && e.is_regular_file()) bytes += e.file_size();
  return bytes;
}

void clear_output(const std::string& dir) {
  if (!fs::is_directory(dir)) return;
  for (const auto& e : fs::directory_iterator(dir))
    if (replaced_by_a_model(e.path())) fs::remove(e.path());
}

void check_free_space(const std::string& dir, uint64_t need, uint64_t freed,
                      const std::string& hint) {
  uint64_t room = free_bytes(dir) + freed;
  uint64_t margin = need / 100 + (64ull << 20);
  if (room < need + margin)
    throw Error(dir + " needs " + human_bytes(need + margin) + " but its disk has " +
                    human_bytes(room) + " free",
                hint);
}

}  // namespace dsv3::cli

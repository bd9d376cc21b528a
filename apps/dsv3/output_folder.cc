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

void prepare_output(const std::string& dir, bool force) {
  if (!fs::exists(dir)) return;
  if (!fs::is_directory(dir)) throw Error(dir + " exists and is not a folder");
  if (fs::is_empty(dir)) return;
  if (!force)
    throw Error(dir + " is not empty", "choose another folder or pass --force to overwrite");
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string name = e.path().filename().string();
    if (name == "config.json" ||
        (starts_with(name, "model") &&
         (ends_with(name, ".safetensors") || name == "model.safetensors.index.json")))
      fs::remove(e.path());
  }
}

void check_free_space(const std::string& dir, uint64_t need, const std::string& hint) {
  uint64_t room = free_bytes(dir);
  uint64_t margin = need / 100 + (64ull << 20);
  if (room < need + margin)
    throw Error(dir + " needs " + human_bytes(need + margin) + " but its disk has " +
                    human_bytes(room) + " free",
                hint);
}

}  // namespace dsv3::cli

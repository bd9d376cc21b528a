// Atomic checkpoint folders (temp folder + rename), newest-K retention.
#include "train/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "base/error.h"
#include "base/file.h"

namespace dsv3 {

namespace fs = std::filesystem;

namespace {

constexpr const char* kStateJson = "trainer_state.json";

std::string step_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%08lld", static_cast<long long>(step));
  return buf;
}

// Complete checkpoints (step-N folders holding trainer_state.json), oldest first.
std::vector<std::string> checkpoints(const std::string& run_dir) {
  std::vector<std::string> out;
  const fs::path root = fs::path(run_dir) / "checkpoints";
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return out;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("step-", 0) == 0 && name.size() == 13 && e.is_directory() &&
        fs::exists(e.path() / kStateJson))
      out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::string write_checkpoint(const std::string& run_dir, int64_t step, const ParamStore& params,
                             const Json& meta, const std::vector<std::string>& copy_files,
                             const std::function<void(const std::string& dir)>& write_state,
                             int keep_last, const ParamStore::AbsentValues& absent) {
  const fs::path root = fs::path(run_dir) / "checkpoints";
  make_dirs(root.string());
  const fs::path final_dir = root / step_name(step);
  const fs::path tmp = root / (".tmp-" + step_name(step));
  std::error_code ec;
  fs::remove_all(tmp, ec);  // a leftover of an interrupted write
  try {
    make_dirs(tmp.string());
    params.save(tmp.string(), DType::F32, absent);
    for (const std::string& f : copy_files) {
      if (!file_exists(f)) continue;
      write_file_atomic((tmp / fs::path(f).filename()).string(), read_file(f));
    }
    if (write_state) write_state(tmp.string());
    Json m = meta;
    m["step"] = step;
    write_file_atomic((tmp / kStateJson).string(), m.dump(2) + "\n");
    fs::remove_all(final_dir, ec);
    fs::rename(tmp, final_dir);
    // checkpoints/latest -> step-N, swapped in by a rename so it never dangles or goes missing.
    const fs::path link_tmp = root / ".latest.tmp";
    fs::remove(link_tmp, ec);
    fs::create_directory_symlink(final_dir.filename(), link_tmp);
    fs::rename(link_tmp, root / "latest");
  } catch (const std::exception& e) {
    fs::remove_all(tmp, ec);
    throw Error("checkpoint: could not write step " + std::to_string(step) + " into " +
                    root.string() + ": " + e.what(),
                "the previous checkpoint is intact; free disk space and resume with --resume");
  }
  const std::vector<std::string> all = checkpoints(run_dir);
  const auto keep = static_cast<size_t>(std::max(keep_last, 1));
  for (size_t i = 0; i + keep < all.size(); ++i) fs::remove_all(all[i], ec);
  return final_dir.string();
}

std::string latest_checkpoint(const std::string& run_dir) {
  const std::vector<std::string> all = checkpoints(run_dir);
  return all.empty() ? std::string() : all.back();
}

CheckpointState::CheckpointState(const std::string& dir) : dir_(dir) {
  const std::string path = path_join(dir, kStateJson);
  meta_ = Json::parse(read_file(path), path);
  step_ = meta_.at("step").as_int(path + ": step");
  DSV3_CHECK(step_ >= 0, path + ": step must be >= 0");
}

}  // namespace dsv3

// Atomic checkpoint folders (temp folder + rename), newest-K retention.
#include "train/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "base/error.h"
#include "base/file.h"
#include "tensor/safetensors.h"

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

// The bytes of tensor values in a folder's safetensors files: what a job's ranks must write.
uint64_t tensor_bytes(const fs::path& dir) {
  uint64_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".safetensors") continue;
    const SafetensorsFile f(e.path().string());
    for (const TensorInfo& t : f.tensors()) n += t.nbytes;
  }
  return n;
}

}  // namespace

std::string write_checkpoint(
    const std::string& run_dir, int64_t step, const ParamStore& params, const Json& meta,
    const std::vector<std::string>& copy_files,
    const std::function<uint64_t(const std::string& dir, CheckpointPart part)>& write_state,
    int keep_last, const CheckpointJob* job) {
  const fs::path root = fs::path(run_dir) / "checkpoints";
  const fs::path final_dir = root / step_name(step);
  const fs::path tmp = root / (".tmp-" + step_name(step));
  const bool lead = !job || job->all.rank() == 0;
  std::error_code ec;
  std::string error;  // this rank's failure, if any
  // Runs a phase on this rank, then (in a job) finds the ranks that failed in it: all ranks leave
  // together, the folder removed, each with the first failing rank's message.
  const auto phase = [&](bool here, const std::function<void()>& work, int64_t* sum = nullptr) {
    if (here && error.empty()) {
      try {
        work();
      } catch (const std::exception& e) {
        error = e.what();
      }
    }
    int first = error.empty() ? -1 : 0;
    if (job) {
      const int n = job->all.size(), me = job->all.rank();
      std::vector<int64_t> failed(static_cast<size_t>(n) + 1, 0);  // [rank] failed, then the sum
      failed[static_cast<size_t>(me)] = error.empty() ? 0 : 1;
      failed[static_cast<size_t>(n)] = sum ? *sum : 0;
      job->all.sum(failed);
      if (sum) *sum = failed[static_cast<size_t>(n)];
      first = static_cast<int>(std::find(failed.begin(), failed.end() - 1, 1) - failed.begin());
      if (first == n) return;
      job->all.broadcast(error, first);
      error = "rank " + std::to_string(first) + ": " + error;
    }
    if (first < 0) return;
    if (lead) fs::remove_all(tmp, ec);
    throw Error("checkpoint: could not write step " + std::to_string(step) + " into " +
                    root.string() + ": " + error,
                "the previous checkpoint is intact; free disk space and resume with --resume");
  };
  uint64_t total = 0;  // a job's tensor bytes, as its layouts say
  phase(lead, [&] {
    make_dirs(root.string());
    fs::remove_all(tmp, ec);  // a leftover of an interrupted write
    make_dirs(tmp.string());
    if (job) {
      params.save_layout(tmp.string(), DType::F32);
      if (write_state) write_state(tmp.string(), CheckpointPart::kLayout);
      total = tensor_bytes(tmp);
    } else {
      params.save(tmp.string(), DType::F32);
      if (write_state) write_state(tmp.string(), CheckpointPart::kWhole);
    }
  });
  int64_t written = 0;  // a job's tensor bytes, as the ranks wrote them (summed)
  if (job)
    phase(
        true,
        [&] {
          const uint64_t state =
              write_state ? write_state(tmp.string(), CheckpointPart::kValues) : 0;
          written = static_cast<int64_t>(state + params.save_values(tmp.string(), job->writes));
        },
        &written);
  phase(lead, [&] {
    // Every byte written once: the ranks' parts cover the folder's tensors exactly.
    DSV3_CHECK(!job || static_cast<uint64_t>(written) == total,
               "the ranks wrote " + std::to_string(written) + " bytes of tensor values, the " +
                   "folder's files hold " + std::to_string(total),
               "a rank wrote a part twice or left one out: report this as a bug");
    for (const std::string& f : copy_files) {
      if (!file_exists(f)) continue;
      write_file_atomic((tmp / fs::path(f).filename()).string(), read_file(f));
    }
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
  });
  if (!lead) return std::string();
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

// Checkpoints: a write that fails part-way (a full disk, a crash) leaves the previous checkpoint
// complete, `latest` pointing to it and no temporary folder behind; retention keeps the newest K;
// the ranks of a job (threads here) write the folder one process writes, each its part, and a
// failure on one rank, or parts that do not cover the folder, fail every rank.
#include <gtest/gtest.h>

#include <algorithm>
#include <barrier>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "base/error.h"
#include "base/file.h"
#include "model/weights.h"
#include "tensor/safetensors.h"
#include "train/arena_file.h"
#include "train/checkpoint.h"
#include "train_test_util.h"
#include "unit/tensor/temp_dir.h"

namespace dsv3 {
namespace {

namespace fs = std::filesystem;

TEST(Checkpoint, AFailedWriteLeavesThePreviousOneLoadable) {
  test::TempDir dir;
  test::TinyModel m;
  Json meta = Json::object();
  meta["sampler"] = "00";
  const std::string first = write_checkpoint(dir.path(), 1, *m.store, meta, {}, {}, 2);
  const std::string before = read_file(path_join(first, "model.safetensors"));
  // The trainer's state writer fails as a full disk would, after the model files are written.
  EXPECT_THROW(write_checkpoint(
                   dir.path(), 2, *m.store, meta, {},
                   [](const std::string&, CheckpointPart) -> uint64_t {
                     throw Error("No space left on device");
                   },
                   2),
               Error);
  EXPECT_EQ(latest_checkpoint(dir.path()), first);
  EXPECT_EQ(fs::read_symlink(fs::path(dir.path()) / "checkpoints" / "latest").string(),
            "step-00000001");
  EXPECT_EQ(read_file(path_join(first, "model.safetensors")), before);
  for (const auto& e : fs::directory_iterator(fs::path(dir.path()) / "checkpoints"))
    EXPECT_EQ(e.path().filename().string().rfind(".tmp", 0), std::string::npos) << e.path();
  EXPECT_EQ(CheckpointState(first).step(), 1);
  ModelWeights w = ModelWeights::load(first);  // the previous checkpoint still loads
  EXPECT_EQ(w.config().hidden_size, test::tiny_config().hidden_size);
}

TEST(Checkpoint, KeepsTheNewestK) {
  test::TempDir dir;
  test::TinyModel m;
  const Json meta = Json::object();
  for (int64_t s = 1; s <= 4; ++s) write_checkpoint(dir.path(), s, *m.store, meta, {}, {}, 2);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(fs::path(dir.path()) / "checkpoints"))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"latest", "step-00000003", "step-00000004"}));
  EXPECT_EQ(CheckpointState(latest_checkpoint(dir.path())).step(), 4);
}

// Ranks as threads of one process, for write_checkpoint's agreement: sum() and broadcast() meet
// at a barrier; the checkpoint calls nothing else.
class ThreadGroup : public DataParallelGroup {
 public:
  struct Shared {
    explicit Shared(int n) : sync(n) {}
    std::barrier<> sync;
    std::mutex mu;
    std::vector<int64_t> acc;
    std::string text;
  };
  ThreadGroup(int rank, int size, Shared* s) : rank_(rank), size_(size), s_(s) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void sum(std::span<int64_t> x) override {
    {
      std::lock_guard lock(s_->mu);
      s_->acc.resize(x.size());
      for (size_t k = 0; k < x.size(); ++k) s_->acc[k] += x[k];
    }
    s_->sync.arrive_and_wait();
    std::copy(s_->acc.begin(), s_->acc.end(), x.begin());
    s_->sync.arrive_and_wait();
    if (rank_ == 0) s_->acc.clear();
    s_->sync.arrive_and_wait();
  }
  void broadcast(std::string& text, int root) override {
    if (rank_ == root) s_->text = text;
    s_->sync.arrive_and_wait();
    text = s_->text;
    s_->sync.arrive_and_wait();
  }
  void sum_in_rank_order(std::span<float>, std::span<const int64_t>) override { unused(); }
  void sum_in_rank_order(std::span<double>) override { unused(); }
  void start_sum(std::span<float>, std::span<const int64_t>, int64_t, int64_t) override {
    unused();
  }
  void finish_sum(std::span<float>, std::span<const int64_t>) override { unused(); }
  void allgather(std::span<float>, std::span<const int64_t>) override { unused(); }

 private:
  [[noreturn]] static void unused() { throw std::logic_error("not a checkpoint's collective"); }
  int rank_, size_;
  Shared* s_;
};

constexpr int kRanks = 2;
const std::vector<float> kState = {1.5f, -2.0f, 3.25f, 4.0f, -5.5f, 6.0f};

// The trainer's state as a flat file: one process writes it whole; in a job a rank writes the
// elements [3s, 3s + 3) of each of its `slots` s (rank r: slot r, as ZeRO-1 shards are written).
uint64_t write_state(const std::string& dir, CheckpointPart part, const std::vector<int>& slots) {
  const std::string path = path_join(dir, "state.safetensors");
  SafetensorsWriter w;
  w.add_bytes("x", DType::F32, Shape{6},
              {reinterpret_cast<const std::byte*>(kState.data()), kState.size() * sizeof(float)});
  if (part == CheckpointPart::kWhole) w.write(path);
  if (part == CheckpointPart::kLayout) w.write_layout(path);
  if (part != CheckpointPart::kValues) return 0;
  ArenaFileWriter out(path);
  for (const int s : slots) out.write("x", 3 * s, std::span(kState).subspan(3 * size_t(s), 3));
  return out.close();
}

// Runs write_checkpoint on kRanks threads: rank r writes the model tensors of index % kRanks == r
// and the state slots slots_of(r); fail_rank's state writer throws. The ranks' errors ("": none).
std::vector<std::string> job_checkpoint(const std::string& run_dir, const ParamStore& ps,
                                        const std::function<std::vector<int>(int)>& slots_of,
                                        int fail_rank = -1) {
  ThreadGroup::Shared shared(kRanks);
  std::vector<std::string> errors(kRanks);
  std::vector<std::thread> ranks;
  for (int r = 0; r < kRanks; ++r)
    ranks.emplace_back([&, r] {
      ThreadGroup g(r, kRanks, &shared);
      const CheckpointJob job{
          g, [&ps, r](const Param& p) { return (&p - ps.all().data()) % kRanks == r; }};
      try {
        const std::string dir = write_checkpoint(
            run_dir, 1, ps, Json::object(), {},
            [&](const std::string& d, CheckpointPart part) {
              if (r == fail_rank && part == CheckpointPart::kValues)
                throw Error("No space left on device");
              return write_state(d, part, slots_of(r));
            },
            2, &job);
        EXPECT_EQ(dir.empty(), r != 0);  // the folder's path on rank 0 only
      } catch (const Error& e) {
        errors[static_cast<size_t>(r)] = e.what();
      }
    });
  for (auto& t : ranks) t.join();
  return errors;
}

TEST(Checkpoint, RanksWriteTheFolderOneProcessWrites) {
  test::TempDir one, two;
  test::TinyModel m;
  write_checkpoint(
      one.path(), 1, *m.store, Json::object(), {},
      [](const std::string& d, CheckpointPart part) { return write_state(d, part, {}); }, 2);
  EXPECT_EQ(job_checkpoint(two.path(), *m.store, [](int r) { return std::vector<int>{r}; }),
            std::vector<std::string>(kRanks));
  const fs::path a = fs::path(one.path()) / "checkpoints" / "step-00000001",
                 b = fs::path(two.path()) / "checkpoints" / "step-00000001";
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(a)) {
    EXPECT_EQ(read_file(e.path().string()), read_file((b / e.path().filename()).string()))
        << e.path().filename();
    ++files;
  }
  EXPECT_EQ(files, static_cast<size_t>(std::distance(fs::directory_iterator(b), {})));
  EXPECT_GE(files, 4u);  // the model, config.json, the state, trainer_state.json
}

TEST(Checkpoint, ARankThatFailsFailsEveryRankAndLeavesNoFolder) {
  test::TempDir dir;
  test::TinyModel m;
  const std::vector<std::string> errors = job_checkpoint(
      dir.path(), *m.store, [](int r) { return std::vector<int>{r}; }, 1);
  for (const std::string& e : errors)
    EXPECT_NE(e.find("rank 1: No space left"), std::string::npos) << e;
  // Parts that leave a slot out, or write one twice, fail every rank.
  for (const auto& slots : {std::vector<std::vector<int>>{{0}, {}}, {{0}, {1, 0}}})
    for (const std::string& e :
         job_checkpoint(dir.path(), *m.store, [&](int r) { return slots[size_t(r)]; }))
      EXPECT_NE(e.find("rank 0: the ranks wrote"), std::string::npos) << e;
  EXPECT_EQ(latest_checkpoint(dir.path()), "");
  for (const auto& e : fs::directory_iterator(fs::path(dir.path()) / "checkpoints"))
    ADD_FAILURE() << "left behind: " << e.path();
}

}  // namespace
}  // namespace dsv3

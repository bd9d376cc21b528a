// ZeRO-1 sharding (train/zero1.h): shard bounds cut only between tensors and cover the arena;
// shard layouts are rebased; AdamW stepped shard by shard over those layouts equals one AdamW over
// the whole arena bit for bit (the property the MPI runs of tests/dist rely on); a whole state
// loads into the shards of two in-process "ranks", which step on exactly as one AdamW and write
// their shards into one file, byte for byte the one AdamW writes.
#include "train/zero1.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

#include "base/error.h"
#include "base/file.h"
#include "base/rng.h"
#include "train/arena_file.h"
#include "unit/tensor/temp_dir.h"

namespace dsv3 {
namespace {

ArenaLayout toy_layout() {
  ArenaLayout l;
  int64_t at = 0;
  const int64_t sizes[] = {40, 7, 100, 3, 64, 1, 90};
  const char* names[] = {"t0", "t1", "t2", "t3", "t4", "t5", "t6"};
  for (int i = 0; i < 7; ++i) {
    l.tensors.push_back({names[i], at, sizes[i], i % 2 == 0, i != 5});
    at += sizes[i];
  }
  l.numel = at;
  return l;
}

std::vector<float> noise(size_t n, uint64_t seed, float scale) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = scale * static_cast<float>(rng.normal());
  return v;
}

TEST(Zero1, BoundsCutBetweenTensorsAndCover) {
  const ArenaLayout l = toy_layout();
  for (int n : {1, 2, 3, 4, 7, 12}) {
    const std::vector<int64_t> b = shard_bounds(l, n);
    ASSERT_EQ(b.size(), static_cast<size_t>(n) + 1);
    EXPECT_EQ(b.front(), 0);
    EXPECT_EQ(b.back(), l.numel);
    for (int r = 0; r < n; ++r) {
      EXPECT_LE(b[r], b[r + 1]);
      bool at_start = b[r] == 0 || b[r] == l.numel;
      for (const ArenaTensor& t : l.tensors) at_start = at_start || t.offset == b[r];
      EXPECT_TRUE(at_start) << "bound " << b[r] << " cuts a tensor (n = " << n << ")";
      // Every tensor lies in exactly one shard, rebased.
      const ArenaLayout s = shard_layout(l, b[r], b[r + 1]);
      EXPECT_EQ(s.numel, b[r + 1] - b[r]);
      for (const ArenaTensor& t : s.tensors) EXPECT_LE(t.offset + t.numel, s.numel);
    }
  }
  // Two shards of the 305-element toy arena: the first tensor start at or past 152 is t5's, 214.
  EXPECT_EQ(shard_bounds(l, 2)[1], 214);
  EXPECT_THROW(shard_bounds(l, 0), Error);
  EXPECT_THROW(shard_layout(l, 0, 45), Error);  // t1 straddles 45
}

TEST(Zero1, ShardedStepsEqualTheWholeStep) {
  const ArenaLayout l = toy_layout();
  for (bool bf16 : {true, false}) {
    AdamWConfig c;
    c.lr = 1e-2;
    c.bf16_moments = bf16;
    std::vector<float> whole = noise(static_cast<size_t>(l.numel), 1, 0.1f), parts = whole;
    AdamW one(l, c);
    const std::vector<int64_t> b = shard_bounds(l, 3);
    std::vector<AdamW> shards;
    for (int r = 0; r < 3; ++r) shards.emplace_back(shard_layout(l, b[r], b[r + 1]), c);
    for (int step = 0; step < 3; ++step) {
      const std::vector<float> g = noise(whole.size(), 10 + step, 1.0f);
      one.step(whole, g, 1e-2);
      for (int r = 0; r < 3; ++r) {
        const auto at = static_cast<size_t>(b[r]), n = static_cast<size_t>(b[r + 1] - b[r]);
        shards[r].step(std::span<float>(parts).subspan(at, n),
                       std::span<const float>(g).subspan(at, n), 1e-2);
      }
    }
    EXPECT_EQ(std::memcmp(whole.data(), parts.data(), whole.size() * sizeof(float)), 0);
  }
}

// D "ranks" in one process, for allgather only (what Zero1AdamW's step and load use): each call
// registers the rank's buffer, and the last rank's call copies every shard into every buffer, so
// the ranks run their calls in turn and every buffer must outlive the last one.
class FakeGroup : public DataParallelGroup {
 public:
  FakeGroup(int rank, int size, std::vector<std::span<float>>* slots)
      : rank_(rank), size_(size), slots_(slots) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void sum_in_rank_order(std::span<float>, std::span<const int64_t>) override { FAIL(); }
  void sum_in_rank_order(std::span<double>) override { FAIL(); }
  void start_sum(std::span<float>, std::span<const int64_t>, int64_t, int64_t) override { FAIL(); }
  void finish_sum(std::span<float>, std::span<const int64_t>) override { FAIL(); }
  void sum(std::span<int64_t>) override { FAIL(); }
  void broadcast(std::string&, int) override { FAIL(); }
  void allgather(std::span<float> x, std::span<const int64_t> b) override {
    (*slots_)[static_cast<size_t>(rank_)] = x;
    if (rank_ != size_ - 1) return;
    for (int dst = 0; dst < size_; ++dst)
      for (int src = 0; src < size_; ++src)
        for (int64_t i = b[src]; i < b[src + 1]; ++i)
          (*slots_)[static_cast<size_t>(dst)][static_cast<size_t>(i)] =
              (*slots_)[static_cast<size_t>(src)][static_cast<size_t>(i)];
  }

 private:
  int rank_, size_;
  std::vector<std::span<float>>* slots_;
};

// A whole state file loads into two shards that step on as one AdamW and write, each its shard,
// the file that AdamW saves.
TEST(Zero1, WholeStateLoadsIntoShardsThatStepOnAsOne) {
  const ArenaLayout l = toy_layout();
  for (bool bf16 : {true, false}) {
    AdamWConfig c;
    c.bf16_moments = bf16;
    test::TempDir dir;
    const std::string path = dir.path() + "/opt.safetensors";
    AdamW one(l, c);
    std::vector<float> p = noise(static_cast<size_t>(l.numel), 3, 0.1f);
    const std::vector<float> g = noise(p.size(), 4, 1.0f);
    one.step(p, g, 1e-2);
    one.step(p, g, 1e-2);
    one.save(path);
    const std::vector<float> m2 = one.exp_avg(), v2 = one.exp_avg_sq();
    std::vector<std::span<float>> slots(2);
    FakeGroup g0(0, 2, &slots), g1(1, 2, &slots);
    Zero1AdamW a(l, c, g0), b(l, c, g1);
    a.load(path);
    b.load(path);
    EXPECT_EQ(a.steps(), 2);
    std::vector<float> qa = p, qb = p;
    one.step(p, g, 1e-2);
    a.step(qa, g, 1e-2);  // rank 0's shard; the allgather completes on rank 1's call
    b.step(qb, g, 1e-2);
    EXPECT_EQ(std::memcmp(qa.data(), p.data(), p.size() * sizeof(float)), 0);
    EXPECT_EQ(std::memcmp(qb.data(), p.data(), p.size() * sizeof(float)), 0);
    // Each shard written into the file's layout: the bytes the plain AdamW writes.
    const std::string whole = dir.path() + "/whole.safetensors",
                      parts = dir.path() + "/parts.safetensors";
    one.save(whole);
    save_adamw_layout(l, c, a.steps(), parts);
    ArenaFileWriter out(parts);
    a.save_shard(out);
    b.save_shard(out);
    const auto bytes = static_cast<uint64_t>(l.numel) * (bf16 ? 2 : 4) * 2;
    EXPECT_EQ(out.close(), bytes);
    EXPECT_EQ(read_file(parts), read_file(whole));
  }
}

}  // namespace
}  // namespace dsv3

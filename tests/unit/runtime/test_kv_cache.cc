// KvCache: append, truncate, copy, bytes, bf16 storage.
#include <gtest/gtest.h>

#include <vector>

#include "base/error.h"
#include "runtime/kv_cache.h"

namespace dsv3 {
namespace {

std::vector<float> rows(int64_t n, int64_t elems, float base) {
  std::vector<float> v(n * elems);
  for (size_t i = 0; i < v.size(); ++i) v[i] = base + 0.25f * static_cast<float>(i);
  return v;
}

TEST(KvCache, AppendTruncateCopy) {
  KvCache c({2, 3}, DType::F32);
  auto a = rows(4, 3, 1.0f);
  c.put(0, a.data(), 4);
  c.put(1, a.data(), 4);
  c.commit(4);
  EXPECT_EQ(c.length(), 4);
  EXPECT_EQ(c.bytes(), 2u * 4 * 3 * 4);
  std::vector<float> scratch;
  const float* r = c.rows_f32(1, 4, scratch);
  for (int i = 0; i < 12; ++i) EXPECT_EQ(r[i], a[i]);

  KvCache copy = c;
  c.truncate(2);
  EXPECT_EQ(c.length(), 2);
  auto b = rows(1, 3, -5.0f);
  c.put(0, b.data(), 1);
  c.put(1, b.data(), 1);
  c.commit(1);
  r = c.rows_f32(0, 3, scratch);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(r[i], a[i]);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(r[6 + i], b[i]);
  // The copy is independent.
  EXPECT_EQ(copy.length(), 4);
  r = copy.rows_f32(0, 4, scratch);
  for (int i = 0; i < 12; ++i) EXPECT_EQ(r[i], a[i]);

  EXPECT_THROW(c.truncate(4), Error);
  EXPECT_THROW(c.commit(1), Error);  // nothing pending
  EXPECT_THROW(KvCache({1, 3}, DType::F16), Error);
}

TEST(KvCache, Bf16StorageRoundsAndHalvesTheBytes) {
  KvCache c({1, 4}, DType::BF16);
  const float v[4] = {1.0f, 1.00390625f /* 1 + 2^-8: a bf16 tie, rounds to even (1.0) */, 3.0f,
                      -0.1f};
  c.put(0, v, 1);
  c.commit(1);
  EXPECT_EQ(c.bytes(), 8u);
  std::vector<float> scratch;
  const float* r = c.rows_f32(0, 1, scratch);
  EXPECT_EQ(r[0], 1.0f);
  EXPECT_EQ(r[1], 1.0f);
  EXPECT_EQ(r[2], 3.0f);
  EXPECT_NEAR(r[3], -0.1f, 0.1 / 256);
}

TEST(KvCache, DeepseekV3LatentCacheIs576ValuesAbout70KBPerToken) {
  // SPEC §1.5: 61 layers x (512 + 64) values; BF16: 70,272 bytes per token.
  KvCache c({61, 576}, DType::BF16);
  std::vector<float> row(576, 0.5f);
  for (int64_t l = 0; l < 61; ++l) c.put(l, row.data(), 1);
  c.commit(1);
  EXPECT_EQ(c.bytes(), 70272u);
}

}  // namespace
}  // namespace dsv3

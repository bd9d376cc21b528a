// The FP8 recipe's tile quantizers (tensor/fp8_tiles.h, SPEC §3.1) beyond what
// tests/ref/fp8_ref.py checks from outside (the E4M3 1x128 path, bit for bit): E5M6 rounding
// against the table of its values built from the bit fields (float_format_ref.h), UE8M0 scales,
// the 128x1 regrouping and transposition, per-tensor tiles, and the error bounds.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "tensor/fp8.h"
#include "tensor/fp8_tiles.h"
#include "unit/tensor/float_format_ref.h"

namespace dsv3 {
namespace {

// Values of the non-negative finite E5M6 codes (bias 15, exponent 31 reserved), increasing.
std::vector<double> e5m6_values() {
  std::vector<double> v;
  for (uint32_t c = 0; c <= (30u << 6 | 63u); ++c) v.push_back(test::bitfield_value(c, 5, 6, 15));
  return v;
}

TEST(Fp8Tiles, E5M6RoundsToNearestEvenAndSaturates) {
  const std::vector<double> pos = e5m6_values();
  EXPECT_EQ(pos.back(), 65024.0);
  EXPECT_EQ(minifloat_max(MiniFloat::E5M6), 65024.0f);
  std::vector<float> xs;
  for (size_t i = 0; i + 1 < pos.size(); ++i) {
    const float v = static_cast<float>(pos[i]), mid = static_cast<float>((pos[i] + pos[i + 1]) / 2);
    xs.insert(xs.end(), {v, mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e9f)});
  }
  for (float x : xs)
    for (float s : {1.0f, -1.0f}) {
      const float want = static_cast<float>(pos[test::nearest_code(x, pos)]) * s;
      ASSERT_EQ(round_minifloat(s * x, MiniFloat::E5M6), want) << s * x;
    }
  EXPECT_EQ(round_minifloat(70000.0f, MiniFloat::E5M6), 65024.0f);
  EXPECT_EQ(round_minifloat(-std::numeric_limits<float>::infinity(), MiniFloat::E5M6), -65024.0f);
  EXPECT_TRUE(std::isnan(round_minifloat(std::nanf(""), MiniFloat::E5M6)));
  EXPECT_EQ(round_minifloat(1e-30f, MiniFloat::E5M6), 0.0f);
}

TEST(Fp8Tiles, Ue8m0ScalesArePowersOfTwoAtOrAboveTheF32Scale) {
  for (float amax : {0.0f, 1e-6f, 1e-4f, 0.3f, 448.0f, 1000.0f, 3.5e4f})
    for (MiniFloat f : {MiniFloat::E4M3, MiniFloat::E5M6}) {
      const float s = tile_scale(amax, f, false), p = tile_scale(amax, f, true);
      EXPECT_EQ(s, std::max(amax, 1e-4f) / minifloat_max(f));
      int e = 0;
      EXPECT_EQ(std::frexp(p, &e), 0.5f) << amax;  // a power of two
      EXPECT_GE(p, s);
      EXPECT_LT(p, 2 * s);
    }
  EXPECT_EQ(tile_scale(448.0f, MiniFloat::E4M3, true), 1.0f);  // exact powers stay
}

std::vector<float> randn(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd;
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = nd(rng) * std::exp2(static_cast<float>(rng() % 9) - 4);
  return v;
}

// The 128x1 tiles of X [T, n] transposed are the 1x128 tiles of Xᵀ (what Wgrad multiplies), and
// per-tensor tiles have one scale; every tiling round-trips within the E4M3 bound.
TEST(Fp8Tiles, RegroupingTransposesAndEveryTilingMeetsTheBound) {
  const int64_t T = 300, n = 200;
  const std::vector<float> x = randn(T * n, 5);
  std::vector<float> xt(x.size());
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < n; ++i) xt[i * T + t] = x[t * n + i];
  ThreadPool pool(2);
  Fp8Tiles cols, rows;
  quantize_e4m3_tiles(x.data(), T, n, n, 128, 1, false, cols, &pool);
  quantize_e4m3_tiles(xt.data(), n, T, T, 1, 128, false, rows);
  const Fp8Tiles back = transpose_tiles(cols);
  EXPECT_EQ(back.q, rows.q);
  EXPECT_EQ(back.scale, rows.scale);
  EXPECT_EQ(back.br, 1);
  EXPECT_EQ(back.bc, 128);
  for (auto [br, bc] : {std::pair<int64_t, int64_t>{1, 128}, {128, 128}, {128, 1}, {T, n}}) {
    for (bool pow2 : {false, true}) {
      Fp8Tiles q;
      quantize_e4m3_tiles(x.data(), T, n, n, br, bc, pow2, q, &pool);
      if (br == T) {
        EXPECT_EQ(q.scale.size(), 1u);
      }
      std::vector<float> d(x.size());
      dequantize_e4m3_tiles(q, d.data());
      for (int64_t t = 0; t < T; ++t)
        for (int64_t i = 0; i < n; ++i) {
          const double s = q.scale_at(t, i), v = x[t * n + i];
          // half a normal step (2^-4 relative) or half the subnormal step (2^-10 s)
          const double bound = std::max(std::ldexp(std::fabs(v), -4), std::ldexp(s, -10));
          ASSERT_LE(std::fabs(d[t * n + i] - v), bound * (1 + 1e-6)) << br << "x" << bc;
        }
    }
  }
}

// E5M6 with power-of-two scales (the o_proj cache): 6 mantissa bits, so half a step is 2^-7
// relative; a row of zeros stays zero.
TEST(Fp8Tiles, E5M6FakeQuantizationBound) {
  std::vector<float> x = randn(4 * 256, 9);
  std::fill(x.begin() + 256, x.begin() + 512, 0.0f);
  std::vector<float> q = x;
  fake_quantize(q.data(), 4, 256, 1, 128, MiniFloat::E5M6, true);
  for (size_t i = 0; i < x.size(); ++i)
    ASSERT_LE(std::fabs(q[i] - x[i]), std::ldexp(std::fabs(x[i]), -7) * (1 + 1e-6) + 1e-30) << i;
  for (int i = 256; i < 512; ++i) EXPECT_EQ(q[i], 0.0f);
}

}  // namespace
}  // namespace dsv3

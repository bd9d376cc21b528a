// The AVX-512 kernels (kernels/cpu) against float64 sums written here and against the reference
// kernels, on odd shapes (not multiples of 16 or 128), T = 1 and T > 1, every weight dtype and
// FP8 edge blocks. Tolerances come from the summation-order bound: any order of summing K float32
// products (FMA or not) is within gamma_K * sum |x_k w_k| of the exact sum, gamma_K = K u / (1 - K
// u), u = 2^-24; two such results are within twice that of each other.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "base/rng.h"
#include "base/thread_pool.h"
#include "kernels/best_kernels.h"
#include "kernels/cpu/cpu.h"
#include "kernels/kernels.h"
#include "kernels/ref/ref.h"
#include "test_util.h"
#include "unit/kernels/kernel_test_util.h"

namespace dsv3 {
namespace {

using test::gamma;
using test::kU;
using test::make_weight;
using test::randn;
using test::TestWeight;

const Kernels& cpu() {
  return cpu_kernels();
}

struct Shape3 {
  int64_t T, rows, cols;
};
// Odd sizes around the vector width (16), the tiles (4 x 4, 1 x 8, 16 rows a task) and the FP8
// block (128), T = 1 (decode) and T > 1 with a remainder of the 4-row tiles; sizes on both sides
// of the 2^17 multiply-adds below which the kernels stay on the calling thread; for the AMX
// matmul (32 x 32 blocks of 16 x 16 tiles, 32 k a step, 64 rows a task) row and token tails of
// each tile size (T 40: a 32-token block, then 8).
const Shape3 kShapes[] = {{1, 1, 1},     {1, 5, 17},   {1, 37, 130},   {3, 9, 16},
                          {7, 33, 257},  {4, 16, 64},  {1, 300, 1000}, {9, 129, 383},
                          {5, 70, 2055}, {64, 24, 48}, {40, 50, 100}};

class CpuMatmul : public ::testing::TestWithParam<DType> {};

TEST_P(CpuMatmul, MatchesDoubleAndRef) {
  REQUIRE_AVX512();
  ThreadPool pool(2);
  // BF16 weights on AMX: activations rounded to BF16 first (kernels/cpu/cpu.h).
  const bool rounds = GetParam() == DType::BF16 && cpu::matmul_rounds_bf16_activations();
  for (const Shape3& s : kShapes) {
    const std::string where = "T " + std::to_string(s.T) + " rows " + std::to_string(s.rows) +
                              " cols " + std::to_string(s.cols);
    TestWeight w = make_weight(GetParam(), s.rows, s.cols, 7 + s.rows);
    const auto x = randn(s.T * s.cols, 8 + s.cols);
    std::vector<float> y(s.T * s.rows), y_ref(s.T * s.rows);
    cpu().matmul(y.data(), x.data(), w.ref, s.T, pool);
    ref_kernels().matmul(y_ref.data(), x.data(), w.ref, s.T, pool);
    for (int64_t t = 0; t < s.T; ++t)
      for (int64_t r = 0; r < s.rows; ++r) {
        double exact = 0, abs_sum = 0, exact_in = 0;  // exact_in: of what the kernel multiplies
        for (int64_t k = 0; k < s.cols; ++k) {
          const float xk = x[t * s.cols + k];
          const double p = double(xk) * w.value[r * s.cols + k];
          exact += p;
          abs_sum += std::fabs(p);
          exact_in += double(rounds ? test::round_bf16(xk) : xk) * w.value[r * s.cols + k];
        }
        // One reordered sum of K products, then stored as float32 (u |y|). Rounding x to BF16
        // moves each product by at most 2^-8 of itself (8 significant bits, nearest), so the
        // result by at most 2^-8 sum |x_k w_k| more: the precision BF16 inference trades for AMX
        // (docs/PERFORMANCE.md).
        const double bound = gamma(s.cols) * abs_sum + kU * std::fabs(exact);
        const double rounding = rounds ? 0x1p-8 * abs_sum : 0.0;
        const int64_t i = t * s.rows + r;
        ASSERT_NEAR(y[i], exact_in, bound) << where << " t " << t << " r " << r;
        ASSERT_NEAR(y[i], exact, bound + rounding) << where << " t " << t << " r " << r;
        ASSERT_NEAR(y[i], y_ref[i], 2 * bound + rounding) << where << " t " << t << " r " << r;
      }
    // Each output is the same sum in the same order whatever tile computes it: prefill rows equal
    // the rows computed one at a time (the model's prefill == decode property relies on it).
    for (int64_t t = 0; t < s.T; ++t) {
      std::vector<float> y1(s.rows);
      cpu().matmul(y1.data(), x.data() + t * s.cols, w.ref, 1, pool);
      for (int64_t r = 0; r < s.rows; ++r) ASSERT_EQ(y1[r], y[t * s.rows + r]) << where;
    }
  }
}

// Both BF16-activation matmuls this CPU runs (the table uses one: bf16_activation_matmul), called
// directly: against float64 sums of the BF16-rounded x (the FP32 summation bound: products of BF16
// values are exact in FP32), within 2^-8 sum |x_k w_k| more of the unrounded x, and every row
// equal bit for bit to the same row computed alone.
TEST(CpuMatmulBf16Activations, MatchesDoubleAndDecode) {
  REQUIRE_AVX512();
  std::vector<std::pair<const char*, void (*)(const HeadMatmulArgs&, ThreadPool&)>> impls;
  if (cpu::amx_supported()) impls.push_back({"amx", cpu::matmul_heads_bf16_amx});
  if (cpu::avx512_bf16_supported()) impls.push_back({"dp", cpu::matmul_heads_bf16_dp});
  if (impls.empty()) GTEST_SKIP() << "no AMX or AVX512-BF16 on this CPU";
  ThreadPool pool(2);
  for (const auto& [name, fn] : impls)
    for (const Shape3& s : kShapes) {
      const std::string where = std::string(name) + " T " + std::to_string(s.T) + " rows " +
                                std::to_string(s.rows) + " cols " + std::to_string(s.cols);
      TestWeight w = make_weight(DType::BF16, s.rows, s.cols, 7 + s.rows);
      const auto x = randn(s.T * s.cols, 8 + s.cols);
      std::vector<float> y(s.T * s.rows);
      fn(ref::one_head(y.data(), s.rows, x.data(), s.cols, w.ref, s.T), pool);
      for (int64_t t = 0; t < s.T; ++t) {
        std::vector<float> y1(s.rows);
        fn(ref::one_head(y1.data(), s.rows, x.data() + t * s.cols, s.cols, w.ref, 1), pool);
        for (int64_t r = 0; r < s.rows; ++r) {
          ASSERT_EQ(y1[r], y[t * s.rows + r]) << where << " t " << t << " r " << r;
          double exact = 0, exact_in = 0, abs_sum = 0;
          for (int64_t k = 0; k < s.cols; ++k) {
            const float xk = x[t * s.cols + k];
            const double wk = w.value[r * s.cols + k];
            exact += xk * wk;
            exact_in += test::round_bf16(xk) * wk;
            abs_sum += std::fabs(xk * wk);
          }
          const double bound = gamma(s.cols) * abs_sum + kU * std::fabs(exact);
          ASSERT_NEAR(y[t * s.rows + r], exact_in, bound) << where << " t " << t << " r " << r;
          ASSERT_NEAR(y[t * s.rows + r], exact, bound + 0x1p-8 * abs_sum) << where;
        }
      }
    }
}

TEST_P(CpuMatmul, RowSliceKeepsBlockScales) {
  REQUIRE_AVX512();
  ThreadPool pool(3);
  const int64_t rows = 300, cols = 200, r0 = 100, n = 77;  // starts mid FP8 block
  TestWeight w = make_weight(GetParam(), rows, cols, 3);
  const auto x = randn(2 * cols, 4);
  std::vector<float> full(2 * rows), slice(2 * n);
  cpu().matmul(full.data(), x.data(), w.ref, 2, pool);
  cpu().matmul(slice.data(), x.data(), slice_rows(w.ref, r0, n), 2, pool);
  for (int64_t t = 0; t < 2; ++t)
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(slice[t * n + i], full[t * rows + r0 + i]);
}

TEST_P(CpuMatmul, MatmulXwMatchesDoubleAndRef) {
  REQUIRE_AVX512();
  ThreadPool pool(2);
  for (const Shape3& s : kShapes) {
    // y[T, cols] = x[T, rows] · w with padded row strides (MLA reads x and y inside wider rows).
    TestWeight w = make_weight(GetParam(), s.rows, s.cols, 17 + s.cols);
    const int64_t xs = s.rows + 3, ys = s.cols + 5;
    const auto x = randn(s.T * xs, 18 + s.rows);
    std::vector<float> y(s.T * ys, -7.0f), y_ref(s.T * ys, -7.0f);
    cpu().matmul_xw(y.data(), ys, x.data(), xs, w.ref, s.T, pool);
    ref_kernels().matmul_xw(y_ref.data(), ys, x.data(), xs, w.ref, s.T, pool);
    for (int64_t t = 0; t < s.T; ++t) {
      for (int64_t c = 0; c < s.cols; ++c) {
        double exact = 0, abs_sum = 0;
        for (int64_t r = 0; r < s.rows; ++r) {
          const double p = double(x[t * xs + r]) * w.value[r * s.cols + c];
          exact += p;
          abs_sum += std::fabs(p);
        }
        const double bound = gamma(s.rows) * abs_sum + kU * std::fabs(exact);
        ASSERT_NEAR(y[t * ys + c], exact, bound) << "rows " << s.rows << " cols " << s.cols;
        ASSERT_NEAR(y[t * ys + c], y_ref[t * ys + c], 2 * bound);
      }
      for (int64_t c = s.cols; c < ys; ++c) ASSERT_EQ(y[t * ys + c], -7.0f) << "padding written";
    }
  }
}

TEST(CpuKernels, Fp8EveryCodeAndOtherBlockShapes) {
  REQUIRE_AVX512();
  ThreadPool pool(2);
  // Every E4M3 code (subnormals, -0, the NaNs 0x7F / 0xFF) as a column of its own: with x = 1 the
  // sum has one term, so y must equal the dequantised weight exactly (NaN where it is NaN).
  std::vector<uint8_t> codes(256);
  for (int c = 0; c < 256; ++c) codes[c] = static_cast<uint8_t>(c);
  const std::vector<float> scales = {0.5f, 3.0f};  // rows 0..127 and 128..255
  const WeightRef w{DType::F8_E4M3, codes.data(), 256, 1, scales.data()};
  std::vector<float> expect(256), y(256);
  weight_block_f32(w, 0, 256, 0, 1, expect.data());
  const float one = 1.0f;
  cpu().matmul(y.data(), &one, w, 1, pool);
  for (int c = 0; c < 256; ++c) {
    if (std::isnan(expect[c])) {
      EXPECT_TRUE(std::isnan(y[c])) << "code " << c;
    } else {
      EXPECT_EQ(y[c], expect[c]) << "code " << c;
    }
  }
  // Scale blocks other than 128 x 128: a multiple of 16 columns (read in place) and not (the
  // reference path), both against float64 with the summation bound.
  for (int64_t bc : {48, 40}) {
    const int64_t T = 5, rows = 70, cols = 150, br = 32;
    TestWeight tw = make_weight(DType::F8_E4M3, rows, cols, 40 + bc);
    tw.scale.resize(((rows + br - 1) / br) * ((cols + bc - 1) / bc));
    Rng r(bc);
    for (auto& s : tw.scale) s = static_cast<float>(0.01 + r.uniform());
    tw.ref.scale_inv = tw.scale.data();
    tw.ref.block_rows = br, tw.ref.block_cols = bc;
    weight_block_f32(tw.ref, 0, rows, 0, cols, tw.value.data());
    const auto x = randn(T * cols, 41);
    std::vector<float> out(T * rows);
    cpu().matmul(out.data(), x.data(), tw.ref, T, pool);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t i = 0; i < rows; ++i) {
        double exact = 0, abs_sum = 0;
        for (int64_t k = 0; k < cols; ++k) {
          const double p = double(x[t * cols + k]) * tw.value[i * cols + k];
          exact += p;
          abs_sum += std::fabs(p);
        }
        ASSERT_NEAR(out[t * rows + i], exact, gamma(cols) * abs_sum + kU * std::fabs(exact))
            << "block_cols " << bc;
      }
    // x · w over a row slice starting mid scale block (MLA reads kv_b_proj per head this way).
    const int64_t r0 = 37, n = 30;
    std::vector<float> xw(T * cols);
    cpu().matmul_xw(xw.data(), cols, x.data(), n, slice_rows(tw.ref, r0, n), T, pool);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t c = 0; c < cols; ++c) {
        double exact = 0, abs_sum = 0;
        for (int64_t i = 0; i < n; ++i) {
          const double p = double(x[t * n + i]) * tw.value[(r0 + i) * cols + c];
          exact += p;
          abs_sum += std::fabs(p);
        }
        ASSERT_NEAR(xw[t * cols + c], exact, gamma(n) * abs_sum + kU * std::fabs(exact))
            << "matmul_xw block_cols " << bc;
      }
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CpuMatmul,
                         ::testing::Values(DType::F32, DType::BF16, DType::F16, DType::F8_E4M3),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST(CpuKernels, RmsnormMatchesDoubleAndRef) {
  REQUIRE_AVX512();
  for (int64_t n : {1, 15, 16, 17, 100, 2049}) {
    const int64_t T = 3, xs = n + 2;
    auto x = randn(T * xs, n);
    const auto g = randn(n, n + 1);
    std::vector<float> y(T * n), y_ref(T * n);
    cpu().rmsnorm(y.data(), n, x.data(), xs, g.data(), T, n, 1e-6f);
    ref_kernels().rmsnorm(y_ref.data(), n, x.data(), xs, g.data(), T, n, 1e-6f);
    for (int64_t t = 0; t < T; ++t) {
      double ss = 0;
      for (int64_t i = 0; i < n; ++i) ss += double(x[t * xs + i]) * x[t * xs + i];
      const double r = 1 / std::sqrt(ss / n + 1e-6);
      for (int64_t i = 0; i < n; ++i) {
        const double exact = x[t * xs + i] * r * g[i];
        // r rounded to float32 once (the double sum's error is ~n 2^-53, negligible), then two
        // float32 products: 3u relative, 4u stated for the second-order terms.
        ASSERT_NEAR(y[t * n + i], exact, 4 * kU * std::fabs(exact)) << "n " << n;
        ASSERT_NEAR(y[t * n + i], y_ref[t * n + i], 8 * kU * std::fabs(exact)) << "n " << n;
      }
    }
    // In place (y == x) gives the same values.
    cpu().rmsnorm(x.data(), xs, x.data(), xs, g.data(), T, n, 1e-6f);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(x[t * xs + i], y[t * n + i]);
  }
}

// Values for the exp-based ops: normal ones, large ones of both signs, exact zeros, infinities.
std::vector<float> exp_inputs(int64_t n, uint64_t seed) {
  auto v = randn(n, seed);
  const float special[] = {0.0f,    -0.0f,  88.0f,   -88.0f,   95.0f,
                           -110.0f, 1e-30f, -1e-30f, INFINITY, -INFINITY};
  for (int64_t i = 0; i < n; ++i) v[i] *= 8;
  for (int64_t i = 0; i < n && i < 10; ++i) v[i * 7 % n] = special[i];
  return v;
}

TEST(CpuKernels, SigmoidAndSwigluMatchDoubleAndRef) {
  REQUIRE_AVX512();
  for (int64_t n : {1, 15, 16, 17, 333}) {
    const auto x = exp_inputs(n, n), up = randn(n, n + 1);
    auto s = x, s_ref = x, g = x, g_ref = x;
    cpu().sigmoid(s.data(), n);
    ref_kernels().sigmoid(s_ref.data(), n);
    cpu().swiglu(g.data(), up.data(), n);
    ref_kernels().swiglu(g_ref.data(), up.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double e = std::exp(-double(x[i]));
      const double sig = 1 / (1 + e), sw = double(x[i]) / (1 + e) * up[i];
      // exp16 is within 3u of exp (range reduction 0.35u, Horner ~2u, 2^n exact); then 1 + e, the
      // division and (SwiGLU) the product round once each: 5u and 6u relative. ref (libm exp)
      // stays within the same bounds. Infinite / NaN results must agree exactly.
      if (!std::isfinite(sig) || !std::isfinite(sw)) {
        EXPECT_EQ(std::isnan(s[i]), std::isnan(s_ref[i])) << x[i];
        if (!std::isnan(g[i]) || !std::isnan(g_ref[i])) {
          EXPECT_EQ(g[i], g_ref[i]) << x[i];
        }
        continue;
      }
      // Below 2^-126 float32 results are subnormal: their spacing 2^-149 bounds the error.
      const double tiny = std::ldexp(1.0, -149);
      ASSERT_NEAR(s[i], sig, 5 * kU * sig + tiny) << "sigmoid(" << x[i] << ")";
      ASSERT_NEAR(s_ref[i], sig, 5 * kU * sig + tiny) << "ref sigmoid(" << x[i] << ")";
      ASSERT_NEAR(g[i], sw, 6 * kU * std::fabs(sw) + tiny) << "swiglu(" << x[i] << ")";
      ASSERT_NEAR(g_ref[i], sw, 6 * kU * std::fabs(sw) + tiny) << "ref swiglu(" << x[i] << ")";
    }
  }
}

TEST(CpuKernels, SoftmaxMatchesDoubleAndRef) {
  REQUIRE_AVX512();
  for (int64_t n : {1, 7, 16, 33, 1000}) {
    const int64_t T = 3;
    auto x = randn(T * n, n);
    for (auto& v : x) v *= 5;
    if (n > 1) x[n + n / 2] = -INFINITY;  // a masked entry in row 1
    auto y = x, y_ref = x;
    cpu().softmax(y.data(), T, n);
    ref_kernels().softmax(y_ref.data(), T, n);
    for (int64_t t = 0; t < T; ++t) {
      const float* r = &x[t * n];
      double m = -INFINITY, sum = 0, spread = 0;
      for (int64_t i = 0; i < n; ++i) m = std::max(m, double(r[i]));
      for (int64_t i = 0; i < n; ++i) sum += std::exp(r[i] - m);
      for (int64_t i = 0; i < n; ++i)
        if (std::isfinite(r[i])) spread = std::max(spread, m - r[i]);
      for (int64_t i = 0; i < n; ++i) {
        if (std::isinf(r[i])) {  // masked: exactly 0
          ASSERT_EQ(y[t * n + i], 0.0f);
          continue;
        }
        const double p = std::exp(r[i] - m) / sum;
        // Each exp(x_i - m) is within (3 + |x_i - m|) u (the rounded difference, then exp16);
        // the double sum inherits at most the largest of those; 1 / sum and the product round
        // once each.
        const double bound = ((3 + (m - r[i])) + (3 + spread) + 2) * kU * p;
        ASSERT_NEAR(y[t * n + i], p, bound) << "n " << n << " t " << t << " i " << i;
        ASSERT_NEAR(y_ref[t * n + i], p, bound) << "ref, n " << n;
      }
    }
  }
}

struct AttnCase {
  int64_t T, S, n_heads, n_kv_heads, dk, dv;
};

TEST(CpuKernels, AttentionMatchesDoubleAndRef) {
  REQUIRE_AVX512();
  // GQA with odd head sizes, MLA absorbed-like (one kv head, dk 72, dv 64), prefill from empty
  // (T == S), decode (T == 1) over a longer cache, groups of 5 and 6 query heads per key/value
  // head (kernel chunks of 4 + 1, 4 + 2) and dims above the 64-column register block (the last
  // case is also above the threads cutoff).
  const AttnCase cases[] = {{3, 10, 4, 2, 19, 33},  {1, 37, 3, 1, 72, 64}, {5, 5, 2, 2, 16, 16},
                            {1, 1, 1, 1, 1, 1},     {2, 9, 10, 2, 24, 40}, {1, 130, 6, 1, 72, 64},
                            {4, 70, 2, 1, 130, 150}};
  ThreadPool pool(2);
  for (const AttnCase& c : cases) {
    AttentionArgs a;
    a.T = c.T, a.S = c.S, a.n_heads = c.n_heads, a.n_kv_heads = c.n_kv_heads, a.dk = c.dk,
    a.dv = c.dv;
    a.scale = static_cast<float>(1 / std::sqrt(double(c.dk)));
    // Padded strides: heads and rows are not packed.
    a.q_head_stride = c.dk + 1, a.q_row_stride = c.n_heads * a.q_head_stride + 2;
    a.k_head_stride = c.dk + 3, a.k_row_stride = c.n_kv_heads * a.k_head_stride;
    a.v_head_stride = c.dv, a.v_row_stride = c.n_kv_heads * c.dv + 5;
    a.out_head_stride = c.dv + 1, a.out_row_stride = c.n_heads * a.out_head_stride;
    const auto q = randn(c.T * a.q_row_stride, 1 + c.dk);
    const auto k = randn(c.S * a.k_row_stride, 2 + c.dk);
    const auto v = randn(c.S * a.v_row_stride, 3 + c.dv);
    a.q = q.data(), a.k = k.data(), a.v = v.data();
    std::vector<float> out(c.T * a.out_row_stride), out_ref(out.size());
    a.out = out.data();
    cpu().attention(a, pool);
    a.out = out_ref.data();
    ref_kernels().attention(a, pool);
    // Asking for the log-sum-exp leaves the outputs exactly as they were, in both tables.
    std::vector<float> lse(c.T * c.n_heads), lse_ref(lse.size()), out_lse(out.size());
    a.out = out_lse.data(), a.lse = lse.data();
    cpu().attention(a, pool);
    ASSERT_EQ(std::memcmp(out_lse.data(), out.data(), out.size() * sizeof(float)), 0) << c.T;
    a.lse = lse_ref.data();
    ref_kernels().attention(a, pool);
    ASSERT_EQ(std::memcmp(out_lse.data(), out_ref.data(), out.size() * sizeof(float)), 0) << c.T;
    a.out = out_ref.data(), a.lse = nullptr;
    // The last row alone (decode) gives the prefill's numbers exactly.
    std::vector<float> last(a.out_row_stride);
    AttentionArgs d = a;
    d.T = 1, d.q = q.data() + (c.T - 1) * a.q_row_stride, d.out = last.data();
    cpu().attention(d, pool);
    for (int64_t j = 0; j < a.out_row_stride; ++j)
      ASSERT_EQ(last[j], out[(c.T - 1) * a.out_row_stride + j]) << "decode != prefill, T " << c.T;
    const int64_t group = c.n_heads / c.n_kv_heads;
    for (int64_t t = 0; t < c.T; ++t)
      for (int64_t h = 0; h < c.n_heads; ++h) {
        const int64_t n_keys = c.S - c.T + t + 1, g = h / group;
        const float* qh = &q[t * a.q_row_stride + h * a.q_head_stride];
        std::vector<double> score(n_keys);
        double delta = 0;  // bound on the float32 error of any score
        for (int64_t s = 0; s < n_keys; ++s) {
          double dot = 0, abs_sum = 0;
          for (int64_t j = 0; j < c.dk; ++j) {
            const double p = double(qh[j]) * k[s * a.k_row_stride + g * a.k_head_stride + j];
            dot += p;
            abs_sum += std::fabs(p);
          }
          score[s] = dot * a.scale;
          delta = std::max(delta, (gamma(c.dk) * abs_sum + kU * std::fabs(dot)) * a.scale);
        }
        const double m = *std::max_element(score.begin(), score.end());
        const double spread = m - *std::min_element(score.begin(), score.end());
        double sum = 0;
        for (double& sc : score) sum += (sc = std::exp(sc - m));
        // log-sum-exp moves by at most delta when the scores do; each float32 exp(s - m) is off by
        // (|s - m| + 2) u relative (the rounded difference, then exp), which log turns into at
        // most (spread + 2) u absolute; rounding to float32 adds u |lse|. 2x margin.
        const double lse_exact = m + std::log(sum);
        const double lse_bound = 2 * (delta + (spread + 2) * kU + kU * std::fabs(lse_exact));
        ASSERT_NEAR(lse[t * c.n_heads + h], lse_exact, lse_bound) << "lse, T " << c.T << " t " << t;
        ASSERT_NEAR(lse_ref[t * c.n_heads + h], lse_exact, lse_bound) << "ref lse, T " << c.T;
        for (int64_t j = 0; j < c.dv; ++j) {
          double exact = 0, abs_pv = 0;
          for (int64_t s = 0; s < n_keys; ++s) {
            const double vj = v[s * a.v_row_stride + g * a.v_head_stride + j];
            exact += score[s] * vj;
            abs_pv += score[s] * std::fabs(vj);
          }
          exact /= sum, abs_pv /= sum;
          // Scores off by <= delta move every weight p_s by a factor within exp(±2 delta) after
          // normalisation; float32 exp (a few ulp), the p·v sum (gamma_S) and the final scaling
          // add (S + 8) u; all relative to sum p_s |v_s|. 2x margin.
          const double bound = 2 * (2 * delta + (n_keys + 8) * kU) * abs_pv;
          const int64_t i = t * a.out_row_stride + h * a.out_head_stride + j;
          ASSERT_NEAR(out[i], exact, bound) << "T " << c.T << " S " << c.S << " t " << t;
          ASSERT_NEAR(out_ref[i], exact, bound) << "ref, T " << c.T << " S " << c.S;
        }
      }
  }
}

TEST(CpuKernels, TablesAreCompleteAndBestPicksCpu) {
  REQUIRE_AVX512();
  EXPECT_STREQ(cpu().name, "cpu-avx512");
  EXPECT_STREQ(ref_kernels().name, "ref");
  for (const Kernels* k : {&cpu(), &ref_kernels()}) {
    const void* ptrs[] = {(void*)k->matmul,
                          (void*)k->matmul_xw,
                          (void*)k->matmul_heads,
                          (void*)k->matmul_xw_heads,
                          (void*)k->gemm,
                          (void*)k->gemm_bf16,
                          (void*)k->rmsnorm,
                          (void*)k->embedding,
                          (void*)k->rope_interleaved,
                          (void*)k->rope_half,
                          (void*)k->softmax,
                          (void*)k->sigmoid,
                          (void*)k->swiglu,
                          (void*)k->axpy,
                          (void*)k->add_bias,
                          (void*)k->topk,
                          (void*)k->attention,
                          (void*)k->rmsnorm_backward,
                          (void*)k->embedding_backward,
                          (void*)k->swiglu_backward,
                          (void*)k->cross_entropy,
                          (void*)k->attention_backward};
    for (const void* p : ptrs) EXPECT_NE(p, nullptr) << k->name;
  }
  const char* force = std::getenv("DSV3_KERNELS");
  if (force == nullptr) {
    EXPECT_EQ(&best_kernels(), &cpu_kernels());
  }
}

}  // namespace
}  // namespace dsv3

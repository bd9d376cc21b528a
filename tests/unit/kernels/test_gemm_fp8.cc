// FP8 GEMMs (kernels/gemm_fp8.h, SPEC §3.1): the fast path against the interval-by-interval
// reference, both against float64 sums of the decoded operands, and DeepGEMM's error metric with
// and without FP32 promotion over a limited-precision accumulator.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "base/error.h"
#include "kernels/best_kernels.h"
#include "kernels/gemm_fp8.h"
#include "unit/kernels/kernel_test_util.h"

namespace dsv3 {
namespace {

// DeepGEMM's calc_diff: 1 - 2 Σ xy / Σ (x² + y²), in double.
double deepgemm_diff(const std::vector<double>& x, const std::vector<float>& y) {
  double xy = 0, xx = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    xy += x[i] * y[i];
    xx += x[i] * x[i] + static_cast<double>(y[i]) * y[i];
  }
  return 1.0 - 2.0 * xy / xx;
}

// c[m, n] = Σ_k a[m, k] b[n, k] in double.
std::vector<double> exact(const std::vector<float>& a, const std::vector<float>& b, int64_t M,
                          int64_t N, int64_t K) {
  std::vector<double> c(static_cast<size_t>(M * N));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) s += static_cast<double>(a[m * K + k]) * b[n * K + k];
      c[m * N + n] = s;
    }
  return c;
}

std::vector<float> dequantized(const Fp8Tiles& t) {
  std::vector<float> v(t.q.size());
  dequantize_e4m3_tiles(t, v.data());
  return v;
}

struct Operands {
  std::vector<float> a, b;
  Fp8Tiles qa, qb;
};

// A [M, K] (1x128 tiles), B [N, K] (128x128 blocks, or 1x128 with b_rows 1); rows scaled over a
// few orders of magnitude so that the tile scales differ.
Operands make(int64_t M, int64_t N, int64_t K, int64_t b_rows, uint64_t seed) {
  Operands o;
  o.a = test::randn(static_cast<size_t>(M * K), seed);
  o.b = test::randn(static_cast<size_t>(N * K), seed + 1);
  for (int64_t i = 0; i < M * K; ++i) o.a[i] *= std::ldexp(1.0f, static_cast<int>(i % 7) - 3);
  quantize_e4m3_tiles(o.a.data(), M, K, K, 1, 128, false, o.qa);
  quantize_e4m3_tiles(o.b.data(), N, K, K, b_rows, 128, false, o.qb);
  return o;
}

TEST(GemmFp8, FastPathMatchesReferenceAndExactSums) {
  ThreadPool pool(2);
  for (int64_t b_rows : {128, 1})
    for (auto [M, N, K] : {std::array<int64_t, 3>{37, 300, 520}, {2, 129, 256}, {200, 64, 384}}) {
      SCOPED_TRACE(::testing::Message()
                   << "M " << M << " N " << N << " K " << K << " B tile " << b_rows << "x128");
      const Operands o = make(M, N, K, b_rows, 7);
      std::vector<float> ref(static_cast<size_t>(M * N)), fast(ref.size(), 1.0f);
      gemm_e4m3_ref(o.qa.view(), o.qb.view(), ref.data(), N, false, {});
      if (b_rows == 128)
        gemm_e4m3_1x128_128x128(best_kernels(), o.qa.view(), o.qb.view(), fast.data(), N, false,
                                pool);
      else
        gemm_e4m3_1x128_1x128(best_kernels(), o.qa.view(), o.qb.view(), fast.data(), N, false,
                              pool);
      const std::vector<float> da = dequantized(o.qa), db = dequantized(o.qb);
      const std::vector<double> ex = exact(da, db, M, N, K);
      // Both sum the same exact products (E4M3 x E4M3 fits FP32) in FP32 in different orders,
      // then scale: each within gamma(K + 2) * Σ|products| of the exact value (the dequantized
      // operands differ from q * s by one rounding each, folded into the +2).
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) {
          double abs_sum = 0;
          for (int64_t k = 0; k < K; ++k)
            abs_sum += std::fabs(double(da[m * K + k]) * db[n * K + k]);
          const double tol = test::gamma(K + 4) * abs_sum + 1e-30;
          ASSERT_NEAR(ref[m * N + n], ex[m * N + n], tol) << m << "," << n;
          ASSERT_NEAR(fast[m * N + n], ex[m * N + n], tol) << m << "," << n;
        }
    }
}

TEST(GemmFp8, AccumulateAddsToC) {
  ThreadPool pool(2);
  const Operands o = make(8, 16, 256, 1, 3);
  std::vector<float> c0(8 * 16, 0.0f), c1(8 * 16, 2.5f);
  gemm_e4m3(best_kernels(), o.qa.view(), o.qb.view(), c0.data(), 16, false, pool);
  gemm_e4m3(best_kernels(), o.qa.view(), o.qb.view(), c1.data(), 16, true, pool);
  for (size_t i = 0; i < c0.size(); ++i)
    EXPECT_NEAR(c1[i], c0[i] + 2.5f, 1e-4 * (1 + std::fabs(c0[i])));
}

TEST(GemmFp8, RejectsMismatchedShapesAndIntervals) {
  ThreadPool pool(1);
  const Operands o = make(4, 4, 256, 128, 1);
  Fp8Tiles short_b;
  const std::vector<float> b(4 * 128, 1.0f);
  quantize_e4m3_tiles(b.data(), 4, 128, 128, 1, 128, false, short_b);
  std::vector<float> c(16);
  EXPECT_THROW(gemm_e4m3(best_kernels(), o.qa.view(), short_b.view(), c.data(), 4, false, pool),
               Error);
  EXPECT_THROW(gemm_e4m3(best_kernels(), o.qa.view(), o.qb.view(), c.data(), 4, false, pool, 256),
               Error);  // 1x128 tiles change scale inside a 256-wide interval
  EXPECT_THROW(
      gemm_e4m3_1x128_1x128(best_kernels(), o.qa.view(), o.qb.view(), c.data(), 4, false, pool),
      Error);  // B is 128x128
}

// SPEC §3.1 / TR §3.3.2: at K = 4096 a ~14-bit accumulator loses accuracy, FP32 promotion every
// 128 restores it. The metric compares against the float64 product of the unquantized inputs (as
// DeepGEMM's tests compare against BF16), so it includes the E4M3 quantization error itself.
// Without promotion there is no point at which a tile's scale could be applied, so that variant
// runs on per-tensor scales (one scale per operand, as plain FP8 GEMMs); the promoted per-tensor
// run separates the two effects.
TEST(GemmFp8, PromotionKeepsDeepGemmErrorSmallAtK4096) {
  const int64_t M = 16, N = 64, K = 4096;
  const std::vector<float> a = test::randn(static_cast<size_t>(M * K), 11);
  const std::vector<float> b = test::randn(static_cast<size_t>(N * K), 12);
  const std::vector<double> ex = exact(a, b, M, N, K);
  Fp8Tiles ta, tb, pa, pb;  // tiles/blocks; per tensor
  quantize_e4m3_tiles(a.data(), M, K, K, 1, 128, false, ta);
  quantize_e4m3_tiles(b.data(), N, K, K, 128, 128, false, tb);
  quantize_e4m3_tiles(a.data(), M, K, K, M, K, false, pa);
  quantize_e4m3_tiles(b.data(), N, K, K, N, K, false, pb);
  // Against the unquantized product (DeepGEMM's metric, quantization included), and against the
  // exact product of the quantized operands (the accumulation error alone, as a norm-wise
  // relative error ||c - exact_q|| / ||exact_q||).
  struct Result {
    double diff, accum_rel;
  };
  auto run = [&](const Fp8Tiles& qa, const Fp8Tiles& qb, Fp8GemmEmulation emu) {
    std::vector<float> c(static_cast<size_t>(M * N));
    gemm_e4m3_ref(qa.view(), qb.view(), c.data(), N, false, emu);
    const std::vector<double> exq = exact(dequantized(qa), dequantized(qb), M, N, K);
    double num = 0, den = 0;
    for (size_t i = 0; i < c.size(); ++i) {
      num += (c[i] - exq[i]) * (c[i] - exq[i]);
      den += exq[i] * exq[i];
    }
    return Result{deepgemm_diff(ex, c), std::sqrt(num / den)};
  };
  const Result fp32 = run(ta, tb, {128, 0}), promoted = run(ta, tb, {128, 14});
  const Result tensor_promoted = run(pa, pb, {128, 14}), unpromoted = run(pa, pb, {0, 14});
  std::printf(
      "K=4096, DeepGEMM diff vs the unquantized product / accumulation error alone:\n"
      "  tiles, FP32 sums              %.3g / %.3g\n"
      "  tiles, 14-bit, promoted @128  %.3g / %.3g\n"
      "  tensor, 14-bit, promoted @128 %.3g / %.3g\n"
      "  tensor, 14-bit, no promotion  %.3g / %.3g\n",
      fp32.diff, fp32.accum_rel, promoted.diff, promoted.accum_rel, tensor_promoted.diff,
      tensor_promoted.accum_rel, unpromoted.diff, unpromoted.accum_rel);
  // DeepGEMM's test criterion; FP32 sums within a K-long FP32 sum's rounding of exact.
  EXPECT_LT(fp32.diff, 1e-3);
  EXPECT_LT(promoted.diff, 1e-3);
  EXPECT_LT(fp32.accum_rel, test::gamma(K));
  // Promotion bounds the 14-bit loss to 128 additions: an order of magnitude less accumulation
  // error than 4096 additions in the narrow accumulator, which reaches the percent range.
  EXPECT_GT(unpromoted.accum_rel, 10 * tensor_promoted.accum_rel);
  EXPECT_GT(unpromoted.accum_rel, 5e-3);
  EXPECT_GT(unpromoted.diff, promoted.diff);
}

}  // namespace
}  // namespace dsv3

// The training GEMMs (GemmArgs: c (+)= op(a)·op(b)) of every implementation this CPU runs — ref,
// the AVX-512 FP32 one, and the BF16 ones (ref, AVX512-BF16 dot products, AMX tiles, rounded copies
// through the FP32 one) — against
// float64 sums written here, on shapes around the 16-lane vectors, the register and AMX tiles, the
// k passes and column blocks, both transposes of each operand, leading dimensions longer than the
// rows, overwriting and accumulating (dW +=), 1 and 2 threads. Elements of c outside the M x N
// block must stay untouched.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/cpu/cpu.h"
#include "kernels/kernels.h"
#include "kernels/ref/ref.h"
#include "tensor/half.h"
#include "unit/kernels/kernel_test_util.h"

namespace dsv3 {
namespace {

using test::gamma;
using test::kU;
using GemmFn = void (*)(const GemmArgs&, ThreadPool&);

struct Impl {
  const char* name;
  GemmFn fn;
  bool bf16;
  bool runs;  // on this CPU
};

std::vector<Impl> impls() {
  const bool avx = cpu_kernels_supported();
  return {{"ref", ref::gemm, false, true},
          {"cpu", cpu::gemm, false, avx},
          {"ref_bf16", ref::gemm_bf16, true, true},
          {"dp_bf16", cpu::gemm_bf16_dp, true, avx && cpu::avx512_bf16_supported()},
          {"amx_bf16", cpu::gemm_bf16_amx, true, avx && cpu::amx_supported()},
          {"emulated_bf16", cpu::gemm_bf16_emulated, true, avx},
          {"table_bf16", cpu::gemm_bf16, true, avx}};
}

struct Case {
  int64_t M, N, K;
};
// Edges of 16 (vectors, AMX rows), 8 (register tile rows), 32 (AMX k), 48 (register tile
// columns), 256 (k pass), 480 (column block); a single row or column; K = 1; the training shapes'
// narrow sides (80, 96, 192), a Wgrad with long K and a K past 4096 (the LM head's Dgrad, whose
// AMX passes are longer).
const Case kCases[] = {
    {1, 1, 1},      {3, 5, 7},      {8, 16, 32},   {9, 17, 33},    {17, 47, 31},  {33, 49, 65},
    {1, 100, 40},   {70, 1, 300},   {64, 80, 256}, {100, 96, 257}, {40, 530, 70}, {130, 192, 600},
    {80, 64, 1100}, {20, 40, 4200}, {0, 5, 5},     {5, 0, 5},      {5, 5, 0}};

double bf16_round(float x) {
  return bf16_to_f32(f32_to_bf16(x));
}

// One case, one transpose combination, one setting of accumulate and of the leading dimensions.
void check(const Impl& impl, const Case& cs, bool at, bool bt, bool acc, int64_t pad,
           ThreadPool& pool) {
  const int64_t M = cs.M, N = cs.N, K = cs.K;
  const int64_t a_rows = at ? K : M, a_cols = at ? M : K, b_rows = bt ? N : K, b_cols = bt ? K : N;
  const int64_t lda = a_cols + pad, ldb = b_cols + 2 * pad, ldc = N + 3 * pad;
  const uint64_t seed = uint64_t(M * 1000003 + N * 1009 + K) * 4 + at * 2 + bt;
  const auto a = test::randn(std::max<int64_t>(1, a_rows * lda), seed);
  const auto b = test::randn(std::max<int64_t>(1, b_rows * ldb), seed + 1);
  std::vector<float> c = test::randn(std::max<int64_t>(1, M * ldc), seed + 2);
  for (int64_t m = 0; m < M; ++m)  // the padding of c must survive
    for (int64_t n = N; n < ldc; ++n) c[m * ldc + n] = 1234.5f;
  const std::vector<float> c0 = c;
  GemmArgs g;
  g.M = M, g.N = N, g.K = K;
  g.a = a.data(), g.lda = lda, g.a_trans = at;
  g.b = b.data(), g.ldb = ldb, g.b_trans = bt;
  g.c = c.data(), g.ldc = ldc, g.accumulate = acc;
  impl.fn(g, pool);
  const std::string where = std::string(impl.name) + " M " + std::to_string(M) + " N " +
                            std::to_string(N) + " K " + std::to_string(K) + (at ? " aT" : "") +
                            (bt ? " bT" : "") + (acc ? " +=" : "") + " pad " + std::to_string(pad) +
                            " threads " + std::to_string(pool.size());
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n) {
      const double old = acc ? c0[m * ldc + n] : 0.0;
      double exact = old, exact_f32_ops = old, abs_sum = std::fabs(old);
      for (int64_t k = 0; k < K; ++k) {
        const float x = a[at ? k * lda + m : m * lda + k];
        const float y = b[bt ? n * ldb + k : k * ldb + n];
        const double p = impl.bf16 ? bf16_round(x) * bf16_round(y) : double(x) * y;
        exact += p;
        exact_f32_ops += double(x) * y;
        abs_sum += std::fabs(p);
      }
      const double got = c[m * ldc + n];
      // FP32 (and BF16: the products of rounded operands are exact in FP32): a float32 sum of
      // K + 1 terms in any order is within gamma(K + 1) * Σ|terms| of the exact sum, then stored
      // as float32 (u |c|).
      ASSERT_NEAR(got, exact, gamma(K + 1) * abs_sum + kU * std::fabs(exact))
          << where << " m " << m << " n " << n;
      if (impl.bf16) {
        // Against the unrounded operands: each rounds with relative error <= 2^-8, so each
        // product moves by at most (2^-7 + 2^-16) |xy| <= 2^-7 * (1 + 2^-8) * Σ|products|.
        ASSERT_NEAR(got, exact_f32_ops,
                    (0x1p-7 * (1 + 0x1p-8) + gamma(K + 1)) * 1.01 * abs_sum + kU * std::fabs(exact))
            << where << " (vs unrounded) m " << m << " n " << n;
      }
    }
    for (int64_t n = N; n < ldc; ++n)
      ASSERT_EQ(c[m * ldc + n], 1234.5f) << where << " wrote padding at m " << m << " n " << n;
  }
}

class Gemm : public ::testing::TestWithParam<int> {};

TEST_P(Gemm, MatchesDoubleOnEveryLayout) {
  const Impl impl = impls()[GetParam()];
  if (!impl.runs) GTEST_SKIP() << impl.name << " does not run on this CPU";
  for (int threads : {1, 2}) {
    ThreadPool pool(threads);
    for (const Case& cs : kCases)
      for (int combo = 0; combo < 4; ++combo) {
        const bool at = combo & 1, bt = combo & 2;
        check(impl, cs, at, bt, /*acc=*/combo == 1, /*pad=*/combo == 2 ? 3 : 0, pool);
        if (testing::Test::HasFatalFailure()) return;
      }
  }
}

// The three GEMMs of a Linear on a training shape, through each implementation and against the
// reference of the same precision: the results agree to twice the float64 bound (each is within
// it).
TEST_P(Gemm, LinearShapesAgreeWithReference) {
  const Impl impl = impls()[GetParam()];
  if (!impl.runs) GTEST_SKIP() << impl.name << " does not run on this CPU";
  ThreadPool pool(2);
  const int64_t T = 300, in = 200, out = 150;
  const auto x = test::randn(T * in, 1), w = test::randn(out * in, 2), dy = test::randn(T * out, 3);
  struct Shape {
    const char* what;
    GemmArgs g;
  };
  std::vector<float> c0, c1, c2;
  auto run = [&](GemmFn fn, GemmArgs g, std::vector<float>& c) {
    c = c0;
    g.c = c.data();
    fn(g, pool);
  };
  GemmArgs fprop{T, out, in, x.data(), in, false, w.data(), in, true, nullptr, out, false};
  GemmArgs dgrad{T, in, out, dy.data(), out, false, w.data(), in, false, nullptr, in, false};
  GemmArgs wgrad{out, in, T, dy.data(), out, true, x.data(), in, false, nullptr, in, true};
  for (const GemmArgs& g : {fprop, dgrad, wgrad}) {
    c0 = test::randn(g.M * g.ldc, 4);
    run(impl.fn, g, c1);
    run(impl.bf16 ? ref::gemm_bf16 : ref::gemm, g, c2);
    for (int64_t m = 0; m < g.M; ++m)
      for (int64_t n = 0; n < g.N; ++n) {
        double abs_sum = g.accumulate ? std::fabs(c0[m * g.ldc + n]) : 0;
        for (int64_t k = 0; k < g.K; ++k)
          abs_sum += std::fabs(double(g.a[g.a_trans ? k * g.lda + m : m * g.lda + k]) *
                               g.b[g.b_trans ? n * g.ldb + k : k * g.ldb + n]);
        ASSERT_NEAR(c1[m * g.ldc + n], c2[m * g.ldc + n], 2 * gamma(g.K + 1) * 1.01 * abs_sum)
            << impl.name << " M " << g.M << " N " << g.N << " K " << g.K << " m " << m << " n "
            << n;
      }
  }
}

// BF16 rounding at its edges, c = round(a) · 1 per row: ties go to the even neighbour, the largest
// floats round up to infinity, NaN stays NaN, and (all but ref, which keeps them) float32
// subnormals become zero, as the BF16 instructions treat them (-0 · 1 summed from +0 is +0).
TEST_P(Gemm, Bf16RoundsToNearestEven) {
  const Impl impl = impls()[GetParam()];
  if (!impl.runs || !impl.bf16) GTEST_SKIP() << impl.name << ": not a BF16 GEMM here";
  ThreadPool pool(1);
  const uint32_t in[] = {0x3F808000u, 0x3F818000u, 0x3F808001u, 0xBF818000u, 0x7F7FFFFFu,
                         0x7F7F7FFFu, 0x00012345u, 0x80400000u, 0x7FC00001u, 0x00800000u};
  const uint32_t want[] = {0x3F800000u, 0x3F820000u, 0x3F810000u, 0xBF820000u, 0x7F800000u,
                           0x7F7F0000u, 0x00000000u, 0x00000000u, 0x7FC00000u, 0x00800000u};
  const int64_t n = sizeof in / sizeof in[0];
  std::vector<float> a(n), c(n), one(1, 1.0f);
  std::memcpy(a.data(), in, sizeof in);
  GemmArgs g{n, 1, 1, a.data(), 1, false, one.data(), 1, false, c.data(), 1, false};
  impl.fn(g, pool);
  const bool keeps_subnormals = std::string(impl.name) == "ref_bf16";
  for (int64_t i = 0; i < n; ++i) {
    uint32_t got;
    std::memcpy(&got, &c[i], 4);
    if (std::isnan(c[i])) {
      EXPECT_EQ(want[i] & 0x7FC00000u, 0x7FC00000u) << impl.name << " input " << i;
    } else if (keeps_subnormals && (in[i] & 0x7F800000u) == 0) {
      EXPECT_EQ(got, in[i] & 0xFFFF0000u) << impl.name << " input " << i;
    } else {
      EXPECT_EQ(got, want[i]) << impl.name << " input " << std::hex << in[i];
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Impls, Gemm, ::testing::Range(0, int(impls().size())),
                         [](const auto& info) { return std::string(impls()[info.param].name); });

}  // namespace
}  // namespace dsv3

// Reference training GEMMs: c = (accumulate ? c : 0) + op(a)·op(b) by the definition, each c[m, n]
// starting from c (or 0) and adding the products in order of k, in FP32. gemm_bf16 rounds copies
// of a and b to BF16 first and runs the same loop.
#include <vector>

#include "base/error.h"
#include "kernels/ref/ref.h"
#include "tensor/half.h"

namespace dsv3::ref {

void check_gemm_args(const GemmArgs& g) {
  DSV3_CHECK(g.M >= 0 && g.N >= 0 && g.K >= 0, "kernels: gemm with a negative size");
  DSV3_CHECK(g.M == 0 || g.N == 0 || g.c != nullptr, "kernels: gemm without an output");
  DSV3_CHECK(g.ldc >= g.N && g.lda >= (g.a_trans ? g.M : g.K) && g.ldb >= (g.b_trans ? g.K : g.N),
             "kernels: gemm with a leading dimension shorter than its rows",
             "lda, ldb and ldc count elements between rows of the matrices as stored");
  DSV3_CHECK(g.K == 0 || g.M == 0 || g.N == 0 || (g.a != nullptr && g.b != nullptr),
             "kernels: gemm without its inputs");
}

void gemm(const GemmArgs& g, ThreadPool& pool) {
  check_gemm_args(g);
  // (m, k) of a and (k, n) of b as stored: one stride is 1, the other the leading dimension.
  const int64_t am = g.a_trans ? 1 : g.lda, ak = g.a_trans ? g.lda : 1;
  const int64_t bk = g.b_trans ? 1 : g.ldb, bn = g.b_trans ? g.ldb : 1;
  pool.parallel_for(g.M, [&](int64_t b, int64_t e) {
    for (int64_t m = b; m < e; ++m)
      for (int64_t n = 0; n < g.N; ++n) {
        float s = g.accumulate ? g.c[m * g.ldc + n] : 0.0f;
        for (int64_t k = 0; k < g.K; ++k) s += g.a[m * am + k * ak] * g.b[k * bk + n * bn];
        g.c[m * g.ldc + n] = s;
      }
  });
}

namespace {

// The rows x cols matrix at p (ld apart) rounded to BF16 and widened back, packed (ld = cols).
std::vector<float> rounded(const float* p, int64_t rows, int64_t cols, int64_t ld) {
  std::vector<float> out(rows * cols);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[r * cols + c] = bf16_to_f32(f32_to_bf16(p[r * ld + c]));
  return out;
}

}  // namespace

void gemm_bf16(const GemmArgs& g, ThreadPool& pool) {
  check_gemm_args(g);
  GemmArgs r = g;
  const int64_t a_rows = g.a_trans ? g.K : g.M, a_cols = g.a_trans ? g.M : g.K;
  const int64_t b_rows = g.b_trans ? g.N : g.K, b_cols = g.b_trans ? g.K : g.N;
  const std::vector<float> a = g.a ? rounded(g.a, a_rows, a_cols, g.lda) : std::vector<float>();
  const std::vector<float> b = g.b ? rounded(g.b, b_rows, b_cols, g.ldb) : std::vector<float>();
  r.a = a.data(), r.lda = a_cols, r.b = b.data(), r.ldb = b_cols;
  gemm(r, pool);
}

}  // namespace dsv3::ref

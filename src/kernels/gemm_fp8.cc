// FP8 GEMMs with per-interval promotion (see gemm_fp8.h, SPEC §3.1).
#include "kernels/gemm_fp8.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <memory>
#include <vector>

#include "base/error.h"
#include "tensor/fp8.h"

namespace dsv3 {
namespace {

// The interval length actually used: nc, or all of K when nc is 0; checks that every scale of a
// and b is constant over each interval.
int64_t check_operands(const Fp8Matrix& a, const Fp8Matrix& b, int64_t nc) {
  DSV3_CHECK(a.cols == b.cols,
             "gemm_e4m3: A is [" + std::to_string(a.rows) + ", " + std::to_string(a.cols) +
                 "] but B is [" + std::to_string(b.rows) + ", " + std::to_string(b.cols) + "]",
             "both operands hold K along their rows");
  const int64_t K = a.cols, len = nc > 0 ? nc : std::max<int64_t>(K, 1);
  for (const Fp8Matrix* t : {&a, &b})
    DSV3_CHECK(t->tiles_c() == 1 || t->bc % len == 0,
               "gemm_e4m3: tiles of " + std::to_string(t->bc) + " along K change scale inside a " +
                   std::to_string(len) + "-element promotion interval",
               "use a promotion interval that divides the tile width");
  return len;
}

// x truncated toward zero to `bits` significant bits.
float truncate_bits(float x, int bits) {
  const uint32_t u = std::bit_cast<uint32_t>(x);
  if (((u >> 23) & 0xFF) == 0 || bits >= 24) return x;  // zero/subnormal: nothing to drop
  const uint32_t mask = ~((uint32_t{1} << (24 - bits)) - 1);
  return std::bit_cast<float>(u & mask);
}

bool all_scales_shared(const Fp8Matrix& t) {
  return t.tiles_c() == 1;
}

// Up to this many rows of A, gemm_e4m3 skips decoding B into a copy (decode-time matmuls, where
// reading the weight once is the whole cost).
constexpr int64_t kDirectRows = 4;

void gemm_direct(const Fp8Matrix& a, const Fp8Matrix& b, float* c, int64_t ldc, bool accumulate,
                 ThreadPool& pool, int64_t len) {
  const int64_t M = a.rows, K = a.cols;
  std::vector<float> ad(static_cast<size_t>(M * K));
  e4m3_to_f32(a.q, ad.data(), M * K);
  pool.parallel_for(b.rows, [&](int64_t n0, int64_t n1) {
    std::vector<float> row(static_cast<size_t>(K));
    for (int64_t n = n0; n < n1; ++n) {
      e4m3_to_f32(b.q + n * K, row.data(), K);
      for (int64_t m = 0; m < M; ++m) {
        float acc = accumulate ? c[m * ldc + n] : 0.0f;
        for (int64_t k0 = 0; k0 < K; k0 += len) {
          const float* x = ad.data() + m * K;
          const int64_t k1 = std::min(K, k0 + len);
          // 16 lanes of partial sums (the compiler keeps them in one vector register).
          float lanes[16] = {};
          int64_t k = k0;
          for (; k + 16 <= k1; k += 16)
            for (int l = 0; l < 16; ++l) lanes[l] += x[k + l] * row[k + l];
          float part = 0.0f;
          for (; k < k1; ++k) part += x[k] * row[k];
          for (float l : lanes) part += l;
          acc += part * (a.scale_at(m, k0) * b.scale_at(n, k0));
        }
        c[m * ldc + n] = acc;
      }
    }
  });
}

}  // namespace

void gemm_e4m3_ref(const Fp8Matrix& a, const Fp8Matrix& b, float* c, int64_t ldc, bool accumulate,
                   const Fp8GemmEmulation& emu) {
  const int64_t len = check_operands(a, b, emu.nc), K = a.cols;
  for (int64_t m = 0; m < a.rows; ++m)
    for (int64_t n = 0; n < b.rows; ++n) {
      float acc = accumulate ? c[m * ldc + n] : 0.0f;
      for (int64_t k0 = 0; k0 < K; k0 += len) {
        float part = 0.0f;
        for (int64_t k = k0; k < std::min(K, k0 + len); ++k) {
          part += e4m3_to_f32(a.q[m * K + k]) * e4m3_to_f32(b.q[n * K + k]);
          if (emu.acc_bits > 0) part = truncate_bits(part, emu.acc_bits);
        }
        acc += part * (a.scale_at(m, k0) * b.scale_at(n, k0));
      }
      c[m * ldc + n] = acc;
    }
}

void gemm_e4m3(const Kernels& k, const Fp8Matrix& a, const Fp8Matrix& b, float* c, int64_t ldc,
               bool accumulate, ThreadPool& pool, int64_t nc) {
  const int64_t M = a.rows, N = b.rows, K = a.cols;
  int64_t len = check_operands(a, b, nc);
  if (M <= kDirectRows) return gemm_direct(a, b, c, ldc, accumulate, pool, len);
  if (all_scales_shared(a) && all_scales_shared(b)) len = std::max<int64_t>(K, 1);
  // Uninitialised (every element is written before it is read): zeroing them cost as much as
  // decoding.
  const std::unique_ptr<float[]> ad(new float[M * K]), bd(new float[N * K]), part(new float[M * N]);
  std::vector<float> sb(static_cast<size_t>(N));
  e4m3_to_f32(a.q, ad.get(), M * K);
  e4m3_to_f32(b.q, bd.get(), N * K);
  if (!accumulate)
    for (int64_t m = 0; m < M; ++m) std::fill(c + m * ldc, c + m * ldc + N, 0.0f);
  for (int64_t k0 = 0; k0 < K; k0 += len) {
    const int64_t kn = std::min(len, K - k0);
    k.gemm_bf16({M, N, kn, ad.get() + k0, K, false, bd.get() + k0, K, true, part.get(), N, false},
                pool);
    for (int64_t n = 0; n < N; ++n) sb[n] = b.scale_at(n, k0);
    pool.parallel_for(M, [&](int64_t m0, int64_t m1) {
      for (int64_t m = m0; m < m1; ++m) {
        const float sa = a.scale_at(m, k0);
        const float* p = part.get() + m * N;
        float* cm = c + m * ldc;
        for (int64_t n = 0; n < N; ++n) cm[n] += p[n] * (sa * sb[n]);
      }
    });
  }
}

void gemm_e4m3_1x128_128x128(const Kernels& k, const Fp8Matrix& a, const Fp8Matrix& b, float* c,
                             int64_t ldc, bool accumulate, ThreadPool& pool) {
  DSV3_CHECK(a.br == 1 && a.bc == 128 && b.br == 128 && b.bc == 128,
             "gemm_e4m3_1x128_128x128: operands tiled " + std::to_string(a.br) + "x" +
                 std::to_string(a.bc) + " and " + std::to_string(b.br) + "x" +
                 std::to_string(b.bc));
  gemm_e4m3(k, a, b, c, ldc, accumulate, pool);
}

void gemm_e4m3_1x128_1x128(const Kernels& k, const Fp8Matrix& a, const Fp8Matrix& b, float* c,
                           int64_t ldc, bool accumulate, ThreadPool& pool) {
  DSV3_CHECK(a.br == 1 && a.bc == 128 && b.br == 1 && b.bc == 128,
             "gemm_e4m3_1x128_1x128: operands tiled " + std::to_string(a.br) + "x" +
                 std::to_string(a.bc) + " and " + std::to_string(b.br) + "x" +
                 std::to_string(b.bc));
  gemm_e4m3(k, a, b, c, ldc, accumulate, pool);
}

}  // namespace dsv3

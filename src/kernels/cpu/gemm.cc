// AVX-512 FP32 training GEMM (GemmArgs, kernels.h): c (+)= op(a)·op(b).
//
// op(b) is packed once per call into panels of 16 columns, [k][16] each (zero past N; bᵀ, the
// Fprop weight, by 16 x 16 transposes; see pack_b), so the register tile reads whole aligned
// vectors whatever b's layout. op(a) is read in place: a row of a (a_trans false) or a row of aᵀ
// (a_trans: the Wgrad's dy, whose 8 rows of the tile sit side by side for each k) gives each
// k's 8 values, broadcast. The register tile is 8 rows x 48 columns: 24 accumulators, 3 vector
// loads and 8 broadcasts per 24 FMAs. Blocking: k in passes of kKc; a thread's rows of one column
// block of kNc columns go 8 at a time (their kKc values of a stay in L1) across the block's
// panels (kKc x kNc packed floats, in L2). The accumulators start from c when accumulating or
// after the first pass, so c gets one load and store per pass.
// GCC 12's AVX-512 headers build "undefined" vectors as `__m512 __Y = __Y;`, which its own
// -Wuninitialized flags once inlined here (GCC PR 105593, fixed in 13): silence just those.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/gemm_util.h"
#include "kernels/ref/ref.h"

#pragma GCC target("avx512f,avx512bw,avx512vl")  // after every include, see matmul.cc

#include "kernels/cpu/simd.h"

namespace dsv3::cpu {
namespace {

constexpr int kMR = 8, kNV = 3;  // the register tile: 8 rows x 3 vectors of 16 columns
constexpr int64_t kKc = 256;     // k per pass
constexpr int64_t kNc = 480;  // columns per block (10 register tiles; kKc x kNc floats = 480 KiB)

// Part t0 .. t1 of packing op(b) into panels of 16 columns (panel p at bp + p * K * 16, [k][16]):
// bᵀ (k along b's rows) by panels, each 16 rows of b read front to back and transposed 16 x 16;
// b (k down its rows) by bands of 16 k, whole rows of b front to back (walking down one 16-wide
// strip of many rows would leave the hardware prefetchers nothing to follow).
int64_t pack_b_tasks(const GemmArgs& g) {
  return g.b_trans ? (g.N + 15) / 16 : (g.K + 15) / 16;
}

void pack_b(const GemmArgs& g, float* bp, int64_t t0, int64_t t1) {
  const int64_t K = g.K, panels = (g.N + 15) / 16;
  for (int64_t t = t0; t < t1; ++t) {
    if (!g.b_trans) {
      for (int64_t k = t * 16; k < std::min(K, t * 16 + 16); ++k)
        for (int64_t p = 0; p < panels; ++p)
          _mm512_store_ps(bp + p * K * 16 + k * 16,
                          _mm512_maskz_loadu_ps(tail_mask(g.N - p * 16), g.b + k * g.ldb + p * 16));
      continue;
    }
    float* dst = bp + t * K * 16;
    const int64_t n0 = t * 16, nn = std::min<int64_t>(16, g.N - n0);
    for (int64_t k = 0; k < K; k += 16) {
      const int64_t kk = std::min<int64_t>(16, K - k);
      const __mmask16 m = tail_mask(kk);
      __m512i r[16];
      for (int j = 0; j < 16; ++j)
        r[j] = j < nn ? _mm512_maskz_loadu_epi32(m, g.b + (n0 + j) * g.ldb + k)
                      : _mm512_setzero_si512();
      transpose16(r);
      for (int64_t i = 0; i < kk; ++i) _mm512_store_si512(dst + (k + i) * 16, r[i]);
    }
  }
}

// c[i * ldc + 16 v + lane] (i < MR, v < NV; the last vector's lanes outside `last` untouched) =
// (load ? c : 0) + Σ_{k < kc} A(i, k) · bp[v * pstride + k * 16 + lane], A(i, k) = a[k * lda + i]
// (AT) or a[i * lda + k].
template <int MR, int NV, bool AT>
void micro(const float* a, int64_t lda, const float* bp, int64_t pstride, int64_t kc, float* c,
           int64_t ldc, __mmask16 last, bool load) {
  __m512 acc[MR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      acc[i][v] =
          load ? _mm512_maskz_loadu_ps(v == NV - 1 ? last : __mmask16(0xFFFF), c + i * ldc + 16 * v)
               : _mm512_setzero_ps();
  const float* ar[MR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) ar[i] = AT ? a + i : a + i * lda;
  const int64_t step = AT ? lda : 1;
#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; ++k) {
    __m512 bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = _mm512_load_ps(bp + v * pstride + k * 16);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m512 av = _mm512_set1_ps(ar[i][k * step]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(av, bv[v], acc[i][v]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      _mm512_mask_storeu_ps(c + i * ldc + 16 * v, v == NV - 1 ? last : __mmask16(0xFFFF),
                            acc[i][v]);
}

using Micro = void (*)(const float*, int64_t, const float*, int64_t, int64_t, float*, int64_t,
                       __mmask16, bool);

// Every (rows, vectors) tile: entry (mr - 1) * kNV + nv - 1.
template <bool AT, size_t... I>
constexpr std::array<Micro, sizeof...(I)> micro_table(std::index_sequence<I...>) {
  return {&micro<int(I / kNV) + 1, int(I % kNV) + 1, AT>...};
}
template <bool AT>
constexpr auto kMicro = micro_table<AT>(std::make_index_sequence<kMR * kNV>());

// Rows [m0, m1) x columns [n0, n1) of c (n0 a multiple of 16) from the packed panels.
template <bool AT>
void segment(const GemmArgs& g, const float* bp, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  const int64_t pstride = g.K * 16;
  for (int64_t k0 = 0; k0 < g.K; k0 += kKc) {
    const int64_t kc = std::min(kKc, g.K - k0);
    const bool load = g.accumulate || k0 > 0;
    for (int64_t m = m0; m < m1; m += kMR) {
      const int64_t mr = std::min<int64_t>(kMR, m1 - m);
      const float* a = AT ? g.a + k0 * g.lda + m : g.a + m * g.lda + k0;
      for (int64_t n = n0; n < n1; n += 16 * kNV) {
        const int64_t nv = std::min<int64_t>(kNV, (n1 - n + 15) / 16);
        const __mmask16 last = tail_mask(n1 - (n + 16 * (nv - 1)));
        kMicro<AT>[(mr - 1) * kNV + nv - 1](a, g.lda, bp + (n / 16) * pstride + k0 * 16, pstride,
                                            kc, g.c + m * g.ldc + n, g.ldc, last, load);
      }
    }
  }
}

}  // namespace

void gemm(const GemmArgs& g, ThreadPool& pool) {
  ref::check_gemm_args(g);
  if (g.M == 0 || g.N == 0) return;
  if (g.K == 0) {
    if (!g.accumulate)
      for (int64_t m = 0; m < g.M; ++m) std::fill_n(g.c + m * g.ldc, g.N, 0.0f);
    return;
  }
  const int64_t panels = (g.N + 15) / 16;
  float* bp = static_cast<float*>(gemm_scratch(0, panels * g.K * 16 * sizeof(float)));
  const bool serial = g.M * g.N * g.K < kGemmSerialMacs || pool.size() == 1;
  const auto pack = [&](int64_t b, int64_t e) { pack_b(g, bp, b, e); };
  if (serial)
    pack(0, pack_b_tasks(g));
  else
    pool.parallel_for(pack_b_tasks(g), pack);
  const GemmPlan plan = plan_gemm(g.M, g.N, kMR, kNc, 16 * kNV, pool.size());
  const auto run = [&](int64_t b, int64_t e) {
    while (b < e) {  // runs of bands within one column block
      const int64_t blk = b / plan.n_bands, band0 = b % plan.n_bands;
      const int64_t band1 = std::min(plan.n_bands, band0 + (e - b));
      const int64_t m0 = band0 * plan.band, m1 = std::min(g.M, band1 * plan.band);
      const int64_t n0 = blk * plan.block, n1 = std::min(g.N, n0 + plan.block);
      if (g.a_trans)
        segment<true>(g, bp, m0, m1, n0, n1);
      else
        segment<false>(g, bp, m0, m1, n0, n1);
      b += band1 - band0;
    }
  };
  if (serial)
    run(0, plan.tasks());
  else
    pool.parallel_for(plan.tasks(), run);
}

namespace {

// x rounded to BF16 as vcvtne2ps2bf16 does (nearest even, NaN kept quiet, float32 subnormals to
// zero), returned as float32.
inline __m512 round_bf16(__m512 x) {
  const __m512i u = _mm512_castps_si512(x), hi = _mm512_set1_epi32(int(0xFFFF0000u));
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r =
      _mm512_and_si512(_mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), lsb)), hi);
  const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  r = _mm512_mask_mov_epi32(r, nan,
                            _mm512_and_si512(_mm512_or_si512(u, _mm512_set1_epi32(0x400000)), hi));
  const __mmask16 tiny = _mm512_testn_epi32_mask(u, _mm512_set1_epi32(0x7F800000));
  r = _mm512_mask_mov_epi32(r, tiny, _mm512_and_si512(u, _mm512_set1_epi32(int(0x80000000u))));
  return _mm512_castsi512_ps(r);
}

// rows x cols at p (ld apart) rounded into out (cols apart).
void rounded_copy(const float* p, int64_t rows, int64_t cols, int64_t ld, float* out,
                  ThreadPool& pool) {
  run_tasks(pool, rows, rows * cols / 8, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t c = 0; c < cols; c += 16) {
        const __mmask16 m = tail_mask(cols - c);
        _mm512_mask_storeu_ps(out + r * cols + c, m,
                              round_bf16(_mm512_maskz_loadu_ps(m, p + r * ld + c)));
      }
  });
}

}  // namespace

void gemm_bf16_emulated(const GemmArgs& g, ThreadPool& pool) {
  ref::check_gemm_args(g);
  if (g.M == 0 || g.N == 0 || g.K == 0) return gemm(g, pool);
  const int64_t a_rows = g.a_trans ? g.K : g.M, a_cols = g.a_trans ? g.M : g.K;
  const int64_t b_rows = g.b_trans ? g.N : g.K, b_cols = g.b_trans ? g.K : g.N;
  auto* a = static_cast<float*>(gemm_scratch(2, a_rows * a_cols * sizeof(float)));
  auto* b = static_cast<float*>(gemm_scratch(3, b_rows * b_cols * sizeof(float)));
  rounded_copy(g.a, a_rows, a_cols, g.lda, a, pool);
  rounded_copy(g.b, b_rows, b_cols, g.ldb, b, pool);
  GemmArgs r = g;
  r.a = a, r.lda = a_cols, r.b = b, r.ldb = b_cols;
  gemm(r, pool);
}

}  // namespace dsv3::cpu

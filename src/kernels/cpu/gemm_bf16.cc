// BF16 training GEMM with AVX512-BF16 dot products (vdpbf16ps), and the packing and task driver it
// shares with the AMX one (gemm_amx.cc).
//
// Packing (layout: PackedBf16 in gemm_util.h) rounds each float32 to BF16 with vcvtne2ps2bf16
// (nearest even, subnormals to zero) and pairs neighbouring k into 32 bits: a row with k
// contiguous (a, or the Fprop weight bᵀ) gives 16 pairs per 32 floats as they lie; two rows of k
// (aᵀ, b) are interleaved 16-bit by 16-bit. Where the tile wants the other orientation, 16 x 16
// pairs are transposed as 32-bit elements.
//
// vdpbf16ps adds two products of BF16 pairs to each FP32 lane; the register tile is that of the
// FP32 GEMM (8 rows x 48 columns, 24 accumulators) over pairs instead of k: 3 panel loads and 8
// broadcast pairs per 24 instructions. (On CPUs with AMX the table uses gemm_amx.cc instead; on
// some, vdpbf16ps runs at half the rate of FP32 FMAs, so this kernel is for those without AMX.)
// GCC 12's AVX-512 headers build "undefined" vectors as `__m512 __Y = __Y;`, which its own
// -Wuninitialized flags once inlined here (GCC PR 105593, fixed in 13): silence just those.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <cpuid.h>
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>

#include "kernels/best_kernels.h"
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/gemm_util.h"
#include "kernels/ref/ref.h"

#pragma GCC target("avx512f,avx512bw,avx512vl,avx512bf16")  // after every include

#include "kernels/cpu/simd.h"

namespace dsv3::cpu {

bool avx512_bf16_supported() {
  static const bool ok = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    return cpu_kernels_supported() && __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 5));
  }();
  return ok;
}

namespace {

// 32 floats at p (k0 .. k0 + 31 of a row; those at or past `n` read as 0) as 16 BF16 pairs.
inline __m512i row_pairs(const float* p, int64_t n) {
  const __m512 lo = _mm512_maskz_loadu_ps(n > 0 ? tail_mask(n) : 0, p);
  const __m512 hi = _mm512_maskz_loadu_ps(n > 16 ? tail_mask(n - 16) : 0, p + 16);
  return reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo));
}

// Lane i: the pair (even[i], odd[i]) of 16 floats each (lanes outside `m` read as 0).
inline __m512i interleave(const float* even, const float* odd, __mmask16 m) {
  const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                       23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512bh h =
      _mm512_cvtne2ps_pbh(odd ? _mm512_maskz_loadu_ps(m, odd) : _mm512_setzero_ps(),
                          even ? _mm512_maskz_loadu_ps(m, even) : _mm512_setzero_ps());
  return _mm512_permutexvar_epi16(idx, reinterpret_cast<__m512i>(h));
}

// Tile (x16, k32) of a matrix whose rows x16 * 16 + i (i < 16, < rows) hold k along memory:
// element (row r, k) at p[r * ld + k], K values. out[i][j] = pair j of row i ("rows along k"), or
// its transpose (`transpose`: out[j][i], the Fprop weight as a B tile).
void tile_k_in_rows(uint32_t* out, const float* p, int64_t ld, int64_t rows, int64_t K, int64_t x16,
                    int64_t k32, bool transpose) {
  __m512i r[16];
  const int64_t k0 = k32 * 32;
  for (int64_t i = 0; i < 16; ++i) {
    const int64_t row = x16 * 16 + i;
    r[i] = row < rows ? row_pairs(p + row * ld + k0, K - k0) : _mm512_setzero_si512();
  }
  if (transpose) transpose16(r);
  for (int i = 0; i < 16; ++i) _mm512_store_si512(out + i * 16, r[i]);
}

// Tile (x16, k32) of a matrix stored with k down the rows: element (x, k) at p[k * ld + x], x <
// cols, k < K. out[j][i] = pair j of column x16 * 16 + i (a B tile), or its transpose
// (`transpose`: out[i][j], aᵀ as an A tile).
void tile_k_down(uint32_t* out, const float* p, int64_t ld, int64_t cols, int64_t K, int64_t x16,
                 int64_t k32, bool transpose) {
  __m512i r[16];
  const int64_t x0 = x16 * 16;
  const __mmask16 m = tail_mask(cols - x0);
  for (int64_t j = 0; j < 16; ++j) {
    const int64_t k = k32 * 32 + 2 * j;
    r[j] = interleave(k < K ? p + k * ld + x0 : nullptr,
                      k + 1 < K ? p + (k + 1) * ld + x0 : nullptr, m);
  }
  if (transpose) transpose16(r);
  for (int i = 0; i < 16; ++i) _mm512_store_si512(out + i * 16, r[i]);
}

// Register tile: c[i * ldc + 16 v + lane] (i < MR, v < NV; the last vector's lanes outside `last`
// untouched) = (load ? c : 0) + Σ over pairs [p0, p0 + np) of the pair dot products. `a` is the
// first row's A tile row at pair 0 (rows 16 apart; every 16 pairs the next tile, 256 further);
// bp the first panel at pair 0, panels pstride apart. p0 and np are multiples of 16.
template <int MR, int NV>
void micro(const uint32_t* a, const uint32_t* bp, int64_t pstride, int64_t p0, int64_t np, float* c,
           int64_t ldc, __mmask16 last, bool load) {
  __m512 acc[MR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      acc[i][v] =
          load ? _mm512_maskz_loadu_ps(v == NV - 1 ? last : __mmask16(0xFFFF), c + i * ldc + 16 * v)
               : _mm512_setzero_ps();
  for (int64_t p = p0; p < p0 + np; p += 16) {
    const uint32_t* at = a + (p / 16) * 256;
    const uint32_t* bt = bp + p * 16;
#pragma GCC unroll 4
    for (int j = 0; j < 16; ++j) {
      __m512bh bv[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v)
        bv[v] = reinterpret_cast<__m512bh>(_mm512_load_si512(bt + v * pstride + j * 16));
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) {
        const __m512bh av = reinterpret_cast<__m512bh>(_mm512_set1_epi32(int(at[i * 16 + j])));
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], av, bv[v]);
      }
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      _mm512_mask_storeu_ps(c + i * ldc + 16 * v, v == NV - 1 ? last : __mmask16(0xFFFF),
                            acc[i][v]);
}

constexpr int kMR = 8, kNV = 3;
constexpr int64_t kPc = 256;  // pairs per pass (512 k)

using Micro = void (*)(const uint32_t*, const uint32_t*, int64_t, int64_t, int64_t, float*, int64_t,
                       __mmask16, bool);
template <size_t... I>
constexpr std::array<Micro, sizeof...(I)> micro_table(std::index_sequence<I...>) {
  return {&micro<int(I / kNV) + 1, int(I % kNV) + 1>...};
}
constexpr auto kMicro = micro_table(std::make_index_sequence<kMR * kNV>());

void dp_segment(const GemmArgs& g, const PackedBf16& pk, int64_t m0, int64_t m1, int64_t n0,
                int64_t n1) {
  const int64_t pairs = pk.kb * 16, pstride = pairs * 16;
  for (int64_t p0 = 0; p0 < pairs; p0 += kPc) {
    const int64_t np = std::min(kPc, pairs - p0);
    const bool load = g.accumulate || p0 > 0;
    for (int64_t m = m0; m < m1; m += kMR) {
      const int64_t mr = std::min<int64_t>(kMR, m1 - m);
      const uint32_t* a = pk.a_tile(m / 16, 0) + (m % 16) * 16;
      for (int64_t n = n0; n < n1; n += 16 * kNV) {
        const int64_t nv = std::min<int64_t>(kNV, (n1 - n + 15) / 16);
        const __mmask16 last = tail_mask(n1 - (n + 16 * (nv - 1)));
        kMicro[(mr - 1) * kNV + nv - 1](a, pk.b_tile(n / 16, 0), pstride, p0, np,
                                        g.c + m * g.ldc + n, g.ldc, last, load);
      }
    }
  }
}

}  // namespace

void pack_a_tiles(const GemmArgs& g, uint32_t* out, int64_t m16_0, int64_t m16_1, int64_t k0,
                  int64_t k1) {
  for (int64_t x = m16_0; x < m16_1; ++x)
    for (int64_t k32 = k0; k32 < k1; ++k32, out += 256)
      tile_k_in_rows(out, g.a, g.lda, g.M, g.K, x, k32, false);
}

void pack_rows_as_b_tiles(const float* p, int64_t ld, int64_t rows, int64_t K, uint32_t* out,
                          int64_t x16_0, int64_t x16_1) {
  const int64_t kb = (K + 31) / 32;
  for (int64_t x = x16_0; x < x16_1; ++x)
    for (int64_t k32 = 0; k32 < kb; ++k32, out += 256)
      tile_k_in_rows(out, p, ld, rows, K, x, k32, true);
}

void run_gemm_bf16(const GemmArgs& g, ThreadPool& pool, int64_t band, int64_t block,
                   int64_t col_unit, bool segment_packs_a, Bf16Segment segment) {
  ref::check_gemm_args(g);
  if (g.M == 0 || g.N == 0) return;
  if (g.K == 0) {
    if (!g.accumulate)
      for (int64_t m = 0; m < g.M; ++m) std::fill_n(g.c + m * g.ldc, g.N, 0.0f);
    return;
  }
  PackedBf16 pk;
  pk.kb = (g.K + 31) / 32;
  const int64_t m16 = (g.M + 15) / 16, n16 = (g.N + 15) / 16, tile = 256 * sizeof(uint32_t);
  const bool pack_a = !segment_packs_a || g.a_trans;
  auto* a = pack_a ? static_cast<uint32_t*>(gemm_scratch(0, m16 * pk.kb * tile)) : nullptr;
  auto* b = static_cast<uint32_t*>(gemm_scratch(1, n16 * pk.kb * tile));
  pk.a = a, pk.a_kb = pk.kb, pk.b = b;
  const bool serial = g.M * g.N * g.K < kGemmSerialMacs || pool.size() == 1;
  // Packing tasks: one per 16 rows of a matrix stored with k along its rows (all its k tiles, each
  // row read front to back), one per 32 k of a matrix with k down its rows (a band of whole rows:
  // walking 32 rows down one 16-wide strip at a time would leave the hardware prefetchers
  // nothing to follow). A's tasks first, then B's.
  const int64_t a_tasks = !pack_a ? 0 : g.a_trans ? pk.kb : m16;
  const int64_t b_tasks = g.b_trans ? n16 : pk.kb;
  const auto pack = [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      if (t < a_tasks) {
        if (g.a_trans)
          for (int64_t x = 0; x < m16; ++x)
            tile_k_down(a + (x * pk.kb + t) * 256, g.a, g.lda, g.M, g.K, x, t, true);
        else
          for (int64_t k32 = 0; k32 < pk.kb; ++k32)
            tile_k_in_rows(a + (t * pk.kb + k32) * 256, g.a, g.lda, g.M, g.K, t, k32, false);
      } else {
        const int64_t u = t - a_tasks;
        if (g.b_trans)
          for (int64_t k32 = 0; k32 < pk.kb; ++k32)
            tile_k_in_rows(b + (u * pk.kb + k32) * 256, g.b, g.ldb, g.N, g.K, u, k32, true);
        else
          for (int64_t x = 0; x < n16; ++x)
            tile_k_down(b + (x * pk.kb + u) * 256, g.b, g.ldb, g.N, g.K, x, u, false);
      }
    }
  };
  if (serial)
    pack(0, a_tasks + b_tasks);
  else
    pool.parallel_for(a_tasks + b_tasks, pack);
  const GemmPlan plan = plan_gemm(g.M, g.N, band, block, col_unit, pool.size());
  const auto run = [&](int64_t lo, int64_t hi) {
    while (lo < hi) {  // runs of bands within one column block
      const int64_t blk = lo / plan.n_bands, band0 = lo % plan.n_bands;
      const int64_t band1 = std::min(plan.n_bands, band0 + (hi - lo));
      const int64_t n0 = blk * plan.block;
      segment(g, pk, band0 * plan.band, std::min(g.M, band1 * plan.band), n0,
              std::min(g.N, n0 + plan.block));
      lo += band1 - band0;
    }
  };
  if (serial)
    run(0, plan.tasks());
  else
    pool.parallel_for(plan.tasks(), run);
}

void gemm_bf16_dp(const GemmArgs& g, ThreadPool& pool) {
  run_gemm_bf16(g, pool, kMR, 480, 16 * kNV, /*segment_packs_a=*/false, dp_segment);
}

}  // namespace dsv3::cpu

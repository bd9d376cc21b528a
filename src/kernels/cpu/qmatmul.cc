// AVX-512 VNNI matmul for Q4_1 weights (ref/qmatmul.cc states the arithmetic; Q8_0 and Q4_0 run
// qmatmul_panel.cc and qmatmul_gemv16.cc, the AMX tiles' arithmetic): each 512-bit step covers two
// 32-value blocks of a weight row against the int8 activations (quant_acts.h). vpdpbusd multiplies
// unsigned by signed bytes and sums each group of 4 into an int32 lane, so lanes 0-7 hold block 2s
// and lanes 8-15 block 2s + 1; each lane is converted to float, scaled by dw * dx of its block and
// added to a 16-lane FP32 accumulator per output, the minimum entering as mw * dx * Σ qx (one more
// FMA), reduced in a fixed order at the end (hsum). The weights are the unsigned operand (the
// nibbles 0..15). The scales are read 16 blocks at a time per row (one F16 load and conversion)
// and spread to a step's lanes by one permute. Without VNNI the cpu table runs qmatmul_avx2.cc.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "base/error.h"
#include "kernels/cpu/cpu.h"
#include "kernels/ref/ref.h"

#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,f16c,fma")

#include "kernels/cpu/qmatmul_driver.h"
#include "kernels/cpu/simd.h"

namespace dsv3::cpu {
namespace {

// Lanes 0-7 = lane b of v, lanes 8-15 = lane b + 1: a 64-value step's two block scales, from the
// 16 of a row's chunk (one F16 load and conversion per 16 blocks, one permute per step).
inline __m512 step_lanes(__m512 v, int64_t b) {
  const __m512i idx =
      _mm512_add_epi32(_mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
                       _mm512_set1_epi32(static_cast<int>(b)));
  return _mm512_permutexvar_ps(idx, v);
}

// n <= 16 consecutive F16 values as float32 lanes, the rest 0.
inline __m512 load_f16x16(const uint16_t* p, int64_t n) {
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(tail_mask(n), p));
}

// 64 (two blocks) or 32 (`two` false) weight nibbles of row `row` from value k on, as bytes
// (0..15) in value order.
inline __m512i load_w(const uint8_t* row, int64_t k, bool two) {
  const __m256i v =
      two ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + k / 2))
          : _mm256_zextsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + k / 2)));
  const __m256i nib = _mm256_set1_epi8(0x0F);
  const __m256i lo = _mm256_and_si256(v, nib);                        // [b0 0-15, b1 0-15]
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), nib);  // [b0 16-31, b1 16-31]
  const __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
  return _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0));  // b0 0-15, 16-31, b1 ...
}

// Two blocks (64 values) a step: lanes 0-7 block 2s, 8-15 block 2s + 1.
template <int NT, int NR>
void tile_q4_1(__m512 (&acc)[NT][NR], const QuantActs& qa, int64_t arow, const QRows& w,
               int64_t r) {
  const uint8_t* wq = w.q + r * w.rb;
  for (int64_t b0 = 0; b0 < w.blocks; b0 += 16) {  // chunks of 16 blocks: 16 scales a load
    const int64_t nb = std::min<int64_t>(16, w.blocks - b0);
    __m512 dw16[NR], mw16[NR];
#pragma GCC unroll 8
    for (int i = 0; i < NR; ++i) {
      dw16[i] = load_f16x16(w.d + (r + i) * w.blocks + b0, nb);
      _mm_prefetch(reinterpret_cast<const char*>(w.d + (r + i + NR) * w.blocks + b0), _MM_HINT_T0);
      mw16[i] = load_f16x16(w.m + (r + i) * w.blocks + b0, nb);
      _mm_prefetch(reinterpret_cast<const char*>(w.m + (r + i + NR) * w.blocks + b0), _MM_HINT_T0);
    }
    for (int64_t s = 0; s < nb; s += 2) {
      const int64_t k = (b0 + s) * 32;
      const bool two = s + 1 < nb;
      __m512i wv[NR];
      __m512 dw[NR], mw[NR];
#pragma GCC unroll 8
      for (int i = 0; i < NR; ++i) {
        wv[i] = load_w(wq + i * w.rb, k, two);
        // The same bytes of the next tile's row (rows are short: a fixed distance ahead in a row
        // lands in the rows this tile reads already).
        _mm_prefetch(reinterpret_cast<const char*>(wq + (i + NR) * w.rb + k / 2), _MM_HINT_T0);
        dw[i] = step_lanes(dw16[i], s);
        mw[i] = step_lanes(mw16[i], s);
      }
#pragma GCC unroll 8
      for (int t = 0; t < NT; ++t) {
        const __m512i xq = _mm512_loadu_si512(qa.q_row(arow + t) + k);
        const __m512 dx = _mm512_loadu_ps(qa.d_row(arow + t) + k / 4);
        const __m512 dsum = _mm512_loadu_ps(qa.dsum_row(arow + t) + k / 4);
#pragma GCC unroll 8
        for (int i = 0; i < NR; ++i) {
          const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv[i], xq);
          acc[t][i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(dw[i], dx), acc[t][i]);
          acc[t][i] = _mm512_fmadd_ps(mw[i], dsum, acc[t][i]);
        }
      }
    }
  }
}

struct Avx512Vnni {
  static constexpr ref::QuantizeRowFn kQuantizeRow = quantize_acts_row;
  static constexpr bool kBlockSums = true;  // Q8_0 / Q4_0: qmatmul_panel.cc, qmatmul_gemv16.cc
  static constexpr bool kGfni = true;       // where the CPU has it
  template <BlockFormat F, int NT, int NR>
  static void tile(float* y, int64_t ldy, const QuantActs& qa, int64_t arow, const QRows& w,
                   int64_t r, int64_t) {
    __m512 acc[NT][NR];
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t)
#pragma GCC unroll 8
      for (int i = 0; i < NR; ++i) acc[t][i] = _mm512_setzero_ps();
    static_assert(F == BlockFormat::Q4_1);
    tile_q4_1<NT, NR>(acc, qa, arow, w, r);
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t)
#pragma GCC unroll 8
      for (int i = 0; i < NR; ++i) y[t * ldy + i] = hsum(acc[t][i]);
  }
};

}  // namespace

bool avx512_vnni_supported() {
  static const bool ok = __builtin_cpu_supports("avx512vnni");
  return ok;
}

struct Avx512VnniNoGfni : Avx512Vnni {
  static constexpr bool kGfni = false;
};

void qmatmul_heads_vnni(const HeadMatmulArgs& a, ThreadPool& pool) {
  qmatmul_heads_isa<Avx512Vnni>(a, pool);
}

void qmatmul_heads_vnni_no_gfni(const HeadMatmulArgs& a, ThreadPool& pool) {
  qmatmul_heads_isa<Avx512VnniNoGfni>(a, pool);
}

}  // namespace dsv3::cpu

// AVX-512 VNNI matmul for the integer block formats (Q8_0, Q4_0, Q4_1 weights; ref/qmatmul.cc
// states the arithmetic): each 512-bit step covers two 32-value blocks of a weight row against
// the int8 activations (quant_acts.h). vpdpbusd multiplies unsigned by signed bytes and sums each
// group of 4 into an int32 lane, so lanes 0-7 hold block 2s and lanes 8-15 block 2s + 1; each lane
// is converted to float, scaled by dw * dx of its block and added to a 16-lane FP32 accumulator
// per output, reduced in a fixed order at the end (hsum). Q8_0: signed weights, so the
// activations' signs move onto the weights (|x| unsigned, w negated where x < 0). Q4_0 / Q4_1:
// the nibbles (0..15) are the unsigned operand; Q4_0's offset of 8 enters as the lane's
// -8 * Σ qx (precomputed) as the starting value of the integer sum, Q4_1's minimum as
// mw * dx * Σ qx, one more FMA. Without VNNI the cpu table runs qmatmul_avx2.cc instead.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "base/error.h"
#include "kernels/cpu/cpu.h"
#include "kernels/ref/ref.h"

#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,f16c,fma")

#include "kernels/cpu/qmatmul_driver.h"
#include "kernels/cpu/simd.h"

namespace dsv3::cpu {
namespace {

// Two F16 scales as 16 lanes: the first in lanes 0-7, the second in lanes 8-15.
inline __m512 scales16(const uint16_t* p, bool two) {
  const __m128 f = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(load_f16_pair(p, two))));
  const __m512i idx = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  return _mm512_permutexvar_ps(idx, _mm512_zextps128_ps512(f));
}

// 64 (two blocks) or 32 (`two` false) weight values of row `row` from value k on, as bytes in
// value order: Q8_0 signed, Q4 the nibbles 0..15.
template <BlockFormat F>
inline __m512i load_w(const uint8_t* row, int64_t k, bool two) {
  if constexpr (F == BlockFormat::Q8_0) {
    return two ? _mm512_loadu_si512(row + k) : _mm512_maskz_loadu_epi8(0xFFFFFFFFull, row + k);
  } else {
    const __m256i v = two ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + k / 2))
                          : _mm256_zextsi128_si256(
                                _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + k / 2)));
    const __m256i nib = _mm256_set1_epi8(0x0F);
    const __m256i lo = _mm256_and_si256(v, nib);                        // [b0 0-15, b1 0-15]
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), nib);  // [b0 16-31, b1 16-31]
    const __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    return _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0));  // b0 0-15, 16-31, b1 ...
  }
}

struct Avx512Vnni {
  template <BlockFormat F, int NT, int NR>
  static void tile(float* y, int64_t ldy, const QuantActs& qa, int64_t arow, const QRows& w,
                   int64_t r, int64_t K) {
    __m512 acc[NT][NR];
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t)
#pragma GCC unroll 8
      for (int i = 0; i < NR; ++i) acc[t][i] = _mm512_setzero_ps();
    const uint8_t* wq = w.q + r * w.rb;
    for (int64_t k = 0; k < K; k += 64) {
      const bool two = k + 64 <= K;
      const int64_t blk = k / 32;
      __m512i wv[NR];
      __m512 dw[NR], mw[NR];
#pragma GCC unroll 8
      for (int i = 0; i < NR; ++i) {
        wv[i] = load_w<F>(wq + i * w.rb, k, two);
        _mm_prefetch(reinterpret_cast<const char*>(wq + i * w.rb + k) + 1024, _MM_HINT_T0);
        dw[i] = scales16(w.d + (r + i) * w.blocks + blk, two);
        if constexpr (F == BlockFormat::Q4_1) mw[i] = scales16(w.m + (r + i) * w.blocks + blk, two);
      }
#pragma GCC unroll 8
      for (int t = 0; t < NT; ++t) {
        const __m512i xq = _mm512_loadu_si512(qa.q_row(arow + t) + k);
        const __m512 dx = _mm512_loadu_ps(qa.d_row(arow + t) + k / 4);
        __m512i xabs, base = _mm512_setzero_si512();
        __mmask64 neg = 0;
        __m512 dsum = _mm512_setzero_ps();
        if constexpr (F == BlockFormat::Q8_0) {
          xabs = _mm512_abs_epi8(xq);
          neg = _mm512_movepi8_mask(xq);
        } else if constexpr (F == BlockFormat::Q4_0) {
          base = _mm512_loadu_si512(qa.neg8_row(arow + t) + k / 4);
        } else {
          dsum = _mm512_loadu_ps(qa.dsum_row(arow + t) + k / 4);
        }
#pragma GCC unroll 8
        for (int i = 0; i < NR; ++i) {
          __m512i p;
          if constexpr (F == BlockFormat::Q8_0)
            p = _mm512_dpbusd_epi32(
                base, xabs, _mm512_mask_sub_epi8(wv[i], neg, _mm512_setzero_si512(), wv[i]));
          else
            p = _mm512_dpbusd_epi32(base, wv[i], xq);
          acc[t][i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(dw[i], dx), acc[t][i]);
          if constexpr (F == BlockFormat::Q4_1) acc[t][i] = _mm512_fmadd_ps(mw[i], dsum, acc[t][i]);
        }
      }
    }
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

void qmatmul_heads_vnni(const HeadMatmulArgs& a, ThreadPool& pool) {
  qmatmul_heads_isa<Avx512Vnni>(a, pool);
}

}  // namespace dsv3::cpu

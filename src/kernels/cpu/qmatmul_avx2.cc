// AVX2 matmul for the integer block formats, for CPUs without AVX-512 VNNI (ref/qmatmul.cc states
// the arithmetic; qmatmul.cc is the VNNI version): each 256-bit step is one 32-value block.
// vpmaddubsw multiplies unsigned by signed bytes into pairs of int16 (no saturation here: at most
// 2 * 127 * 127 for Q8_0, 2 * 15 * 127 for Q4) and vpmaddwd by ones sums the pairs, so each int32
// lane holds a group of 4, as vpdpbusd would; the lanes are scaled by dw * dx and added into an
// 8-lane FP32 accumulator per output, reduced in a fixed order at the end.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/cpu/cpu.h"
#include "kernels/ref/ref.h"

#pragma GCC target("avx2,fma,f16c")

#include "kernels/cpu/qmatmul_driver.h"

namespace dsv3::cpu {
namespace {

inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline __m256 scale8(const uint16_t* p) {
  return _mm256_set1_ps(_mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(*p))));
}

// The 32 weight values of one block as bytes in value order (Q4: nibbles 0..15).
template <BlockFormat F>
inline __m256i load_w(const uint8_t* row, int64_t k) {
  if constexpr (F == BlockFormat::Q8_0) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + k));
  } else {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + k / 2));
    const __m128i nib = _mm_set1_epi8(0x0F);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), nib), _mm_and_si128(v, nib));
  }
}

struct Avx2 {
  static constexpr ref::QuantizeRowFn kQuantizeRow = nullptr;
  template <BlockFormat F, int NT, int NR>
  static void tile(float* y, int64_t ldy, const QuantActs& qa, int64_t arow, const QRows& w,
                   int64_t r, int64_t K) {
    __m256 acc[NT][NR];
    for (int t = 0; t < NT; ++t)
      for (int i = 0; i < NR; ++i) acc[t][i] = _mm256_setzero_ps();
    const uint8_t* wq = w.q + r * w.rb;
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t k = 0; k < K; k += 32) {
      const int64_t blk = k / 32;
      __m256i wv[NR];
      __m256 dw[NR], mw[NR];
      for (int i = 0; i < NR; ++i) {
        wv[i] = load_w<F>(wq + i * w.rb, k);
        // The same bytes of the next tile's row, as the VNNI kernel does (rows are short).
        _mm_prefetch(reinterpret_cast<const char*>(wq + (i + NR) * w.rb +
                                                   (F == BlockFormat::Q8_0 ? k : k / 2)),
                     _MM_HINT_T0);
        dw[i] = scale8(w.d + (r + i) * w.blocks + blk);
        if constexpr (F == BlockFormat::Q4_1) mw[i] = scale8(w.m + (r + i) * w.blocks + blk);
        if (blk % 32 == 0) {  // and the next tile's scales, a cache line (32 of them) at a time
          _mm_prefetch(reinterpret_cast<const char*>(w.d + (r + i + NR) * w.blocks + blk),
                       _MM_HINT_T0);
          if constexpr (F == BlockFormat::Q4_1)
            _mm_prefetch(reinterpret_cast<const char*>(w.m + (r + i + NR) * w.blocks + blk),
                         _MM_HINT_T0);
        }
      }
      for (int t = 0; t < NT; ++t) {
        const __m256i xq =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qa.q_row(arow + t) + k));
        const __m256 dx = _mm256_loadu_ps(qa.d_row(arow + t) + k / 4);
        for (int i = 0; i < NR; ++i) {
          __m256i p;
          if constexpr (F == BlockFormat::Q8_0)
            p = _mm256_madd_epi16(
                _mm256_maddubs_epi16(_mm256_sign_epi8(xq, xq), _mm256_sign_epi8(wv[i], xq)), ones);
          else
            p = _mm256_madd_epi16(_mm256_maddubs_epi16(wv[i], xq), ones);
          if constexpr (F == BlockFormat::Q4_0)
            p = _mm256_add_epi32(p, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(
                                        qa.neg8_row(arow + t) + k / 4)));
          acc[t][i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(dw[i], dx), acc[t][i]);
          if constexpr (F == BlockFormat::Q4_1)
            acc[t][i] =
                _mm256_fmadd_ps(mw[i], _mm256_loadu_ps(qa.dsum_row(arow + t) + k / 4), acc[t][i]);
        }
      }
    }
    for (int t = 0; t < NT; ++t)
      for (int i = 0; i < NR; ++i) y[t * ldy + i] = hsum8(acc[t][i]);
  }
};

}  // namespace

bool avx2_supported() {
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                         __builtin_cpu_supports("f16c");
  return ok;
}

void qmatmul_heads_avx2(const HeadMatmulArgs& a, ThreadPool& pool) {
  qmatmul_heads_isa<Avx2>(a, pool);
}

}  // namespace dsv3::cpu

// AVX-512 E4M3 loops (see fp8_simd.h), built for AVX-512 whatever the compiler's target and only
// called after available() said the CPU has it.
// GCC 12's AVX-512 headers build "undefined" vectors as `__m512 __Y = __Y;`, which its own
// -Wuninitialized flags once inlined here (GCC PR 105593, fixed in 13): silence just those.
// Clang (the fuzz build compiles tensor/) knows neither that warning group nor `GCC target`: it
// gets the same target through its attribute pragma, pushed after the includes.
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "tensor/fp8_simd.h"

#include <immintrin.h>

#include <cfloat>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl"))), \
                             apply_to = function)
#else
#pragma GCC target("avx512f,avx512bw,avx512vl")  // after every include
#endif

namespace dsv3::fp8_simd {
namespace {

__mmask16 tail(int64_t left) {
  return left >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
}

// minifloat::e4m3_encode on 16 lanes, the same steps.
__m128i encode16(__m512 x) {
  const __m512i bits = _mm512_castps_si512(x);
  const __m512i sign = _mm512_and_si512(_mm512_srli_epi32(bits, 24), _mm512_set1_epi32(0x80));
  const __m512i abs = _mm512_and_si512(bits, _mm512_set1_epi32(0x7FFFFFFF));
  const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(abs, 20), _mm512_set1_epi32(1));
  const __m512i normal = _mm512_sub_epi32(
      _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(abs, _mm512_set1_epi32(0x7FFFF)), odd),
                        20),
      _mm512_set1_epi32(120 << 3));
  // fmin(|x|, 2^-6) with NaN -> 2^-6: vminps returns its second operand when either is NaN.
  const __m512 small = _mm512_min_ps(_mm512_castsi512_ps(abs), _mm512_set1_ps(0.015625f));
  const __m512i sub = _mm512_cvt_roundps_epi32(_mm512_mul_ps(small, _mm512_set1_ps(512.0f)),
                                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __mmask16 is_normal = _mm512_cmpge_epu32_mask(abs, _mm512_set1_epi32(0x3C800000));
  __m512i code = _mm512_mask_blend_epi32(is_normal, sub, normal);
  code = _mm512_min_epu32(code, _mm512_set1_epi32(0x7E));
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(abs, _mm512_set1_epi32(0x7F800000));
  code = _mm512_mask_mov_epi32(code, nan, _mm512_set1_epi32(0x7F));
  return _mm512_cvtepi32_epi8(_mm512_or_si512(sign, code));
}

// The decode table's value of 16 codes: normal codes re-biased into the float's fields,
// subnormals m * 2^-9, 0x7F / 0xFF the table's quiet NaN, the sign bit on top.
__m512 decode16(__m128i q) {
  const __m512i c = _mm512_cvtepu8_epi32(q);
  const __m512i a = _mm512_and_si512(c, _mm512_set1_epi32(0x7F));
  const __m512i normal = _mm512_add_epi32(_mm512_slli_epi32(a, 20), _mm512_set1_epi32(120 << 23));
  const __m512i sub =
      _mm512_castps_si512(_mm512_mul_ps(_mm512_cvtepi32_ps(a), _mm512_set1_ps(1.0f / 512.0f)));
  __m512i v =
      _mm512_mask_blend_epi32(_mm512_cmpge_epi32_mask(a, _mm512_set1_epi32(8)), sub, normal);
  v = _mm512_mask_mov_epi32(v, _mm512_cmpeq_epi32_mask(a, _mm512_set1_epi32(0x7F)),
                            _mm512_set1_epi32(0x7FC00000));
  return _mm512_castsi512_ps(
      _mm512_or_si512(v, _mm512_slli_epi32(_mm512_and_si512(c, _mm512_set1_epi32(0x80)), 24)));
}

// |x| where x is finite, else 0 (an ordered compare: NaN fails it like inf).
__m512 finite_abs(__m512 x) {
  const __m512 a = _mm512_abs_ps(x);
  return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(a, _mm512_set1_ps(FLT_MAX), _CMP_LE_OQ), a);
}

}  // namespace

bool available() {
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  return ok;
}

void encode_div(const float* x, const float* s, uint8_t* out, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail(n - i);
    // Masked-off lanes divide 1 by 1: no exception flags, and they are not stored.
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512 v =
        _mm512_div_ps(_mm512_mask_loadu_ps(one, k, x + i), _mm512_mask_loadu_ps(one, k, s + i));
    _mm_mask_storeu_epi8(out + i, k, encode16(v));
  }
}

void encode(const float* x, uint8_t* out, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail(n - i);
    _mm_mask_storeu_epi8(out + i, k, encode16(_mm512_maskz_loadu_ps(k, x + i)));
  }
}

void decode(const uint8_t* in, float* out, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail(n - i);
    _mm512_mask_storeu_ps(out + i, k, decode16(_mm_maskz_loadu_epi8(k, in + i)));
  }
}

float amax(const float* x, int64_t n, float m) {
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16)
    acc = _mm512_max_ps(acc, finite_abs(_mm512_maskz_loadu_ps(tail(n - i), x + i)));
  const float r = _mm512_reduce_max_ps(acc);
  return r > m ? r : m;
}

void amax_columns(const float* x, float* amax, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail(n - i);
    const __m512 m = _mm512_maskz_loadu_ps(k, amax + i);
    _mm512_mask_storeu_ps(amax + i, k,
                          _mm512_max_ps(m, finite_abs(_mm512_maskz_loadu_ps(k, x + i))));
  }
}

void transpose_bytes(const uint8_t* in, int64_t rows, int64_t cols, int64_t ldi, uint8_t* out,
                     int64_t ldo) {
  int64_t r0 = 0;
  for (; r0 + 16 <= rows; r0 += 16) {
    int64_t c0 = 0;
    for (; c0 + 16 <= cols; c0 += 16) {
      // A 16x16 block: four rounds of unpacking bytes, words, dwords and qwords.
      __m128i v[16], t[16];
      for (int i = 0; i < 16; ++i)
        v[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + (r0 + i) * ldi + c0));
      for (int i = 0; i < 8; ++i) {
        t[2 * i] = _mm_unpacklo_epi8(v[2 * i], v[2 * i + 1]);
        t[2 * i + 1] = _mm_unpackhi_epi8(v[2 * i], v[2 * i + 1]);
      }
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 2; ++j) {
          v[4 * i + j] = _mm_unpacklo_epi16(t[4 * i + j], t[4 * i + j + 2]);
          v[4 * i + j + 2] = _mm_unpackhi_epi16(t[4 * i + j], t[4 * i + j + 2]);
        }
      for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 4; ++j) {
          t[8 * i + j] = _mm_unpacklo_epi32(v[8 * i + j], v[8 * i + j + 4]);
          t[8 * i + j + 4] = _mm_unpackhi_epi32(v[8 * i + j], v[8 * i + j + 4]);
        }
      for (int j = 0; j < 8; ++j) {
        v[j] = _mm_unpacklo_epi64(t[j], t[j + 8]);
        v[j + 8] = _mm_unpackhi_epi64(t[j], t[j + 8]);
      }
      // v[k] now holds column c0 + perm(k) of the block's 16 rows.
      static constexpr int kCol[16] = {0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15};
      for (int k = 0; k < 16; ++k)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + (c0 + kCol[k]) * ldo + r0), v[k]);
    }
    for (int64_t c = c0; c < cols; ++c)
      for (int64_t r = r0; r < r0 + 16; ++r) out[c * ldo + r] = in[r * ldi + c];
  }
  for (int64_t r = r0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[c * ldo + r] = in[r * ldi + c];
}

}  // namespace dsv3::fp8_simd

#if defined(__clang__)
#pragma clang attribute pop
#endif

// AVX-512 softmax, sigmoid and SwiGLU (SPEC §1.6) with its backward, on a 16-lane exp (simd.h): the
// same formulas as ref with exp's error within a few ulp instead of libm's one.
// GCC 12's AVX-512 headers build "undefined" vectors as `__m512 __Y = __Y;`, which its own
// -Wuninitialized flags once inlined here (GCC PR 105593, fixed in 13): silence just those.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cmath>

#include "kernels/cpu/cpu.h"

#pragma GCC target("avx512f,avx512bw,avx512vl")  // after every include, see matmul.cc

#include "kernels/cpu/simd.h"

namespace dsv3::cpu {

void softmax(float* x, int64_t T, int64_t n) {
  for (int64_t t = 0; t < T; ++t) {
    float* r = x + t * n;
    __m512 mv = _mm512_set1_ps(-INFINITY);
    for (int64_t i = 0; i < n; i += 16)
      mv = _mm512_max_ps(mv, _mm512_mask_loadu_ps(mv, tail_mask(n - i), r + i));
    const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mv));
    __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();  // the sum in double, as ref
    for (int64_t i = 0; i < n; i += 16) {
      const __mmask16 k = tail_mask(n - i);
      const __m512 e =
          _mm512_maskz_mov_ps(k, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, r + i), m)));
      _mm512_mask_storeu_ps(r + i, k, e);
      lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
      hi = _mm512_add_pd(
          hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
    }
    alignas(64) double lanes[8];
    _mm512_store_pd(lanes, _mm512_add_pd(lo, hi));
    double sum = 0;
    for (double l : lanes) sum += l;
    const __m512 inv = _mm512_set1_ps(static_cast<float>(1.0 / sum));
    for (int64_t i = 0; i < n; i += 16) {
      const __mmask16 k = tail_mask(n - i);
      _mm512_mask_storeu_ps(r + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, r + i), inv));
    }
  }
}

void sigmoid(float* x, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail_mask(n - i);
    const __m512 v = _mm512_maskz_loadu_ps(k, x + i);
    const __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), v));
    _mm512_mask_storeu_ps(x + i, k, _mm512_div_ps(one, _mm512_add_ps(one, e)));
  }
}

void swiglu(float* gate, const float* up, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail_mask(n - i);
    const __m512 g = _mm512_maskz_loadu_ps(k, gate + i);
    const __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), g));
    const __m512 s = _mm512_div_ps(g, _mm512_add_ps(one, e));  // silu(g), as ref
    _mm512_mask_storeu_ps(gate + i, k, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(k, up + i)));
  }
}

void swiglu_backward(float* dgate, float* dup, const float* gate, const float* up,
                     const float* dact, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail_mask(n - i);
    const __m512 g = _mm512_maskz_loadu_ps(k, gate + i);
    const __m512 d = _mm512_maskz_loadu_ps(k, dact + i);
    const __m512 sg =
        _mm512_div_ps(one, _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), g))));
    // ref's order: dup = dact * (g * sg), dgate = ((dact * up) * sg) * (1 + g * (1 - sg)).
    _mm512_mask_storeu_ps(dup + i, k, _mm512_mul_ps(d, _mm512_mul_ps(g, sg)));
    const __m512 slope = _mm512_add_ps(one, _mm512_mul_ps(g, _mm512_sub_ps(one, sg)));
    const __m512 du = _mm512_mul_ps(_mm512_mul_ps(d, _mm512_maskz_loadu_ps(k, up + i)), sg);
    _mm512_mask_storeu_ps(dgate + i, k, _mm512_mul_ps(du, slope));
  }
}

}  // namespace dsv3::cpu

// AVX-512 RMSNorm (SPEC §1.2) and its backward: the row sums in double as in ref (8 lanes per
// half-vector), then the elementwise part in FP32 (forward in ref's order).
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
namespace {

// The 8 double lanes of lo + hi summed in a fixed order.
inline double sum_lanes(__m512d lo, __m512d hi) {
  alignas(64) double lanes[8];
  _mm512_store_pd(lanes, _mm512_add_pd(lo, hi));
  double s = 0;
  for (double l : lanes) s += l;
  return s;
}

inline __m512d lo_pd(__m512 v) {
  return _mm512_cvtps_pd(_mm512_castps512_ps256(v));
}
inline __m512d hi_pd(__m512 v) {
  return _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}

}  // namespace

void rmsnorm(float* y, int64_t y_stride, const float* x, int64_t x_stride, const float* g,
             int64_t T, int64_t n, float eps) {
  for (int64_t t = 0; t < T; ++t) {
    const float* xt = x + t * x_stride;
    float* yt = y + t * y_stride;
    __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
    for (int64_t i = 0; i < n; i += 16) {
      const __mmask16 m = tail_mask(n - i);
      const __m512 v = _mm512_maskz_loadu_ps(m, xt + i);
      const __m512d a = lo_pd(v), b = hi_pd(v);
      lo = _mm512_fmadd_pd(a, a, lo);
      hi = _mm512_fmadd_pd(b, b, hi);
    }
    const double ss = sum_lanes(lo, hi);
    const __m512 r =
        _mm512_set1_ps(static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps)));
    for (int64_t i = 0; i < n; i += 16) {
      const __mmask16 m = tail_mask(n - i);
      const __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, xt + i), r),
                                     _mm512_maskz_loadu_ps(m, g + i));
      _mm512_mask_storeu_ps(yt + i, m, v);
    }
  }
}

// dx = r (g dy - x̂ mean(g dy x̂)) = r g dy - x (r² mean(g dy x)), the sums of squares and of
// g dy x in double (exact products of floats), the rest in FP32: each output is two rounded terms.
void rmsnorm_backward(float* dx, int64_t dx_stride, float* dg, const float* dy, int64_t dy_stride,
                      const float* x, int64_t x_stride, const float* g, int64_t T, int64_t n,
                      float eps) {
  for (int64_t t = 0; t < T; ++t) {
    const float* xt = x + t * x_stride;
    const float* dyt = dy + t * dy_stride;
    float* dxt = dx + t * dx_stride;
    __m512d ss_lo = _mm512_setzero_pd(), ss_hi = _mm512_setzero_pd();
    __m512d dot_lo = _mm512_setzero_pd(), dot_hi = _mm512_setzero_pd();
    for (int64_t i = 0; i < n; i += 16) {
      const __mmask16 m = tail_mask(n - i);
      const __m512 v = _mm512_maskz_loadu_ps(m, xt + i);
      const __m512 w = _mm512_maskz_loadu_ps(m, g + i), d = _mm512_maskz_loadu_ps(m, dyt + i);
      const __m512d a = lo_pd(v), b = hi_pd(v);
      ss_lo = _mm512_fmadd_pd(a, a, ss_lo);
      ss_hi = _mm512_fmadd_pd(b, b, ss_hi);
      dot_lo = _mm512_fmadd_pd(_mm512_mul_pd(lo_pd(w), lo_pd(d)), a, dot_lo);
      dot_hi = _mm512_fmadd_pd(_mm512_mul_pd(hi_pd(w), hi_pd(d)), b, dot_hi);
    }
    const double r = 1.0 / std::sqrt(sum_lanes(ss_lo, ss_hi) / static_cast<double>(n) + eps);
    const double c = r * r * r * sum_lanes(dot_lo, dot_hi) / static_cast<double>(n);
    const __m512 rv = _mm512_set1_ps(static_cast<float>(r));
    const __m512 cv = _mm512_set1_ps(static_cast<float>(c));
    for (int64_t i = 0; i < n; i += 16) {
      const __mmask16 m = tail_mask(n - i);
      const __m512 v = _mm512_maskz_loadu_ps(m, xt + i);
      const __m512 d = _mm512_maskz_loadu_ps(m, dyt + i);
      const __m512 gdy = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, g + i), d);
      const __m512 step = _mm512_fmsub_ps(rv, gdy, _mm512_mul_ps(v, cv));
      _mm512_mask_storeu_ps(dxt + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, dxt + i), step));
      const __m512 dgv = _mm512_fmadd_ps(d, _mm512_mul_ps(v, rv), _mm512_maskz_loadu_ps(m, dg + i));
      _mm512_mask_storeu_ps(dg + i, m, dgv);
    }
  }
}

}  // namespace dsv3::cpu

// AVX-512 cross-entropy with its gradient in place (kernels.h), parallel over rows: per row a max
// pass, an exp pass that stores exp(x - m) and sums it in double (as softmax), then one scaling
// pass. A row of 152k logits is 600 KB, so the second and third passes mostly hit L2. ref takes
// exp in double; here it is exp16 in FP32 (a few ulp), the sum and the log-sum-exp in double.
// GCC 12's AVX-512 headers build "undefined" vectors as `__m512 __Y = __Y;`, which its own
// -Wuninitialized flags once inlined here (GCC PR 105593, fixed in 13): silence just those.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "kernels/cpu/cpu.h"

#pragma GCC target("avx512f,avx512bw,avx512vl")  // after every include, see matmul.cc

#include "kernels/cpu/simd.h"

namespace dsv3::cpu {
namespace {

void row(float* r, int32_t target, int64_t V, float scale, float* loss) {
  if (target < 0) {
    std::fill_n(r, V, 0.0f);
    *loss = 0.0f;
    return;
  }
  __m512 mv = _mm512_set1_ps(-INFINITY);
  for (int64_t i = 0; i < V; i += 16)
    mv = _mm512_max_ps(mv, _mm512_mask_loadu_ps(mv, tail_mask(V - i), r + i));
  const float m = _mm512_reduce_max_ps(mv);
  const float x_target = r[target];
  const __m512 mb = _mm512_set1_ps(m);
  __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
  for (int64_t i = 0; i < V; i += 16) {
    const __mmask16 k = tail_mask(V - i);
    const __m512 e =
        _mm512_maskz_mov_ps(k, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, r + i), mb)));
    _mm512_mask_storeu_ps(r + i, k, e);
    lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
    hi = _mm512_add_pd(
        hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
  }
  alignas(64) double lanes[8];
  _mm512_store_pd(lanes, _mm512_add_pd(lo, hi));
  double sum = 0;
  for (double l : lanes) sum += l;
  *loss = static_cast<float>(m + std::log(sum) - x_target);
  const __m512 f = _mm512_set1_ps(static_cast<float>(scale / sum));
  for (int64_t i = 0; i < V; i += 16) {
    const __mmask16 k = tail_mask(V - i);
    _mm512_mask_storeu_ps(r + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, r + i), f));
  }
  r[target] -= scale;
}

}  // namespace

void cross_entropy(float* x, const int32_t* target, int64_t T, int64_t V, float scale, float* loss,
                   ThreadPool& pool) {
  // An exp costs about as much as 16 multiply-adds (the cutoff of run_tasks).
  run_tasks(pool, T, T * V * 16, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) row(x + t * V, target[t], V, scale, loss + t);
  });
}

}  // namespace dsv3::cpu

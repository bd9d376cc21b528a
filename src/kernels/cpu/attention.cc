// AVX-512 causal attention: the reference's loop (one query row of one head at a time, one row of
// scores per thread) with 16-lane dot products for q·k and register accumulators for p·v.
// The softmax itself stays scalar and as in ref (exp in FP32, the sum in double): it is O(S) per
// row against O(S·(dk + dv)) for the two products.
// GCC 12's AVX-512 headers build "undefined" vectors as `__m512 __Y = __Y;`, which its own
// -Wuninitialized flags once inlined here (GCC PR 105593, fixed in 13): silence just those.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/cpu.h"

#pragma GCC target("avx512f,avx512bw,avx512vl")  // after every include, see matmul.cc

#include "kernels/cpu/simd.h"

namespace dsv3::cpu {
namespace {

// out[i] = q · k[i * ldk + 0 .. n) for NK keys at once (q is loaded once per 16 columns).
template <int NK>
void dots(float* out, const float* q, const float* k, int64_t ldk, int64_t n) {
  __m512 acc[NK];
  for (int i = 0; i < NK; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 m = tail_mask(n - j);
    const __m512 qv = _mm512_maskz_loadu_ps(m, q + j);
    for (int i = 0; i < NK; ++i)
      acc[i] = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(m, k + i * ldk + j), acc[i]);
  }
  for (int i = 0; i < NK; ++i) out[i] = hsum(acc[i]);
}

// out[0 .. n) = inv * sum over s < n_keys of p[s] * v[s * ldv + 0 .. n), 64 columns at a time held
// in registers while the value rows stream past.
void weighted_sum(float* out, const float* p, const float* v, int64_t ldv, int64_t n_keys,
                  int64_t n, float inv) {
  for (int64_t j0 = 0; j0 < n; j0 += 64) {
    __mmask16 m[4];
    for (int i = 0; i < 4; ++i) m[i] = n - j0 > 16 * i ? tail_mask(n - j0 - 16 * i) : 0;
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                     _mm512_setzero_ps()};
    for (int64_t s = 0; s < n_keys; ++s) {
      const __m512 ps = _mm512_set1_ps(p[s]);
      const float* vs = v + s * ldv + j0;
      for (int i = 0; i < 4; ++i)
        acc[i] = _mm512_fmadd_ps(ps, _mm512_maskz_loadu_ps(m[i], vs + 16 * i), acc[i]);
    }
    const __m512 iv = _mm512_set1_ps(inv);
    for (int i = 0; i < 4; ++i)
      _mm512_mask_storeu_ps(out + j0 + 16 * i, m[i], _mm512_mul_ps(acc[i], iv));
  }
}

}  // namespace

void attention(const AttentionArgs& a, ThreadPool& pool) {
  const int64_t group = a.n_heads / a.n_kv_heads;
  // Multiply-adds: T rows x heads x (at most S keys) x (dk + dv).
  const int64_t macs = a.T * a.n_heads * a.S * (a.dk + a.dv);
  run_tasks(pool, a.T * a.n_heads, macs, [&](int64_t b, int64_t e) {
    std::vector<float> p(a.S);
    for (int64_t item = b; item < e; ++item) {
      const int64_t t = item / a.n_heads, h = item % a.n_heads, g = h / group;
      const int64_t n_keys = a.S - a.T + t + 1;  // causal: positions 0 .. S - T + t
      const float* q = a.q + t * a.q_row_stride + h * a.q_head_stride;
      const float* k = a.k + g * a.k_head_stride;
      const float* v = a.v + g * a.v_head_stride;
      int64_t s = 0;
      for (; s + 4 <= n_keys; s += 4)
        dots<4>(&p[s], q, k + s * a.k_row_stride, a.k_row_stride, a.dk);
      for (; s < n_keys; ++s) dots<1>(&p[s], q, k + s * a.k_row_stride, a.k_row_stride, a.dk);
      float m = -INFINITY;
      for (s = 0; s < n_keys; ++s) m = std::max(m, p[s] *= a.scale);
      double sum = 0;
      for (s = 0; s < n_keys; ++s) sum += (p[s] = std::exp(p[s] - m));
      weighted_sum(a.out + t * a.out_row_stride + h * a.out_head_stride, p.data(), v,
                   a.v_row_stride, n_keys, a.dv, static_cast<float>(1.0 / sum));
    }
  });
}

}  // namespace dsv3::cpu

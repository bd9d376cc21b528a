// AVX-512 causal attention: the reference's loop (one query row at a time, rows of scores per
// thread, never S x S) with 16-lane dot products for q·k and register accumulators for p·v, for up
// to kHeads query heads of one key/value head at once (GQA, MLA's absorbed path): each key and
// value row is read once for all of them. Every head's numbers are computed the same way whatever
// its group, so a prefill row still equals its token-by-token decode. The softmax itself stays
// scalar and as in ref (exp in FP32, the sum in double): it is O(S) per row against O(S·(dk + dv))
// for the two products. GCC 12's AVX-512 headers build "undefined" vectors as `__m512 __Y = __Y;`,
// which its own -Wuninitialized flags once inlined here (GCC PR 105593, fixed in 13): silence just
// those.
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

constexpr int kHeads = 4;

// p[h * ldp + i] = q_h · k_i over n columns for NH query heads (q + h * ldq) and NK keys
// (k + i * ldk): each 16-column piece of a key is loaded once for all heads.
template <int NH, int NK>
void dots(float* p, int64_t ldp, const float* q, int64_t ldq, const float* k, int64_t ldk,
          int64_t n) {
  __m512 acc[NH][NK];
#pragma GCC unroll 4
  for (int h = 0; h < NH; ++h)
#pragma GCC unroll 4
    for (int i = 0; i < NK; ++i) acc[h][i] = _mm512_setzero_ps();
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 m = tail_mask(n - j);
    __m512 kv[NK];
#pragma GCC unroll 4
    for (int i = 0; i < NK; ++i) kv[i] = _mm512_maskz_loadu_ps(m, k + i * ldk + j);
#pragma GCC unroll 4
    for (int h = 0; h < NH; ++h) {
      const __m512 qv = _mm512_maskz_loadu_ps(m, q + h * ldq + j);
#pragma GCC unroll 4
      for (int i = 0; i < NK; ++i) acc[h][i] = _mm512_fmadd_ps(qv, kv[i], acc[h][i]);
    }
  }
#pragma GCC unroll 4
  for (int h = 0; h < NH; ++h)
#pragma GCC unroll 4
    for (int i = 0; i < NK; ++i) p[h * ldp + i] = hsum(acc[h][i]);
}

// out_h[0 .. n) = inv[h] * sum over s < n_keys of p[h * ldp + s] * v[s * ldv + 0 .. n) for NH
// heads (out + h * ldo), 64 columns at a time held in registers while the value rows stream past.
template <int NH>
void weighted_sums(float* out, int64_t ldo, const float* p, int64_t ldp, const float* inv,
                   const float* v, int64_t ldv, int64_t n_keys, int64_t n) {
  for (int64_t j0 = 0; j0 < n; j0 += 64) {
    __mmask16 m[4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) m[i] = n - j0 > 16 * i ? tail_mask(n - j0 - 16 * i) : 0;
    __m512 acc[NH][4];
#pragma GCC unroll 4
    for (int h = 0; h < NH; ++h)
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) acc[h][i] = _mm512_setzero_ps();
    for (int64_t s = 0; s < n_keys; ++s) {
      const float* vs = v + s * ldv + j0;
      __m512 vv[4];
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) vv[i] = _mm512_maskz_loadu_ps(m[i], vs + 16 * i);
#pragma GCC unroll 4
      for (int h = 0; h < NH; ++h) {
        const __m512 ps = _mm512_set1_ps(p[h * ldp + s]);
#pragma GCC unroll 4
        for (int i = 0; i < 4; ++i) acc[h][i] = _mm512_fmadd_ps(ps, vv[i], acc[h][i]);
      }
    }
#pragma GCC unroll 4
    for (int h = 0; h < NH; ++h)
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i)
        _mm512_mask_storeu_ps(out + h * ldo + j0 + 16 * i, m[i],
                              _mm512_mul_ps(acc[h][i], _mm512_set1_ps(inv[h])));
  }
}

// Query row t, heads h0 .. h0 + NH (all reading key/value head g); p holds NH rows of S scores.
template <int NH>
void heads(const AttentionArgs& a, int64_t t, int64_t h0, int64_t g, float* p) {
  const int64_t n_keys = a.S - a.T + t + 1;  // causal: positions 0 .. S - T + t
  const float* q = a.q + t * a.q_row_stride + h0 * a.q_head_stride;
  const float* k = a.k + g * a.k_head_stride;
  const float* v = a.v + g * a.v_head_stride;
  int64_t s = 0;
  for (; s + 4 <= n_keys; s += 4)
    dots<NH, 4>(p + s, a.S, q, a.q_head_stride, k + s * a.k_row_stride, a.k_row_stride, a.dk);
  for (; s < n_keys; ++s)
    dots<NH, 1>(p + s, a.S, q, a.q_head_stride, k + s * a.k_row_stride, a.k_row_stride, a.dk);
  float inv[NH];
  for (int h = 0; h < NH; ++h) {  // the softmax in FP32 with a double sum (and the lse), as ref
    float* ph = p + h * a.S;
    float m = -INFINITY;
    for (s = 0; s < n_keys; ++s) m = std::max(m, ph[s] *= a.scale);
    double sum = 0;
    for (s = 0; s < n_keys; ++s) sum += (ph[s] = std::exp(ph[s] - m));
    inv[h] = static_cast<float>(1.0 / sum);
    if (a.lse != nullptr) a.lse[t * a.n_heads + h0 + h] = static_cast<float>(m + std::log(sum));
  }
  weighted_sums<NH>(a.out + t * a.out_row_stride + h0 * a.out_head_stride, a.out_head_stride, p,
                    a.S, inv, v, a.v_row_stride, n_keys, a.dv);
}

}  // namespace

void attention(const AttentionArgs& a, ThreadPool& pool) {
  const int64_t group = a.n_heads / a.n_kv_heads;
  const int64_t chunks = (group + kHeads - 1) / kHeads;  // per key/value head
  // Multiply-adds: T rows x heads x (at most S keys) x (dk + dv).
  const int64_t macs = a.T * a.n_heads * a.S * (a.dk + a.dv);
  run_tasks(pool, a.T * a.n_kv_heads * chunks, macs, [&](int64_t b, int64_t e) {
    std::vector<float> p(kHeads * a.S);
    for (int64_t item = b; item < e; ++item) {
      const int64_t t = item / (a.n_kv_heads * chunks), g = item / chunks % a.n_kv_heads;
      const int64_t h0 = g * group + item % chunks * kHeads;
      switch (std::min<int64_t>(kHeads, (g + 1) * group - h0)) {
        case 4:
          heads<4>(a, t, h0, g, p.data());
          break;
        case 3:
          heads<3>(a, t, h0, g, p.data());
          break;
        case 2:
          heads<2>(a, t, h0, g, p.data());
          break;
        default:
          heads<1>(a, t, h0, g, p.data());
          break;
      }
    }
  });
}

}  // namespace dsv3::cpu

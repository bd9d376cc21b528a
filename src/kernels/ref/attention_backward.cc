// Reference attention backward (kernels.h AttentionBackwardArgs): per key head, its group's query
// heads one row at a time; the probabilities are recomputed from the saved log-sum-exp, so memory
// is one row of scores per thread. With D = Σ_j dout·out (the row's dot of output and gradient):
//   P = exp(scale q·k - lse), dv += P dout, dP = dout·v, dS = P (dP - D),
//   dq = scale Σ_s dS k_s, dk_s += scale dS q.
#include <cmath>
#include <vector>

#include "kernels/ref/ref.h"

namespace dsv3::ref {

void attention_backward(const AttentionBackwardArgs& b, ThreadPool& pool) {
  const AttentionArgs& a = b.fwd;
  const int64_t group = a.n_heads / a.n_kv_heads;
  // One task per key head: its dk and dv rows are written by that task alone.
  pool.parallel_for(a.n_kv_heads, [&](int64_t g0, int64_t g1) {
    std::vector<float> ds(a.S);
    for (int64_t g = g0; g < g1; ++g) {
      const float* k = a.k + g * a.k_head_stride;
      const float* v = a.v + g * a.v_head_stride;
      float* dk = b.dk + g * b.dk_head_stride;
      float* dv = b.dv + g * b.dv_head_stride;
      for (int64_t h = g * group; h < (g + 1) * group; ++h)
        for (int64_t t = 0; t < a.T; ++t) {
          const int64_t n_keys = a.S - a.T + t + 1;
          const float* q = a.q + t * a.q_row_stride + h * a.q_head_stride;
          const float* o = a.out + t * a.out_row_stride + h * a.out_head_stride;
          const float* dout = b.dout + t * b.dout_row_stride + h * b.dout_head_stride;
          float* dq = b.dq + t * b.dq_row_stride + h * b.dq_head_stride;
          const float lse = a.lse[t * a.n_heads + h];
          const float D = dot(dout, o, a.dv);
          for (int64_t s = 0; s < n_keys; ++s) {
            const float p = std::exp(dot(q, k + s * a.k_row_stride, a.dk) * a.scale - lse);
            axpy(dv + s * b.dv_row_stride, p, dout, a.dv);
            ds[s] = p * (dot(dout, v + s * a.v_row_stride, a.dv) - D) * a.scale;
          }
          for (int64_t j = 0; j < a.dk; ++j) dq[j] = 0.0f;
          for (int64_t s = 0; s < n_keys; ++s) {
            axpy(dq, ds[s], k + s * a.k_row_stride, a.dk);
            axpy(dk + s * b.dk_row_stride, ds[s], q, a.dk);
          }
        }
    }
  });
}

}  // namespace dsv3::ref

// Reference causal attention: one query row of one head at a time, so memory is one row of scores
// per thread whatever the prompt length (issue 3: no quadratic attention memory). With a.lse set,
// each row's log-sum-exp is m + log(sum) in double, rounded once to float32.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/ref/ref.h"

namespace dsv3::ref {

void attention(const AttentionArgs& a, ThreadPool& pool) {
  const int64_t group = a.n_heads / a.n_kv_heads;
  pool.parallel_for(a.T * a.n_heads, [&](int64_t b, int64_t e) {
    std::vector<float> p(a.S);
    std::vector<float> acc(a.dv);
    for (int64_t item = b; item < e; ++item) {
      const int64_t t = item / a.n_heads, h = item % a.n_heads, g = h / group;
      const int64_t n_keys = a.S - a.T + t + 1;  // causal: positions 0 .. S - T + t
      const float* q = a.q + t * a.q_row_stride + h * a.q_head_stride;
      const float* k = a.k + g * a.k_head_stride;
      const float* v = a.v + g * a.v_head_stride;
      float m = -INFINITY;
      for (int64_t s = 0; s < n_keys; ++s) {
        p[s] = dot(q, k + s * a.k_row_stride, a.dk) * a.scale;
        m = std::max(m, p[s]);
      }
      double sum = 0;
      for (int64_t s = 0; s < n_keys; ++s) sum += (p[s] = std::exp(p[s] - m));
      if (a.lse != nullptr) a.lse[t * a.n_heads + h] = static_cast<float>(m + std::log(sum));
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t s = 0; s < n_keys; ++s) axpy(acc.data(), p[s], v + s * a.v_row_stride, a.dv);
      float* out = a.out + t * a.out_row_stride + h * a.out_head_stride;
      const float inv = static_cast<float>(1.0 / sum);
      for (int64_t j = 0; j < a.dv; ++j) out[j] = acc[j] * inv;
    }
  });
}

}  // namespace dsv3::ref

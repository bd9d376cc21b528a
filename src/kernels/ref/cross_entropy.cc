// Reference cross-entropy with its gradient in place (the loss of every LM head row, SPEC §1.2).
#include <algorithm>
#include <cmath>

#include "kernels/ref/ref.h"

namespace dsv3::ref {

void cross_entropy(float* x, const int32_t* target, int64_t T, int64_t V, float scale, float* loss,
                   ThreadPool& pool) {
  pool.parallel_for(T, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      float* r = x + t * V;
      if (target[t] < 0) {
        std::fill_n(r, V, 0.0f);
        loss[t] = 0.0f;
        continue;
      }
      const float m = *std::max_element(r, r + V);
      double sum = 0;
      for (int64_t i = 0; i < V; ++i) sum += std::exp(static_cast<double>(r[i]) - m);
      const double lse = m + std::log(sum);
      loss[t] = static_cast<float>(lse - r[target[t]]);
      for (int64_t i = 0; i < V; ++i)
        r[i] = static_cast<float>(scale * std::exp(static_cast<double>(r[i]) - lse));
      r[target[t]] -= scale;
    }
  });
}

}  // namespace dsv3::ref

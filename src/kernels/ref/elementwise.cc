// Reference elementwise and row-wise ops: softmax, sigmoid, SwiGLU, axpy, bias, top-k.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "kernels/ref/ref.h"

namespace dsv3::ref {

void softmax(float* x, int64_t T, int64_t n) {
  for (int64_t t = 0; t < T; ++t) {
    float* r = x + t * n;
    const float m = *std::max_element(r, r + n);
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += (r[i] = std::exp(r[i] - m));
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t i = 0; i < n; ++i) r[i] *= inv;
  }
}

void sigmoid(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = 1.0f / (1.0f + std::exp(-x[i]));
}

void swiglu(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void axpy(float* y, float a, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void add_bias(float* y, const float* b, int64_t T, int64_t n) {
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < n; ++i) y[t * n + i] += b[i];
}

void topk(int32_t* idx, const float* x, int64_t n, int64_t k) {
  std::vector<int32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  // Largest first; -inf sorts last; ties keep the lower index.
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [&](int32_t a, int32_t b) { return x[a] > x[b] || (x[a] == x[b] && a < b); });
  std::copy(order.begin(), order.begin() + k, idx);
}

void swiglu_backward(float* dgate, float* dup, const float* gate, const float* up,
                     const float* dact, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float sg = 1.0f / (1.0f + std::exp(-gate[i]));
    const float silu = gate[i] * sg;
    dup[i] = dact[i] * silu;
    dgate[i] = dact[i] * up[i] * sg * (1.0f + gate[i] * (1.0f - sg));
  }
}

}  // namespace dsv3::ref

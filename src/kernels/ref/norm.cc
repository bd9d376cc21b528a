// Reference RMSNorm, FP32 with a double sum of squares (SPEC §1.2: computed in FP32).
#include <cmath>

#include "kernels/ref/ref.h"

namespace dsv3::ref {

void rmsnorm(float* y, int64_t y_stride, const float* x, int64_t x_stride, const float* g,
             int64_t T, int64_t n, float eps) {
  for (int64_t t = 0; t < T; ++t) {
    const float* xt = x + t * x_stride;
    float* yt = y + t * y_stride;
    double ss = 0;
    for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(xt[i]) * xt[i];
    const float r = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
    for (int64_t i = 0; i < n; ++i) yt[i] = xt[i] * r * g[i];
  }
}

// dL/dx = r * (g ⊙ dy - x̂ * mean(g ⊙ dy ⊙ x̂)) with r = rsqrt(mean(x²) + eps), x̂ = x * r.
void rmsnorm_backward(float* dx, int64_t dx_stride, float* dg, const float* dy, int64_t dy_stride,
                      const float* x, int64_t x_stride, const float* g, int64_t T, int64_t n,
                      float eps) {
  for (int64_t t = 0; t < T; ++t) {
    const float* xt = x + t * x_stride;
    const float* dyt = dy + t * dy_stride;
    float* dxt = dx + t * dx_stride;
    double ss = 0;
    for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(xt[i]) * xt[i];
    const double r = 1.0 / std::sqrt(ss / static_cast<double>(n) + eps);
    double dot = 0;
    for (int64_t i = 0; i < n; ++i) dot += static_cast<double>(g[i]) * dyt[i] * xt[i] * r;
    const double mean = dot / static_cast<double>(n);
    for (int64_t i = 0; i < n; ++i) {
      const double xh = xt[i] * r;
      dg[i] += static_cast<float>(dyt[i] * xh);
      dxt[i] += static_cast<float>(r * (g[i] * dyt[i] - xh * mean));
    }
  }
}

}  // namespace dsv3::ref

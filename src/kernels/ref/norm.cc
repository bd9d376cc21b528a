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

}  // namespace dsv3::ref

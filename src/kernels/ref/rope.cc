// Reference rotary embeddings in the two layouts checkpoints use (SPEC §1.4, §6).
#include "kernels/ref/ref.h"

namespace dsv3::ref {

namespace {
// Rotates pairs (x[i * stride_pair], x[i * stride_pair + offset]) by the angle of pair i.
void rotate(float* x, int64_t T, int64_t n_heads, int64_t row_stride, int64_t head_stride,
            int64_t dim, const float* cos, const float* sin, bool interleaved) {
  const int64_t half = dim / 2;
  for (int64_t t = 0; t < T; ++t) {
    const float* c = cos + t * half;
    const float* s = sin + t * half;
    for (int64_t h = 0; h < n_heads; ++h) {
      float* xh = x + t * row_stride + h * head_stride;
      for (int64_t i = 0; i < half; ++i) {
        float* a = interleaved ? xh + 2 * i : xh + i;
        float* b = interleaved ? xh + 2 * i + 1 : xh + i + half;
        const float x0 = *a, x1 = *b;
        *a = x0 * c[i] - x1 * s[i];
        *b = x1 * c[i] + x0 * s[i];
      }
    }
  }
}
}  // namespace

void rope_interleaved(float* x, int64_t T, int64_t n_heads, int64_t row_stride, int64_t head_stride,
                      int64_t dim, const float* cos, const float* sin) {
  rotate(x, T, n_heads, row_stride, head_stride, dim, cos, sin, true);
}

void rope_half(float* x, int64_t T, int64_t n_heads, int64_t row_stride, int64_t head_stride,
               int64_t dim, const float* cos, const float* sin) {
  rotate(x, T, n_heads, row_stride, head_stride, dim, cos, sin, false);
}

}  // namespace dsv3::ref

// Reference matmul: y = x·wᵀ for any weight storage dtype, FP32 accumulate. Each task dequantises
// a few weight rows once and reuses them for all T input rows.
#include <algorithm>
#include <vector>

#include "kernels/ref/ref.h"

namespace dsv3::ref {

float dot(const float* a, const float* b, int64_t n) {
  constexpr int kLanes = 64;  // several independent vector accumulators hide the add latency
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] += a[i + j] * b[i + j];
  for (int j = 0; i < n; ++i, ++j) acc[j] += a[i] * b[i];
  float s = 0;
  for (int j = 0; j < kLanes; ++j) s += acc[j];
  return s;
}

void matmul(float* y, const float* x, const WeightRef& w, int64_t T, ThreadPool& pool) {
  constexpr int64_t kRowsPerTask = 8;
  const int64_t tasks = (w.rows + kRowsPerTask - 1) / kRowsPerTask;
  pool.parallel_for(tasks, [&](int64_t b, int64_t e) {
    std::vector<float> wrows(kRowsPerTask * w.cols);
    for (int64_t task = b; task < e; ++task) {
      const int64_t r0 = task * kRowsPerTask, n = std::min(kRowsPerTask, w.rows - r0);
      weight_block_f32(w, r0, n, 0, w.cols, wrows.data());
      for (int64_t t = 0; t < T; ++t) {
        const float* xt = x + t * w.cols;
        float* yt = y + t * w.rows + r0;
        for (int64_t i = 0; i < n; ++i) yt[i] = dot(xt, wrows.data() + i * w.cols, w.cols);
      }
    }
  });
}

}  // namespace dsv3::ref

namespace dsv3::ref {

void matmul_xw(float* y, int64_t y_stride, const float* x, int64_t x_stride, const WeightRef& w,
               int64_t T, ThreadPool& pool) {
  // Parallel over column chunks; each task dequantises its column slice of every weight row once.
  constexpr int64_t kColsPerTask = 64;
  const int64_t tasks = (w.cols + kColsPerTask - 1) / kColsPerTask;
  pool.parallel_for(tasks, [&](int64_t b, int64_t e) {
    std::vector<float> wrow(kColsPerTask);
    for (int64_t task = b; task < e; ++task) {
      const int64_t c0 = task * kColsPerTask, nc = std::min(kColsPerTask, w.cols - c0);
      for (int64_t t = 0; t < T; ++t) std::fill_n(y + t * y_stride + c0, nc, 0.0f);
      for (int64_t r = 0; r < w.rows; ++r) {
        weight_block_f32(w, r, 1, c0, nc, wrow.data());
        for (int64_t t = 0; t < T; ++t) {
          const float xr = x[t * x_stride + r];
          float* yt = y + t * y_stride + c0;
          for (int64_t j = 0; j < nc; ++j) yt[j] += xr * wrow[j];
        }
      }
    }
  });
}

}  // namespace dsv3::ref

// Reference matmuls: y = x·wᵀ and y = x·w for any weight storage dtype, FP32 accumulate, per head
// (the plain ops are the one-head case). Each matmul task dequantises a few weight rows once and
// reuses them for all T input rows.
#include <algorithm>
#include <vector>

#include "base/error.h"
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

void check_head_args(const HeadMatmulArgs& a) {
  DSV3_CHECK(a.w != nullptr, "kernels: head matmul without a weight");
  DSV3_CHECK(a.n_heads >= 0 && a.T >= 0 && a.w_rows >= 0 && a.w_head_stride >= 0 && a.w_row0 >= 0,
             "kernels: head matmul with a negative size, stride or first row");
  DSV3_CHECK(a.n_heads == 0 || a.w_row0 + (a.n_heads - 1) * a.w_head_stride + a.w_rows <= a.w->rows,
             "kernels: head matmul reads past the weight's last row",
             "w_row0 + (n_heads - 1) * w_head_stride + w_rows must be <= w->rows");
}

void matmul_heads(const HeadMatmulArgs& a, ThreadPool& pool) {
  check_head_args(a);
  constexpr int64_t kRowsPerTask = 8;
  const WeightRef& w = *a.w;
  const int64_t per_head = (a.w_rows + kRowsPerTask - 1) / kRowsPerTask;  // tasks
  pool.parallel_for(a.n_heads * per_head, [&](int64_t b, int64_t e) {
    std::vector<float> wrows(kRowsPerTask * w.cols);
    for (int64_t task = b; task < e; ++task) {
      const int64_t h = task / per_head, r0 = task % per_head * kRowsPerTask;
      const int64_t n = std::min(kRowsPerTask, a.w_rows - r0);
      weight_block_f32(w, a.w_row0 + h * a.w_head_stride + r0, n, 0, w.cols, wrows.data());
      for (int64_t t = 0; t < a.T; ++t) {
        const float* xt = a.x + t * a.x_row_stride + h * a.x_head_stride;
        float* yt = a.y + t * a.y_row_stride + h * a.y_head_stride + r0;
        for (int64_t i = 0; i < n; ++i) yt[i] = dot(xt, wrows.data() + i * w.cols, w.cols);
      }
    }
  });
}

void matmul(float* y, const float* x, const WeightRef& w, int64_t T, ThreadPool& pool) {
  matmul_heads(one_head(y, w.rows, x, w.cols, w, T), pool);
}

void matmul_batch(const MatmulJob* jobs, int64_t n, ThreadPool& pool) {
  for (int64_t i = 0; i < n; ++i) matmul(jobs[i].y, jobs[i].x, *jobs[i].w, jobs[i].T, pool);
}

void matmul_xw_heads(const HeadMatmulArgs& a, ThreadPool& pool) {
  check_head_args(a);
  // Parallel over column chunks of every head; each task dequantises its column slice of every
  // weight row once.
  constexpr int64_t kColsPerTask = 64;
  const WeightRef& w = *a.w;
  const int64_t per_head = (w.cols + kColsPerTask - 1) / kColsPerTask;  // tasks
  pool.parallel_for(a.n_heads * per_head, [&](int64_t b, int64_t e) {
    std::vector<float> wrow(kColsPerTask);
    for (int64_t task = b; task < e; ++task) {
      const int64_t h = task / per_head, c0 = task % per_head * kColsPerTask;
      const int64_t nc = std::min(kColsPerTask, w.cols - c0);
      const float* x = a.x + h * a.x_head_stride;
      float* y = a.y + h * a.y_head_stride + c0;
      for (int64_t t = 0; t < a.T; ++t) std::fill_n(y + t * a.y_row_stride, nc, 0.0f);
      for (int64_t r = 0; r < a.w_rows; ++r) {
        weight_block_f32(w, a.w_row0 + h * a.w_head_stride + r, 1, c0, nc, wrow.data());
        for (int64_t t = 0; t < a.T; ++t) {
          const float xr = x[t * a.x_row_stride + r];
          float* yt = y + t * a.y_row_stride;
          for (int64_t j = 0; j < nc; ++j) yt[j] += xr * wrow[j];
        }
      }
    }
  });
}

void matmul_xw(float* y, int64_t y_stride, const float* x, int64_t x_stride, const WeightRef& w,
               int64_t T, ThreadPool& pool) {
  matmul_xw_heads(one_head(y, y_stride, x, x_stride, w, T), pool);
}

}  // namespace dsv3::ref

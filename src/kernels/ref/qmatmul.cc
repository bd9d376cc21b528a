// Reference for the integer-activation matmul of the integer block formats (kernels/cpu's
// qmatmul): y = x·wᵀ with x quantized per 32-block to int8 (quant_acts.h) and w in Q8_0, Q4_0 or
// Q4_1, each block's dot product an exact integer sum, scaled and added in FP32 in block order:
//   q8_0  y += (dw * dx) * Σ qw qx
//   q4_0  y += (dw * dx) * Σ (qw - 8) qx
//   q4_1  y += (dw * dx) * Σ qw qx + mw * (dx * Σ qx)
// The SIMD kernels compute the same integer sums and differ only in the order of the float sums.
// (The ref table's matmul dequantizes the weight instead and keeps the activations in FP32.)
#include <vector>

#include "base/error.h"
#include "kernels/quant_acts.h"
#include "kernels/ref/ref.h"
#include "tensor/half.h"

namespace dsv3::ref {

void quantize_head_acts(const HeadMatmulArgs& a, QuantActs& qa, ThreadPool& pool,
                        QuantizeRowFn row) {
  const int64_t K = a.w->cols;
  DSV3_CHECK(a.w->quant != nullptr && K % 32 == 0,
             "kernels: integer matmul needs an integer block-format weight of 32-value blocks");
  qa.reshape(a.n_heads * a.T, K);
  const auto rows = [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float* x = a.x + i % a.T * a.x_row_stride + i / a.T * a.x_head_stride;
      if (row != nullptr)
        row(qa, i, x);
      else
        qa.quantize_row(i, x);
    }
  };
  if (qa.rows * K < (int64_t{1} << 16))  // a decode row: not worth waking the pool
    rows(0, qa.rows);
  else
    pool.parallel_for(qa.rows, rows);
}

void qmatmul_heads(const HeadMatmulArgs& a, ThreadPool& pool) {
  check_head_args(a);
  const WeightRef& w = *a.w;
  QuantActs qa;
  quantize_head_acts(a, qa, pool);
  const BlockFormat f = w.quant->format;
  const int64_t K = w.cols, blocks = K / 32;
  for (int64_t h = 0; h < a.n_heads; ++h)
    for (int64_t r = 0; r < a.w_rows; ++r) {
      const WeightRef row = slice_rows(w, a.w_row0 + h * a.w_head_stride + r, 1);
      const auto* wq = static_cast<const uint8_t*>(row.data);
      for (int64_t t = 0; t < a.T; ++t) {
        const int8_t* xq = qa.q_row(h * a.T + t);
        const float* xd = qa.d_row(h * a.T + t);
        float acc = 0;
        for (int64_t b = 0; b < blocks; ++b) {
          // The block's weight quants (Q4_0: minus its offset 8), decoded in plain loops: one
          // loop choosing the format per value with nested ?: gave wrong sums with GCC 12 at
          // -O3 -march=native.
          int32_t qw[32];
          if (f == BlockFormat::Q8_0) {
            for (int i = 0; i < 32; ++i) qw[i] = static_cast<int8_t>(wq[b * 32 + i]);
          } else {
            for (int i = 0; i < 16; ++i) {
              qw[i] = wq[b * 16 + i] & 0x0F;
              qw[i + 16] = wq[b * 16 + i] >> 4;
            }
            if (f == BlockFormat::Q4_0)
              for (int i = 0; i < 32; ++i) qw[i] -= 8;
          }
          int32_t dot = 0, xsum = 0;
          for (int i = 0; i < 32; ++i) {
            dot += qw[i] * xq[b * 32 + i];
            xsum += xq[b * 32 + i];
          }
          const float dw = f16_to_f32(row.block_scale[b]), dx = xd[b * 8];
          acc += (dw * dx) * static_cast<float>(dot);
          if (f == BlockFormat::Q4_1) acc += f16_to_f32(row.block_min[b]) * (dx * xsum);
        }
        a.y[t * a.y_row_stride + h * a.y_head_stride + r] = acc;
      }
    }
}

}  // namespace dsv3::ref

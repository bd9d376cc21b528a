// The scalar reference kernels, one file per op family; ref_kernels.cc gathers them into a table.
#pragma once
#include "kernels/kernels.h"
#include "kernels/quant_acts.h"

namespace dsv3::ref {

// Dot product in FP32 with 64 independent partial sums (a fixed order, so results are
// reproducible; the compiler may vectorise it without reassociating).
float dot(const float* a, const float* b, int64_t n);

void matmul(float* y, const float* x, const WeightRef& w, int64_t T, ThreadPool& pool);
void matmul_batch(const MatmulJob* jobs, int64_t n, ThreadPool& pool);  // matmul on each in turn
void matmul_xw(float* y, int64_t y_stride, const float* x, int64_t x_stride, const WeightRef& w,
               int64_t T, ThreadPool& pool);
void matmul_heads(const HeadMatmulArgs& a, ThreadPool& pool);
void matmul_xw_heads(const HeadMatmulArgs& a, ThreadPool& pool);
// matmul_heads for an integer block-format weight (Q8_0, Q4_0, Q4_1) the way the SIMD kernels
// compute it: activations quantized to int8 per 32-block, exact integer block sums, FP32 scales
// and sums in block order (qmatmul.cc). Single-threaded; the yardstick of kernels/cpu's qmatmul.
void qmatmul_heads(const HeadMatmulArgs& a, ThreadPool& pool);
// Every head's rows of x quantized into qa (row h * T + t), as qmatmul kernels do first, by
// `row` (a SIMD version of QuantActs::quantize_row, bit for bit the same) or, null, the plain one.
using QuantizeRowFn = void (*)(QuantActs& qa, int64_t row, const float* x);
void quantize_head_acts(const HeadMatmulArgs& a, QuantActs& qa, ThreadPool& pool,
                        QuantizeRowFn row = nullptr);
void gemm(const GemmArgs& g, ThreadPool& pool);
void gemm_bf16(const GemmArgs& g, ThreadPool& pool);
// Throws Error for negative sizes, short leading dimensions or missing buffers (every table's
// gemm).
void check_gemm_args(const GemmArgs& g);
// Throws Error unless every head's rows lie inside *a.w (shared by every table's head matmuls).
void check_head_args(const HeadMatmulArgs& a);
// The arguments of the plain matmul / matmul_xw as one head: rows of x and y x_stride / y_stride
// apart, all of w's rows (how every table runs its plain matmuls through the head versions).
inline HeadMatmulArgs one_head(float* y, int64_t y_stride, const float* x, int64_t x_stride,
                               const WeightRef& w, int64_t T) {
  HeadMatmulArgs a;
  a.w = &w, a.n_heads = 1, a.w_rows = w.rows, a.T = T;
  a.x = x, a.x_row_stride = x_stride, a.y = y, a.y_row_stride = y_stride;
  return a;
}
void rmsnorm(float* y, int64_t y_stride, const float* x, int64_t x_stride, const float* g,
             int64_t T, int64_t n, float eps);
void rmsnorm_backward(float* dx, int64_t dx_stride, float* dg, const float* dy, int64_t dy_stride,
                      const float* x, int64_t x_stride, const float* g, int64_t T, int64_t n,
                      float eps);
void embedding(float* y, const int32_t* ids, int64_t T, const WeightRef& table);
void embedding_backward(float* dtable, const int32_t* ids, const float* dy, int64_t T, int64_t d);
void rope_interleaved(float* x, int64_t T, int64_t n_heads, int64_t row_stride, int64_t head_stride,
                      int64_t dim, const float* cos, const float* sin);
void rope_half(float* x, int64_t T, int64_t n_heads, int64_t row_stride, int64_t head_stride,
               int64_t dim, const float* cos, const float* sin);
void softmax(float* x, int64_t T, int64_t n);
void sigmoid(float* x, int64_t n);
void swiglu(float* gate, const float* up, int64_t n);
void swiglu_backward(float* dgate, float* dup, const float* gate, const float* up,
                     const float* dact, int64_t n);
void cross_entropy(float* x, const int32_t* target, int64_t T, int64_t V, float scale, float* loss,
                   ThreadPool& pool);
void axpy(float* y, float a, const float* x, int64_t n);
void add_bias(float* y, const float* b, int64_t T, int64_t n);
void topk(int32_t* idx, const float* x, int64_t n, int64_t k);
void attention(const AttentionArgs& a, ThreadPool& pool);
void attention_backward(const AttentionBackwardArgs& a, ThreadPool& pool);

}  // namespace dsv3::ref

// The kernels module's public header: model-agnostic math on raw float32 buffers with explicit
// shapes. Model code calls every op through a `Kernels` table passed by reference, so SIMD,
// quantized or CUDA versions can fill the table later without touching the model
// (ARCHITECTURE: kernels/ref holds the scalar reference versions).
//
// Conventions: activations are float32, row-major, shapes in comments as [rows, cols]; weights are
// read in their storage dtype through WeightRef and dequantised on the fly; accumulation is FP32.
#pragma once
#include <cstdint>

#include "base/thread_pool.h"
#include "tensor/block_format.h"
#include "tensor/dtype.h"

namespace dsv3 {

// A weight matrix [rows, cols] (Linear: [out, in], y = x·wᵀ) in its storage dtype: F32, BF16, F16
// or F8_E4M3. F8_E4M3 carries float32 scale_inv [ceil(rows/block_rows), ceil(cols/block_cols)]
// and dequantises as w[i,j] = q[i,j] * scale_inv[i/block_rows][j/block_cols] (SPEC §3.2).
// A vector (norm gain, bias) is a WeightRef with rows = 1.
// An integer block format (quant set: Q8_0, Q4_0, Q4_1; tensor/block_format.h) keeps its quants
// in data (dtype I8 or U8, quant->quant_row_bytes(cols) per row) and one F16 scale (and Q4_1 one
// F16 minimum) per 32 values of a row in block_scale / block_min [rows, cols / 32].
struct WeightRef {
  DType dtype = DType::F32;
  const void* data = nullptr;
  int64_t rows = 0, cols = 0;
  const float* scale_inv = nullptr;
  int64_t block_rows = 128, block_cols = 128;
  int64_t scale_row0 = 0;  // index of row 0 in the scaled matrix (a slice of rows, see slice_rows)
  const BlockFormatTraits* quant = nullptr;
  const uint16_t* block_scale = nullptr;
  const uint16_t* block_min = nullptr;

  // Bytes between rows of data.
  int64_t row_bytes() const {
    return quant ? quant->quant_row_bytes(cols) : cols * static_cast<int64_t>(dtype_size(dtype));
  }
};

// Rows [r0, r0 + n) of w as a WeightRef of its own (FP8 slices keep their block scales, integer
// block formats their scale rows).
WeightRef slice_rows(const WeightRef& w, int64_t r0, int64_t n);

// The block w[r0 : r0 + nr, c0 : c0 + nc] as float32 into out [nr, nc] (FP8: dequantised with the
// block scales). Throws Error for a storage dtype the kernels cannot read.
void weight_block_f32(const WeightRef& w, int64_t r0, int64_t nr, int64_t c0, int64_t nc,
                      float* out);

// Causal multi-head attention over a cache of S positions for T new query rows: query row i sits
// at position S - T + i and sees keys 0 .. S - T + i. Query head h reads key/value head
// h / (n_heads / n_kv_heads) (GQA; MLA's absorbed path is n_kv_heads = 1, SPEC §1.5).
// Element j of head h of row t lives at ptr[t * row_stride + h * head_stride + j].
struct AttentionArgs {
  int64_t T = 0, S = 0;
  int64_t n_heads = 0, n_kv_heads = 0;
  int64_t dk = 0, dv = 0;
  float scale = 1.0f;  // applied to q·k before the FP32 softmax
  const float* q = nullptr;
  int64_t q_row_stride = 0, q_head_stride = 0;
  const float* k = nullptr;
  int64_t k_row_stride = 0, k_head_stride = 0;
  const float* v = nullptr;
  int64_t v_row_stride = 0, v_head_stride = 0;
  float* out = nullptr;  // [T, n_heads, dv] with the strides below
  int64_t out_row_stride = 0, out_head_stride = 0;
  float* lse = nullptr;  // optional [T, n_heads] (row stride n_heads): natural log-sum-exp of each
                         // query row's scaled, masked scores per head, for a backward pass
};

// The backward pass of `attention` over the same arguments (fwd.out and fwd.lse as the forward
// wrote them): dq [T, n_heads, dk] is written; dk [S, n_kv_heads, dk] and dv [S, n_kv_heads, dv]
// are accumulated (+=), since query heads of a group share a key head. Scores are recomputed from
// q, k and lse (P = exp(scale * q·k - lse)), as FlashAttention's backward does; FP32.
struct AttentionBackwardArgs {
  AttentionArgs fwd;
  const float* dout = nullptr;  // [T, n_heads, dv]
  int64_t dout_row_stride = 0, dout_head_stride = 0;
  float* dq = nullptr;
  int64_t dq_row_stride = 0, dq_head_stride = 0;
  float* dk = nullptr;
  int64_t dk_row_stride = 0, dk_head_stride = 0;
  float* dv = nullptr;
  int64_t dv_row_stride = 0, dv_head_stride = 0;
};

// Head-batched matmuls (MLA weight absorption, SPEC §1.5): for h in [0, n_heads), W_h is rows
// [w_row0 + h * w_head_stride, w_row0 + h * w_head_stride + w_rows) of *w (FP8 slices keep their
// block scales, like slice_rows); head h of row t of x is at
// x + t * x_row_stride + h * x_head_stride, likewise y. Every output equals, bit for bit, what the
// same table's matmul (matmul_xw) gives on slice_rows(*w, w_row0 + h * w_head_stride, w_rows)
// for that head alone; the batched call only spreads all heads' work over the pool at once.
struct HeadMatmulArgs {
  const WeightRef* w = nullptr;
  int64_t n_heads = 0, w_row0 = 0, w_head_stride = 0, w_rows = 0;
  int64_t T = 0;
  const float* x = nullptr;
  int64_t x_row_stride = 0, x_head_stride = 0;
  float* y = nullptr;
  int64_t y_row_stride = 0, y_head_stride = 0;
};

// A training GEMM, the three of every Linear (SPEC §3.1): c[M, N] = (accumulate ? c : 0) +
// op(a) · op(b), float32 row-major with leading dimensions (elements between rows, >= the row's
// length). op(a) [M, K] is a (a[m * lda + k]) or, with a_trans, aᵀ (a[k * lda + m]); op(b) [K, N]
// is b (b[k * ldb + n]) or, with b_trans, bᵀ (b[n * ldb + k]). c may not overlap a or b.
// Linear with W [out, in]: Fprop Y = X·Wᵀ (b_trans), Dgrad dX = dY·W, Wgrad dW += dYᵀ·X
// (a_trans, accumulate).
struct GemmArgs {
  int64_t M = 0, N = 0, K = 0;
  const float* a = nullptr;
  int64_t lda = 0;
  bool a_trans = false;
  const float* b = nullptr;
  int64_t ldb = 0;
  bool b_trans = false;
  float* c = nullptr;
  int64_t ldc = 0;
  bool accumulate = false;
};

// One matmul of a batch (Kernels::matmul_batch): y[T, w->rows] = x[T, w->cols] · w->ᵀ.
struct MatmulJob {
  float* y;
  const float* x;
  const WeightRef* w;
  int64_t T;
};

// The dispatch table. Every pointer is set in every table (a backend may reuse ref entries).
// Tables are written with designated initializers (`.matmul = ref::matmul`): GCC rejects them out
// of declaration order, and -Wmissing-field-initializers (-Wextra, an error here) rejects a table
// that leaves an entry out, so members get no default initializers.
struct Kernels {
  const char* name;

  // y[T, w.rows] = x[T, w.cols] · wᵀ, FP32 accumulate, parallel over output rows.
  void (*matmul)(float* y, const float* x, const WeightRef& w, int64_t T, ThreadPool& pool);
  // The jobs' matmuls, each output bit for bit what matmul gives for its job alone: where the
  // table can, in one pass over the pool (decode's many small matrices, a MoE layer's experts:
  // one hand-off, and each thread streams from one matrix into the next), else in turn.
  void (*matmul_batch)(const MatmulJob* jobs, int64_t n, ThreadPool& pool);
  // y[T, w.cols] = x[T, w.rows] · w (the weight not transposed: MLA's absorbed query, SPEC §1.5,
  // and later input gradients), rows of x and y x_stride / y_stride apart, FP32 accumulate.
  void (*matmul_xw)(float* y, int64_t y_stride, const float* x, int64_t x_stride,
                    const WeightRef& w, int64_t T, ThreadPool& pool);
  // y_h[T, w_rows] = x_h[T, w->cols] · W_hᵀ for every head, one parallel pass over all heads'
  // outputs.
  void (*matmul_heads)(const HeadMatmulArgs& a, ThreadPool& pool);
  // y_h[T, w->cols] = x_h[T, w_rows] · W_h for every head, one parallel pass over all heads'
  // outputs.
  void (*matmul_xw_heads)(const HeadMatmulArgs& a, ThreadPool& pool);
  // Training GEMMs (GemmArgs). gemm: FP32 products and sums, in an order of the kernel's choosing
  // (unlike matmul, a row's result may depend on M: training only). gemm_bf16: the same with every
  // element of a and b rounded to BF16 first (nearest even; the AVX-512 versions also flush
  // float32 subnormals to zero, as the BF16 instructions do): the products are exact in FP32, the
  // sums FP32.
  void (*gemm)(const GemmArgs& g, ThreadPool& pool);
  void (*gemm_bf16)(const GemmArgs& g, ThreadPool& pool);
  // y[t] = x[t] * rsqrt(mean(x[t]²) + eps) * g over n values per row, in FP32 (SPEC §1.2).
  // Rows are x_stride / y_stride apart; y may equal x.
  void (*rmsnorm)(float* y, int64_t y_stride, const float* x, int64_t x_stride, const float* g,
                  int64_t T, int64_t n, float eps);
  // Backward of rmsnorm over the same x and g: dx[t] += dL/dx[t] (rows dx_stride / dy_stride
  // apart) and dg[i] += Σ_t dy[t, i] * x̂[t, i], x̂ = x * rsqrt(mean(x²) + eps); FP32.
  void (*rmsnorm_backward)(float* dx, int64_t dx_stride, float* dg, const float* dy,
                           int64_t dy_stride, const float* x, int64_t x_stride, const float* g,
                           int64_t T, int64_t n, float eps);
  // y[T, table.cols] = rows ids[0..T) of table. Ids must be in range (checked by the caller).
  void (*embedding)(float* y, const int32_t* ids, int64_t T, const WeightRef& table);
  // dtable[ids[t]] += dy[t] for t < T (rows of d values; FP32 gradient of embedding).
  void (*embedding_backward)(float* dtable, const int32_t* ids, const float* dy, int64_t T,
                             int64_t d);
  // Rotates `dim` values of each of n_heads heads of each of T rows in place; cos/sin are
  // [T, dim/2] (angle of pair i at that row's position, already multiplied by any mscale).
  // interleaved: pairs (x[2i], x[2i+1]) (DeepSeek, SPEC §1.4). half: pairs (x[i], x[i+dim/2])
  // (rotate_half, Qwen2 / Llama). The backward is the same op with -sin (a rotation's inverse).
  void (*rope_interleaved)(float* x, int64_t T, int64_t n_heads, int64_t row_stride,
                           int64_t head_stride, int64_t dim, const float* cos, const float* sin);
  void (*rope_half)(float* x, int64_t T, int64_t n_heads, int64_t row_stride, int64_t head_stride,
                    int64_t dim, const float* cos, const float* sin);
  // In place over T rows of n values: softmax / logistic sigmoid, FP32.
  void (*softmax)(float* x, int64_t T, int64_t n);
  void (*sigmoid)(float* x, int64_t n);
  // gate[i] = silu(gate[i]) * up[i] over n values (SwiGLU, SPEC §1.6).
  void (*swiglu)(float* gate, const float* up, int64_t n);
  // Backward of swiglu from its inputs: dgate[i] = dact[i] * up[i] * silu'(gate[i]),
  // dup[i] = dact[i] * silu(gate[i]) (both written).
  void (*swiglu_backward)(float* dgate, float* dup, const float* gate, const float* up,
                          const float* dact, int64_t n);
  // Cross-entropy over T rows of V logits: loss[t] = logsumexp(x[t]) - x[t, target[t]] and, in
  // place, x[t] = scale * (softmax(x[t]) - onehot(target[t])), the gradient of scale * Σ loss.
  // A row whose target is negative is ignored: loss 0, gradient 0. FP32 with a double sum.
  void (*cross_entropy)(float* x, const int32_t* target, int64_t T, int64_t V, float scale,
                        float* loss, ThreadPool& pool);
  // y[i] += a * x[i] over n values (residual adds with a = 1, MoE combine with a = g_i).
  void (*axpy)(float* y, float a, const float* x, int64_t n);
  // y[t, j] += b[j] over T rows of n values (Qwen2 q/k/v biases).
  void (*add_bias)(float* y, const float* b, int64_t T, int64_t n);
  // idx[0..k) = indices of the k largest of x[0..n), largest first; ties keep the lower index.
  void (*topk)(int32_t* idx, const float* x, int64_t n, int64_t k);
  // Causal attention (see AttentionArgs), softmax in FP32; memory: one row of scores per thread.
  void (*attention)(const AttentionArgs& a, ThreadPool& pool);
  void (*attention_backward)(const AttentionBackwardArgs& a, ThreadPool& pool);
};

// The scalar reference kernels (kernels/ref): slow, simple, the yardstick for faster versions.
const Kernels& ref_kernels();

}  // namespace dsv3

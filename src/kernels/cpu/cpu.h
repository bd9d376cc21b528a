// The AVX-512 kernels (kernels/cpu): faster versions of the hot ops, filled into cpu_kernels()
// next to ref entries for the ops not worth a SIMD version. Every function here is compiled for
// AVX-512 F/BW/VL (a target pragma in its file, not a global flag) and may only be called after
// cpu_kernels_supported() said yes.
#pragma once
#include "kernels/kernels.h"

namespace dsv3 {
struct QuantActs;
}
namespace dsv3::cpu {

// fn(0, n) on the calling thread when the op is below ~2^17 multiply-adds (a few microseconds:
// waking the pool would cost about as much, and on a busy machine far more), else
// pool.parallel_for(n, fn). Either way every output is computed the same way.
template <typename Fn>
void run_tasks(ThreadPool& pool, int64_t n, int64_t macs, const Fn& fn) {
  if (macs < (int64_t{1} << 17))
    fn(int64_t{0}, n);
  else
    pool.parallel_for(n, fn);
}

void matmul(float* y, const float* x, const WeightRef& w, int64_t T, ThreadPool& pool);
// Decode jobs (T < 4) on Q8_0 / Q4_0 weights with VNNI (or AMX) in one qmatmul_gemv16 batch,
// activations quantized once per distinct x; any other batch through matmul in turn.
void matmul_batch(const MatmulJob* jobs, int64_t n, ThreadPool& pool);
void matmul_xw(float* y, int64_t y_stride, const float* x, int64_t x_stride, const WeightRef& w,
               int64_t T, ThreadPool& pool);
void matmul_heads(const HeadMatmulArgs& a, ThreadPool& pool);
// BF16 weights with the activations rounded to BF16 first (nearest even), FP32 sums, still one
// fixed order per output whatever T (matmul_bf16.cc): on AMX tiles, or with AVX512-BF16 dot
// products. bf16_activation_matmul() is the one matmul and matmul_heads take for BF16 weights:
// the AMX one where amx_supported(), else the dot-product one where avx512_bf16_supported(), else
// none (then the FP32-activation kernel of matmul.cc); DSV3_BF16_ACTIVATIONS=0 in the environment
// keeps FP32 activations (to compare, and for tests that need FP32 activations).
void matmul_heads_bf16_amx(const HeadMatmulArgs& a, ThreadPool& pool);
void matmul_heads_bf16_dp(const HeadMatmulArgs& a, ThreadPool& pool);
using HeadMatmulFn = void (*)(const HeadMatmulArgs& a, ThreadPool& pool);
HeadMatmulFn bf16_activation_matmul();
bool matmul_rounds_bf16_activations();  // bf16_activation_matmul() != nullptr
void matmul_xw_heads(const HeadMatmulArgs& a, ThreadPool& pool);
// Training GEMMs (kernels.h GemmArgs): FP32 (gemm.cc) and BF16 operands with FP32 sums, on AMX
// tiles (gemm_amx.cc) or with AVX512-BF16 dot products (gemm_bf16.cc). gemm_bf16 runs the first
// of those this CPU has (else gemm_bf16_emulated); the others are here for tests and benchmarks.
// amx_supported() also asks Linux for the tile state, once; DSV3_AMX=0 in the environment turns
// AMX off (to compare).
void gemm(const GemmArgs& g, ThreadPool& pool);
void gemm_bf16(const GemmArgs& g, ThreadPool& pool);
bool avx512_bf16_supported();
bool amx_supported();
void gemm_bf16_dp(const GemmArgs& g, ThreadPool& pool);
void gemm_bf16_amx(const GemmArgs& g, ThreadPool& pool);
// Without either: the operands rounded into copies, then gemm (BF16 results at FP32 speed).
void gemm_bf16_emulated(const GemmArgs& g, ThreadPool& pool);
// Integer block-format weights (Q8_0, Q4_0, Q4_1; WeightRef::quant) through matmul_heads:
// activations quantized to int8 per 32-block, integer dot products (ref::qmatmul_heads states the
// arithmetic). qmatmul_heads runs the first this CPU has: AMX-INT8 tiles for Q8_0 and Q4_0
// (qmatmul_amx.cc; Q4_1 there goes to VNNI), else AVX-512 VNNI (qmatmul.cc: Q8_0 and Q4_0 through
// qmatmul_panel.cc and qmatmul_gemv16.cc, the AMX tiles' arithmetic), else AVX2
// (qmatmul_avx2.cc; needs only AVX2, FMA and F16C), else the ref version. The others are here for
// tests and benchmarks.
void qmatmul_heads(const HeadMatmulArgs& a, ThreadPool& pool);
bool avx512_vnni_supported();
bool avx2_supported();
void qmatmul_heads_vnni(const HeadMatmulArgs& a, ThreadPool& pool);
void qmatmul_heads_amx(const HeadMatmulArgs& a, ThreadPool& pool);  // where amx_int8_supported()
// Q8_0 and Q4_0 with the AMX tiles' arithmetic on AVX-512 VNNI alone, for activations quantized
// into qa: prefill (T >= 4) from staged panels of 16 rows (qmatmul_panel.cc), decode by the 16-row
// GEMV (qmatmul_gemv16.cc, also AMX's decode), whose Q4_0 splits nibbles with GFNI when `gfni`
// (qmatmul_gemv16_gfni.cc; callers pass gfni_supported(); qmatmul_heads_vnni_no_gfni is the
// VNNI table without it, for tests).
void qmatmul_panel_vnni(const HeadMatmulArgs& a, const QuantActs& qa, ThreadPool& pool);
void qmatmul_gemv16(const HeadMatmulArgs& a, const QuantActs& qa, ThreadPool& pool, bool gfni);
// The same for n matmuls a[i] (activations qa[i]) in one pass over the pool (matmul_batch).
void qmatmul_gemv16(const HeadMatmulArgs* a, const QuantActs* const* qa, int64_t n,
                    ThreadPool& pool, bool gfni);
void qmatmul_gemv16_gfni(const HeadMatmulArgs* a, const QuantActs* const* qa, int64_t n,
                         ThreadPool& pool);
bool gfni_supported();
void qmatmul_heads_vnni_no_gfni(const HeadMatmulArgs& a, ThreadPool& pool);
// QuantActs::quantize_row with AVX-512, bit for bit the same (quant_acts_avx512.cc).
void quantize_acts_row(QuantActs& qa, int64_t row, const float* x);
void qmatmul_heads_avx2(const HeadMatmulArgs& a, ThreadPool& pool);
// Peak-rate probes (peak_probes.cc, for machine_peaks.h): `iters` rounds of a register-only loop
// of independent instructions on the calling thread; each returns the floating-point (or integer)
// operations it did, a multiply-add counting 2. Call only where the instructions exist.
bool amx_int8_supported();
double probe_f32_fma(int64_t iters);
double probe_bf16_dot(int64_t iters);
double probe_int8_vnni(int64_t iters);
double probe_amx(int64_t iters, bool int8);
void rmsnorm(float* y, int64_t y_stride, const float* x, int64_t x_stride, const float* g,
             int64_t T, int64_t n, float eps);
void rmsnorm_backward(float* dx, int64_t dx_stride, float* dg, const float* dy, int64_t dy_stride,
                      const float* x, int64_t x_stride, const float* g, int64_t T, int64_t n,
                      float eps);
void softmax(float* x, int64_t T, int64_t n);
void sigmoid(float* x, int64_t n);
void swiglu(float* gate, const float* up, int64_t n);
void swiglu_backward(float* dgate, float* dup, const float* gate, const float* up,
                     const float* dact, int64_t n);
void cross_entropy(float* x, const int32_t* target, int64_t T, int64_t V, float scale, float* loss,
                   ThreadPool& pool);
void attention(const AttentionArgs& a, ThreadPool& pool);
void attention_backward(const AttentionBackwardArgs& b, ThreadPool& pool);

}  // namespace dsv3::cpu

// The AVX-512 dispatch table: kernels/cpu where a SIMD version pays, ref for the rest (embedding
// and rope are copies / O(n) per row, axpy/add_bias and embedding_backward's row adds already
// vectorised by the compiler, topk a sort). Compiled without AVX-512: only the CPU check and the
// table live here.
#include <cstdlib>
#include <cstring>

#include "base/error.h"
#include "kernels/best_kernels.h"
#include "kernels/cpu/cpu.h"
#include "kernels/ref/ref.h"

namespace dsv3 {

bool cpu_kernels_supported() {
  // libgcc's check includes the OS's support for the 512-bit register state (XCR0).
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512vl");
  return ok;
}

namespace cpu {

void gemm_bf16(const GemmArgs& g, ThreadPool& pool) {
  static const auto impl = amx_supported()           ? gemm_bf16_amx
                           : avx512_bf16_supported() ? gemm_bf16_dp
                                                     : gemm_bf16_emulated;
  impl(g, pool);
}

void qmatmul_heads(const HeadMatmulArgs& a, ThreadPool& pool) {
  static const auto impl = amx_int8_supported()      ? qmatmul_heads_amx
                           : avx512_vnni_supported() ? qmatmul_heads_vnni
                           : avx2_supported()        ? qmatmul_heads_avx2
                                                     : ref::qmatmul_heads;
  impl(a, pool);
}

HeadMatmulFn bf16_activation_matmul() {
  static const HeadMatmulFn f = []() -> HeadMatmulFn {
    const char* env = std::getenv("DSV3_BF16_ACTIVATIONS");
    if (env != nullptr && std::strcmp(env, "0") == 0) return nullptr;
    return amx_supported()           ? matmul_heads_bf16_amx
           : avx512_bf16_supported() ? matmul_heads_bf16_dp
                                     : nullptr;
  }();
  return f;
}

bool matmul_rounds_bf16_activations() {
  return bf16_activation_matmul() != nullptr;
}

}  // namespace cpu

namespace {

// The AVX2 table's matmuls: integer block-format weights through qmatmul_avx2.cc, the rest ref.
void avx2_matmul_heads(const HeadMatmulArgs& a, ThreadPool& pool) {
  if (a.w != nullptr && a.w->quant) return cpu::qmatmul_heads_avx2(a, pool);
  ref::matmul_heads(a, pool);
}

void avx2_matmul(float* y, const float* x, const WeightRef& w, int64_t T, ThreadPool& pool) {
  avx2_matmul_heads(ref::one_head(y, w.rows, x, w.cols, w, T), pool);
}

void avx2_matmul_batch(const MatmulJob* jobs, int64_t n, ThreadPool& pool) {
  for (int64_t i = 0; i < n; ++i) avx2_matmul(jobs[i].y, jobs[i].x, *jobs[i].w, jobs[i].T, pool);
}

}  // namespace

const Kernels& avx2_kernels() {
  DSV3_CHECK(cpu::avx2_supported(), "kernels: this CPU lacks AVX2, FMA or F16C",
             "use ref_kernels() or best_kernels()");
  // The ref table with the matmuls replaced (the other ops have no AVX2 versions yet).
  static const Kernels k = [] {
    Kernels t = ref_kernels();
    t.name = "ref-avx2-int8";
    t.matmul = avx2_matmul;
    t.matmul_batch = avx2_matmul_batch;
    t.matmul_heads = avx2_matmul_heads;
    return t;
  }();
  return k;
}

const Kernels& cpu_kernels() {
  DSV3_CHECK(cpu_kernels_supported(), "kernels: this CPU lacks AVX-512 F/BW/VL",
             "use ref_kernels() or best_kernels()");
  static const Kernels k = {
      .name = "cpu-avx512",
      .matmul = cpu::matmul,
      .matmul_batch = cpu::matmul_batch,
      .matmul_xw = cpu::matmul_xw,
      .matmul_heads = cpu::matmul_heads,
      .matmul_xw_heads = cpu::matmul_xw_heads,
      .gemm = cpu::gemm,
      .gemm_bf16 = cpu::gemm_bf16,
      .rmsnorm = cpu::rmsnorm,
      .rmsnorm_backward = cpu::rmsnorm_backward,
      .embedding = ref::embedding,
      .embedding_backward = ref::embedding_backward,
      .rope_interleaved = ref::rope_interleaved,
      .rope_half = ref::rope_half,
      .softmax = cpu::softmax,
      .sigmoid = cpu::sigmoid,
      .swiglu = cpu::swiglu,
      .swiglu_backward = cpu::swiglu_backward,
      .cross_entropy = cpu::cross_entropy,
      .axpy = ref::axpy,
      .add_bias = ref::add_bias,
      .topk = ref::topk,
      .attention = cpu::attention,
      .attention_backward = cpu::attention_backward,
  };
  return k;
}

}  // namespace dsv3

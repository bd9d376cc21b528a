// The reference dispatch table (designated initializers: see struct Kernels).
#include "kernels/ref/ref.h"

namespace dsv3 {

const Kernels& ref_kernels() {
  static const Kernels k = {
      .name = "ref",
      .matmul = ref::matmul,
      .matmul_batch = ref::matmul_batch,
      .matmul_xw = ref::matmul_xw,
      .matmul_heads = ref::matmul_heads,
      .matmul_xw_heads = ref::matmul_xw_heads,
      .gemm = ref::gemm,
      .gemm_bf16 = ref::gemm_bf16,
      .rmsnorm = ref::rmsnorm,
      .rmsnorm_backward = ref::rmsnorm_backward,
      .embedding = ref::embedding,
      .embedding_backward = ref::embedding_backward,
      .rope_interleaved = ref::rope_interleaved,
      .rope_half = ref::rope_half,
      .softmax = ref::softmax,
      .sigmoid = ref::sigmoid,
      .swiglu = ref::swiglu,
      .swiglu_backward = ref::swiglu_backward,
      .cross_entropy = ref::cross_entropy,
      .axpy = ref::axpy,
      .add_bias = ref::add_bias,
      .topk = ref::topk,
      .attention = ref::attention,
      .attention_backward = ref::attention_backward,
  };
  return k;
}

}  // namespace dsv3

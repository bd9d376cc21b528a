// The reference dispatch table.
#include "kernels/ref/ref.h"

namespace dsv3 {

const Kernels& ref_kernels() {
  static const Kernels k = {
      "ref",          ref::matmul,           ref::matmul_xw, ref::rmsnorm,
      ref::embedding, ref::rope_interleaved, ref::rope_half, ref::softmax,
      ref::sigmoid,   ref::swiglu,           ref::axpy,      ref::add_bias,
      ref::topk,      ref::attention,
  };
  return k;
}

}  // namespace dsv3

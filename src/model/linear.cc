// Linear's three GEMMs (SPEC §3.1).
#include "model/linear.h"

namespace dsv3 {

void Linear::forward(ComputeContext ctx, const float* x, int64_t T, float* y) const {
  ctx.kernels.matmul(y, x, w_->value, T, ctx.pool);
  if (b_) ctx.kernels.add_bias(y, b_->f32, T, out());
}

void Linear::backward_input(ComputeContext ctx, const float* dy, int64_t T, float* dx) const {
  ctx.kernels.matmul_xw(dx, in(), dy, out(), w_->value, T, ctx.pool);
}

}  // namespace dsv3

// Linear's three GEMMs (SPEC §3.1).
#include "model/linear.h"

#include "base/error.h"

namespace dsv3 {

void Linear::forward(ComputeContext ctx, const float* x, int64_t T, float* y) const {
  ctx.kernels.matmul(y, x, w_->value, T, ctx.pool);
  if (b_) ctx.kernels.add_bias(y, b_->f32, T, out());
}

void Linear::backward_input(ComputeContext ctx, const float* dy, int64_t T, float* dx) const {
  ctx.kernels.matmul_xw(dx, in(), dy, out(), w_->value, T, ctx.pool);
}

void Linear::backward_weight(ComputeContext ctx, const float* dy, const float* x, int64_t T) const {
  DSV3_CHECK(w_->grad, "Linear: " + w_->name() + " has no gradient",
             "call ParamStore::enable_training() before a backward pass");
  ctx.kernels.matmul_dw(w_->grad, dy, x, T, out(), in(), ctx.pool);
  if (b_) {
    DSV3_CHECK(b_->grad, "Linear: " + b_->name() + " has no gradient");
    for (int64_t t = 0; t < T; ++t) ctx.kernels.axpy(b_->grad, 1.0f, dy + t * out(), out());
  }
}

}  // namespace dsv3

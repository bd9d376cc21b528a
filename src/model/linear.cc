// Linear's three GEMMs and its precision policy (SPEC §3.1; see linear.h).
#include "model/linear.h"

#include "base/error.h"

namespace dsv3 {

Precision parse_train_precision(const std::string& s) {
  if (s == "f32") return Precision::F32;
  if (s == "bf16") return Precision::BF16;
  throw Error("unknown precision '" + s + "'", "use f32 or bf16");
}

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::F32:
      return "f32";
    case Precision::BF16:
      return "bf16";
    default:
      return "inference";
  }
}

Linear::GemmFn Linear::gemm(ComputeContext ctx) const {
  DSV3_CHECK(w_->value.dtype == DType::F32,
             "Linear: " + w_->name() + " is not an FP32 master weight",
             "training GEMMs need ParamStore::enable_training()");
  return ctx.precision == Precision::BF16 && !fp32_ ? ctx.kernels.gemm_bf16 : ctx.kernels.gemm;
}

void Linear::forward(ComputeContext ctx, const float* x, int64_t T, float* y) const {
  if (ctx.precision == Precision::Inference) {
    ctx.kernels.matmul(y, x, w_->value, T, ctx.pool);
  } else {
    const auto* w = static_cast<const float*>(w_->value.data);
    gemm(ctx)({T, out(), in(), x, in(), false, w, in(), true, y, out(), false}, ctx.pool);
  }
  if (b_) ctx.kernels.add_bias(y, b_->f32, T, out());
}

void Linear::backward_input(ComputeContext ctx, const float* dy, int64_t T, float* dx) const {
  if (ctx.precision == Precision::Inference)
    return ctx.kernels.matmul_xw(dx, in(), dy, out(), w_->value, T, ctx.pool);
  const auto* w = static_cast<const float*>(w_->value.data);
  gemm(ctx)({T, in(), out(), dy, out(), false, w, in(), false, dx, in(), false}, ctx.pool);
}

void Linear::backward_weight(ComputeContext ctx, const float* dy, const float* x, int64_t T) const {
  DSV3_CHECK(w_->grad, "Linear: " + w_->name() + " has no gradient",
             "call ParamStore::enable_training() before a backward pass");
  // Under Inference too: the weight gradient does not read the weight.
  const auto fn = ctx.precision == Precision::Inference ? ctx.kernels.gemm : gemm(ctx);
  fn({out(), in(), T, dy, out(), true, x, in(), false, w_->grad, in(), true}, ctx.pool);
  if (b_) {
    DSV3_CHECK(b_->grad, "Linear: " + b_->name() + " has no gradient");
    for (int64_t t = 0; t < T; ++t) ctx.kernels.axpy(b_->grad, 1.0f, dy + t * out(), out());
  }
}

}  // namespace dsv3

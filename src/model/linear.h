// Every projection of the model goes through Linear: the one place where the precision policy, the
// input kept for the weight gradient and the three GEMMs of a Linear live (SPEC §3.1: Fprop, Dgrad
// and Wgrad are what the FP8 recipe quantizes; this file is its swap point).
//   forward          Y  = X·Wᵀ (+ b)     Fprop
//   backward_input   dX = dY·W           Dgrad
//   backward_weight  dW += dYᵀ·X, db += Σ_t dY   Wgrad (X: the input the caller kept)
// Precision (ComputeContext::precision, model.h):
//   Inference  Fprop and Dgrad through kernels.matmul / matmul_xw on the weight as stored
//              (F32/BF16/F16, FP8 blocks dequantised on the fly), FP32 activations and sums; rows
//              independent of the batch. Wgrad through kernels.gemm (FP32).
//   F32        all three GEMMs through kernels.gemm on the FP32 master weight.
//   BF16       all three through kernels.gemm_bf16: X, W and dY rounded to BF16 as each GEMM reads
//              them, products exact, sums FP32, outputs FP32. The backward is the gradient of the
//              forward computed (of bf16(X)·bf16(W)ᵀ: dX = bf16(dY)·bf16(W), dW +=
//              bf16(dY)ᵀ·bf16(X)), with dY rounded as well. Linears built with `fp32` (the MoE
//              gate, SPEC §3.1: its scores pick the experts) use F32 instead. The LM heads follow
//              the precision: V3 keeps its output head in BF16 (SPEC §3.1 keeps it out of FP8
//              only), and at a 16K vocabulary the head is half of the model's multiply-adds; the
//              logits and the loss stay FP32.
#pragma once
#include <cstdint>
#include <string>

#include "model/model.h"
#include "model/param_store.h"

namespace dsv3 {

// "f32" / "bf16" (the training precisions, as flags and configs spell them); throws Error for
// anything else.
Precision parse_train_precision(const std::string& s);
const char* precision_name(Precision p);  // "inference", "f32", "bf16"

class Linear {
 public:
  Linear() = default;
  // w: [out, in]; bias: [out] or null; fp32: F32 GEMMs whatever the context's precision.
  explicit Linear(const Param& w, const Param* bias = nullptr, bool fp32 = false)
      : w_(&w), b_(bias), fp32_(fp32) {}
  int64_t in() const { return w_->value.cols; }
  int64_t out() const { return w_->value.rows; }
  const Param& weight() const { return *w_; }

  // y [T, out] = x [T, in] · Wᵀ (+ b).
  void forward(ComputeContext ctx, const float* x, int64_t T, float* y) const;
  // dx [T, in] = dy [T, out] · W (overwrites dx).
  void backward_input(ComputeContext ctx, const float* dy, int64_t T, float* dx) const;
  // W.grad += dyᵀ · x, b.grad += Σ_t dy (x: the forward's input [T, in]).
  void backward_weight(ComputeContext ctx, const float* dy, const float* x, int64_t T) const;

 private:
  using GemmFn = void (*)(const GemmArgs&, ThreadPool&);
  // The training GEMM for ctx, after checking the weight is the FP32 master.
  GemmFn gemm(ComputeContext ctx) const;

  const Param* w_ = nullptr;
  const Param* b_ = nullptr;
  bool fp32_ = false;
};

}  // namespace dsv3

// Every projection of the model goes through Linear: the one place where the precision policy, the
// input kept for the weight gradient and the three GEMMs of a Linear live (SPEC §3.1: Fprop, Dgrad
// and Wgrad are what the FP8 recipe quantizes; this file is its swap point).
//   forward          Y  = X·Wᵀ (+ b)     Fprop
//   backward_input   dX = dY·W           Dgrad
//   backward_weight  dW += dYᵀ·X, db += Σ_t dY   Wgrad (X: the input the caller kept)
// Precision now: the weight as stored (F32/BF16/F16, FP8 blocks dequantised on the fly), FP32
// activations and accumulation.
#pragma once
#include <cstdint>

#include "model/model.h"
#include "model/param_store.h"

namespace dsv3 {

class Linear {
 public:
  Linear() = default;
  // w: [out, in]; bias: [out] or null.
  explicit Linear(const Param& w, const Param* bias = nullptr) : w_(&w), b_(bias) {}
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
  const Param* w_ = nullptr;
  const Param* b_ = nullptr;
};

}  // namespace dsv3

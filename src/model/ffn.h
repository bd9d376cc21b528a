// SwiGLU feed-forward: down(SiLU(gate(x)) ⊙ up(x)), no biases (SPEC §1.6). Dense layers, shared
// experts and routed experts all use it.
#pragma once
#include <string>
#include <vector>

#include "model/linear.h"

namespace dsv3 {

// Activations of one call, kept for a backward pass: [T, inter] each.
struct FfnActs {
  std::vector<float> gate;  // gate_proj(x), the SwiGLU pre-activation
  std::vector<float> up;    // up_proj(x)
  std::vector<float> act;   // SiLU(gate) ⊙ up: down_proj's input
};

// Scratch of a backward call, reused across calls (grown to the largest T seen).
struct FfnGrads {
  std::vector<float> dact, dgate, dup;  // [T, inter]
  std::vector<float> dx_up;             // [T, hidden] up_proj's share of dx
};

class SwiGlu {
 public:
  // prefix: "model.layers.0.mlp." (gate_proj, up_proj, down_proj .weight).
  SwiGlu(const ParamStore& ps, const std::string& prefix, int64_t hidden, int64_t inter);
  int64_t inter() const { return gate_.out(); }
  // out [T, hidden] = FFN(x [T, hidden]); a's buffers hold at least T rows from `row0` on.
  void forward(ComputeContext ctx, const float* x, int64_t T, FfnActs& a, int64_t row0,
               float* out) const;
  // The backward of forward() over the same x and a (rows from row0): accumulates the three
  // weight gradients and writes dx [T, hidden] = dL/dx for dout [T, hidden] = dL/dout.
  void backward(ComputeContext ctx, const float* x, int64_t T, const FfnActs& a, int64_t row0,
                const float* dout, FfnGrads& g, float* dx) const;
  // Sizes a's buffers for T rows.
  void reserve(FfnActs& a, int64_t T) const;

 private:
  Linear gate_, up_, down_;
};

}  // namespace dsv3

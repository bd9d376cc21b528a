// SwiGLU feed-forward: down(SiLU(gate(x)) ⊙ up(x)), no biases (SPEC §1.6). Dense layers, shared
// experts and routed experts all use it.
#pragma once
#include <string>
#include <vector>

#include "model/model.h"

namespace dsv3 {

// Activations of one call, kept for a backward pass: [T, inter] each.
struct FfnActs {
  std::vector<float> gate;  // gate_proj(x), then SiLU(gate) ⊙ up in place
  std::vector<float> up;    // up_proj(x)
};

class SwiGlu {
 public:
  // prefix: "model.layers.0.mlp." (reads gate_proj, up_proj, down_proj .weight).
  SwiGlu(const ModelWeights& w, const std::string& prefix, int64_t hidden, int64_t inter);
  // out [T, hidden] = FFN(x [T, hidden]).
  void forward(ComputeContext ctx, const float* x, int64_t T, FfnActs& a, float* out) const;

 private:
  int64_t inter_;
  WeightRef gate_, up_, down_;
};

}  // namespace dsv3

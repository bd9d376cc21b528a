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
  // Under the FP8 recipe, the Linears' inputs as their Fprops quantized them (1x128 E4M3 tiles,
  // TR §3.3.3), which their Wgrads read: x (gate_proj's and up_proj's, the same codes) and act
  // (down_proj's). `act` is then needed only during the forward, and x only by the caller's
  // other readers: a stack keeping every layer's activations frees what nothing else reads after
  // each layer (DecoderLayer::release_cached).
  Fp8Tiles x_fp8, act_fp8;
};

// Scratch of a backward call, reused across calls (grown to the largest T seen).
struct FfnGrads {
  std::vector<float> dact, dgate, dup;  // [T, inter]
  std::vector<float> dx_up;             // [T, hidden] up_proj's share of dx
};

class SwiGlu;
// One forward of SwiGlu::forward_batch: ffn->forward(ctx, x, T, *acts, row0, out).
struct SwiGluCall {
  const SwiGlu* ffn;
  const float* x;
  int64_t T;
  FfnActs* acts;
  int64_t row0;
  float* out;
};

class SwiGlu {
 public:
  // prefix: "model.layers.0.mlp." (gate_proj, up_proj, down_proj .weight).
  SwiGlu(const ParamStore& ps, const std::string& prefix, int64_t hidden, int64_t inter);
  int64_t inter() const { return gate_.out(); }
  // out [T, hidden] = FFN(x [T, hidden]); a's buffers hold at least T rows from `row0` on.
  void forward(ComputeContext ctx, const float* x, int64_t T, FfnActs& a, int64_t row0,
               float* out) const;
  // The calls' forwards, each as forward() computes it; at inference, every gate and up
  // projection in one Kernels::matmul_batch and every down projection in another (a MoE layer's
  // experts at decode are many small matrices: one hand-off each instead of three per expert).
  static void forward_batch(ComputeContext ctx, const std::vector<SwiGluCall>& calls);
  // The backward of forward() over the same x and a (rows from row0): accumulates the three
  // weight gradients and writes dx [T, hidden] = dL/dx for dout [T, hidden] = dL/dout. x is not
  // read when keeps_input(a).
  void backward(ComputeContext ctx, const float* x, int64_t T, const FfnActs& a, int64_t row0,
                const float* dout, FfnGrads& g, float* dx) const;
  // Sizes a's buffers for T rows.
  void reserve(FfnActs& a, int64_t T) const;
  // Frees a.act when the forward kept down_proj's input in a.act_fp8 (nothing reads it later).
  static void release_cached(FfnActs& a);
  // Whether the forward kept x in a.x_fp8: backward() then reads no x (the caller may free it).
  static bool keeps_input(const FfnActs& a) { return !a.x_fp8.q.empty(); }

 private:
  Linear gate_, up_, down_;
};

}  // namespace dsv3

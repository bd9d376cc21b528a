// DeepSeekMoE: h' = Σ shared FFN_s(u) + Σ over selected i of g_i FFN_i(u) (SPEC §1.6, TR Eq.12-16;
// the residual u is added by the decoder layer), as four steps: route -> dispatch plan (counts and
// permutation) -> grouped expert compute (an expert's tokens contiguous, one GEMM per expert) ->
// combine. The dispatcher is the seam for expert parallelism.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "model/ffn.h"
#include "model/moe_dispatch.h"
#include "model/moe_router.h"

namespace dsv3 {

// Activations of one call, kept for a backward pass.
struct MoeActs {
  std::vector<float> scores;      // [T, E] router scores s (SPEC §1.6 step 1)
  std::vector<int32_t> experts;   // [T, K] selected experts
  std::vector<float> weights;     // [T, K] g_i
  DispatchPlan plan;              // grouping by expert; plan.counts = this call's expert load
  MoeExchange exchange;           // the rows this process computes (dispatcher's output)
  std::vector<float> grouped;     // [rows, d] expert inputs, grouped by expert (T * K local)
  FfnActs routed;                 // [T * K, moe_inter] in grouped order
  std::vector<float> routed_out;  // [rows, d] expert outputs, grouped
  FfnActs shared;                 // shared experts: one SwiGLU of width n_shared * moe_inter
  // [T, E] or empty: the gradient of auxiliary losses (train/balance.h) with respect to the
  // scores s, set by the trainer between forward and backward and added by Moe::backward.
  std::vector<float> dscores_aux;
};

// Scratch of a backward call, reused across calls.
struct MoeGrads {
  std::vector<float> dy;        // [rows, d] dL/d(expert outputs), grouped
  std::vector<float> dgrouped;  // [rows, d] dL/d(expert inputs), grouped
  std::vector<float> dweights;  // [T, K] dL/dg
  std::vector<float> dlogits;   // [T, E] dL/d(W_g u)
  std::vector<float> dx_gate;   // [T, d]
  FfnGrads ffn;
};

class Moe {
 public:
  // prefix: "model.layers.3.mlp."
  Moe(const ModelConfig& c, const ParamStore& ps, const std::string& prefix);
  void forward(ComputeContext ctx, MoeDispatcher& dispatcher, const float* x, int64_t T, MoeActs& a,
               float* out) const;
  // The backward of forward() over the same x and a: accumulates the gate's, routed and shared
  // experts' weight gradients (none to the correction bias) and writes dx [T, d] for dout [T, d].
  // Adds a.dscores_aux (auxiliary losses' dL/ds) when set.
  void backward(ComputeContext ctx, MoeDispatcher& dispatcher, const float* x, int64_t T,
                const MoeActs& a, const float* dout, MoeGrads& g, float* dx) const;
  const RouterSpec& router() const { return router_; }

 private:
  int64_t hidden_;
  RouterSpec router_;
  Linear gate_;  // stays out of FP8 (TR §3.1), computed in FP32
  const Param* bias_ = nullptr;
  std::vector<SwiGlu> experts_;
  std::optional<SwiGlu> shared_;
};

}  // namespace dsv3

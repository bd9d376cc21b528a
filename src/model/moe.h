// DeepSeekMoE: h' = sum over shared experts FFN_s(u) + sum over selected i of g_i FFN_i(u)
// (SPEC §1.6, TR Eq.12-16; the residual u is added by the decoder layer). Tokens are gathered per
// expert so each expert runs one matmul over its tokens.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "model/ffn.h"
#include "model/moe_router.h"

namespace dsv3 {

struct MoeActs {
  std::vector<float> scores;      // [T, E] router scores s (SPEC §1.6 step 1)
  std::vector<int32_t> experts;   // [T, top_k] selected experts
  std::vector<float> weights;     // [T, top_k] g_i
  FfnActs shared;                 // shared experts, one SwiGLU of width n_shared * moe_inter
  std::vector<float> shared_out;  // [T, d]
  std::vector<float> expert_in, expert_out;  // [tokens of one expert, d], reused per expert
  FfnActs expert;                            // reused per expert
};

class Moe {
 public:
  // prefix: "model.layers.3.mlp."
  Moe(const ModelConfig& c, const ModelWeights& w, const std::string& prefix);
  void forward(ComputeContext ctx, const float* x, int64_t T, MoeActs& a, float* out) const;

 private:
  int64_t hidden_;
  RouterSpec router_;
  WeightRef gate_;
  std::vector<float> bias_;  // e_score_correction_bias (noaux_tc), empty otherwise
  std::vector<SwiGlu> experts_;
  std::optional<SwiGlu> shared_;
};

}  // namespace dsv3

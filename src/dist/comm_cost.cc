// The per-rank communication model: see comm_cost.h.
#include "dist/comm_cost.h"

#include <algorithm>
#include <vector>

#include "base/error.h"
#include "model/param_table.h"

namespace dsv3 {

double remote_ranks_per_token(const ModelConfig& c, int ep) {
  // A given other rank holds none of the K experts: C(E - E/ep, K) / C(E, K).
  const int64_t E = c.n_routed_experts, K = c.num_experts_per_tok, held = E / std::max(ep, 1);
  if (ep <= 1 || K == 0) return 0;
  double none = 1;
  for (int64_t i = 0; i < K; ++i)
    none *= static_cast<double>(E - held - i) / static_cast<double>(E - i);
  return (ep - 1) * (1 - std::max(none, 0.0));
}

RankTraffic busiest_rank_traffic(const ModelConfig& c, const ParallelPlan& p) {
  DSV3_CHECK(p.ranks >= 1 && p.pp >= 1 && p.ep >= 1 && p.ranks % p.pp == 0,
             "comm cost: " + std::to_string(p.ranks) + " ranks do not split into pp " +
                 std::to_string(p.pp));
  const int dp = p.ranks / p.pp;
  DSV3_CHECK(dp % p.ep == 0,
             "comm cost: ep " + std::to_string(p.ep) + " does not divide dp " + std::to_string(dp));
  DSV3_CHECK(c.n_routed_experts == 0 || c.n_routed_experts % p.ep == 0,
             "comm cost: " + std::to_string(c.n_routed_experts) + " experts over ep " +
                 std::to_string(p.ep));
  DSV3_CHECK(!p.dualpipe || p.pp % 2 == 0, "comm cost: dualpipe needs an even pp");
  const int64_t L = c.num_hidden_layers;
  auto stage_of = [&](const ParamSpec& s) -> int {
    if (s.group == ParamGroup::Mtp || s.layer >= L) return p.pp - 1;
    if (s.layer < 0) return s.name.find("embed") != std::string::npos ? 0 : p.pp - 1;
    return static_cast<int>(s.layer * p.pp / L);
  };
  std::vector<double> dense(static_cast<size_t>(p.pp), 0), expert(dense);
  std::vector<int64_t> moe(static_cast<size_t>(p.pp), 0);
  for (const ParamSpec& s : param_table(c)) {
    if (!s.copy_of.empty()) continue;  // MTP's copies of the embedding and head: one state
    double n = 1;
    for (int64_t x : s.shape) n *= static_cast<double>(x);
    (s.expert >= 0 ? expert : dense)[static_cast<size_t>(stage_of(s))] += n;
    // One MoE layer per gate.
    if (s.name.ends_with("mlp.gate.weight")) ++moe[static_cast<size_t>(stage_of(s))];
  }
  const double rep = static_cast<double>(dp / p.ep);  // replicas of each expert
  RankTraffic best;
  for (int r = 0; r < (p.dualpipe ? p.pp / 2 : p.pp); ++r) {
    std::vector<int> stages{r};
    if (p.dualpipe) stages.push_back(p.pp - 1 - r);
    RankTraffic t;
    // Each stage a rank holds sees the tokens of the micro-batches that pass it on this rank:
    // all of its DP group's, or half of them under DualPipe (the other half pass its mirror).
    t.tokens = static_cast<double>(p.global_tokens) / dp / static_cast<double>(stages.size());
    for (int s : stages) {
      t.dense_params += dense[static_cast<size_t>(s)];
      t.expert_params += expert[static_cast<size_t>(s)] / p.ep;
      t.moe_layers += moe[static_cast<size_t>(s)];
    }
    const double d = static_cast<double>(c.hidden_size),
                 k = static_cast<double>(c.num_experts_per_tok);
    t.dp_bytes = p.dp_passes * p.grad_bytes *
                 (t.dense_params * (dp - 1) / dp + t.expert_params * (rep - 1) / rep);
    // As MpiExpertDispatcher sends: a token's row once to each other rank holding one of its
    // experts (dispatch, and the output gradient in the backward of combine); a slot's row back
    // (combine, and the backward of dispatch) and 3 words (index, weight, its gradient) for each
    // of its K slots whose expert is elsewhere, the fraction (ep-1)/ep.
    t.ep_bytes = t.tokens * static_cast<double>(t.moe_layers) *
                 (remote_ranks_per_token(c, p.ep) * d * (p.dispatch_bytes + p.act_bytes) +
                  k * (p.ep - 1) / p.ep * (d * (p.combine_bytes + p.act_bytes) + 12));
    // Activations forward and their gradients backward, across each held stage's boundary.
    t.pp_bytes = p.pp > 1 ? t.tokens * static_cast<double>(stages.size()) * d * 2 * p.act_bytes : 0;
    if (t.dense_params + t.expert_params > best.dense_params + best.expert_params) best = t;
  }
  return best;
}

}  // namespace dsv3

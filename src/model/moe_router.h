// The MoE gate: which experts each token goes to and with what weight (SPEC §1.6).
//   noaux_tc (V3): s = sigmoid(logits); choice = s + bias (selection only); groups ranked by the
//   sum
//                  of their top-2 choices, the best topk_group kept; top-k of the kept choices.
//   greedy (V2-Lite): s = softmax(logits), top-k of s.
//   group_limited_greedy (V2): groups ranked by their max s; top-k within the kept groups.
// Weights g_i = s_i (never the bias), divided by their sum when norm_topk_prob (and k > 1), then
// times routed_scaling_factor. dsv3 always applies the scale (HF V3 and the official repo); every
// released V2 config with norm_topk_prob false scales once as HF V2 does, so they agree.
#pragma once
#include <cstdint>

#include "kernels/kernels.h"
#include "model/config.h"

namespace dsv3 {

struct RouterSpec {
  enum class Method { Greedy, GroupLimitedGreedy, NoauxTc };
  Method method = Method::NoauxTc;
  bool sigmoid = true;  // scoring_func: sigmoid, else softmax
  int64_t n_experts = 0, top_k = 0, n_group = 1, topk_group = 1;
  bool norm_topk_prob = true;
  float scaling = 1.0f;
};

// Validates the routing fields of `c` (names the field on error).
RouterSpec router_spec(const ModelConfig& c);

// Node-limited routing (SPEC §2, TR §2.1.2): the routed experts as `nodes` equal groups (node g
// holds experts [g·E/nodes, (g+1)·E/nodes), as expert-parallel rank g does) and each token's
// experts on at most `keep` of them, the nodes ranked by the group gate above (noaux_tc: the sum
// of a node's two largest biased scores, V3's K_r/M = 8/4). Sets c.n_group and c.topk_group;
// Error when c cannot route that way (greedy routing, nodes not dividing the experts, ...).
void limit_routing_to_nodes(ModelConfig& c, int64_t nodes, int64_t keep);

// scores [T, E]: in, the gate logits W_g u (FP32); out, the scores s. bias [E] or null (noaux_tc).
// experts [T, top_k] and weights [T, top_k], in the order the top-k picked them.
void route_tokens(const RouterSpec& r, const Kernels& k, float* scores, const float* bias,
                  int64_t T, int32_t* experts, float* weights);

// The backward of route_tokens' gate weights and scoring function: from dweights [T, top_k] =
// dL/dg (in route_tokens' order) and dscores_aux [T, E] (extra dL/ds from auxiliary losses, or
// null), writes dlogits [T, E] = dL/d(W_g u). scores are route_tokens' output s. The bias and the
// choice of experts get no gradient (SPEC §1.6 step 2, §2).
void route_tokens_backward(const RouterSpec& r, const float* scores, const int32_t* experts,
                           const float* dweights, const float* dscores_aux, int64_t T,
                           float* dlogits);

}  // namespace dsv3

// MoE routing (SPEC §1.6; HF MoEGate of deepseek_v2 / deepseek_v3).
#include "model/moe_router.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "base/error.h"

namespace dsv3 {

RouterSpec router_spec(const ModelConfig& c) {
  RouterSpec r;
  if (c.topk_method == "noaux_tc") {
    r.method = RouterSpec::Method::NoauxTc;
  } else if (c.topk_method == "greedy") {
    r.method = RouterSpec::Method::Greedy;
  } else if (c.topk_method == "group_limited_greedy") {
    r.method = RouterSpec::Method::GroupLimitedGreedy;
  } else {
    throw Error("config.json: topk_method '" + c.topk_method + "' is not supported",
                "use noaux_tc, greedy or group_limited_greedy");
  }
  DSV3_CHECK(c.scoring_func == "sigmoid" || c.scoring_func == "softmax",
             "config.json: scoring_func '" + c.scoring_func + "' is not supported",
             "use sigmoid or softmax");
  r.sigmoid = c.scoring_func == "sigmoid";
  r.n_experts = c.n_routed_experts;
  r.top_k = c.num_experts_per_tok;
  r.n_group = r.method == RouterSpec::Method::Greedy ? 1 : c.n_group;
  r.topk_group = r.method == RouterSpec::Method::Greedy ? 1 : c.topk_group;
  r.norm_topk_prob = c.norm_topk_prob;
  r.scaling = static_cast<float>(c.routed_scaling_factor);
  DSV3_CHECK(r.n_group >= 1 && r.n_experts % r.n_group == 0,
             "config.json: n_group must divide n_routed_experts");
  DSV3_CHECK(r.topk_group >= 1 && r.topk_group <= r.n_group,
             "config.json: topk_group must be in 1 .. n_group");
  DSV3_CHECK(r.top_k >= 1 && r.top_k <= r.topk_group * (r.n_experts / r.n_group),
             "config.json: num_experts_per_tok must be in 1 .. topk_group * experts per group");
  DSV3_CHECK(r.method != RouterSpec::Method::NoauxTc || r.n_experts / r.n_group >= 2,
             "config.json: noaux_tc needs at least 2 experts per group (group score = top-2 sum)");
  return r;
}

void limit_routing_to_nodes(ModelConfig& c, int64_t nodes, int64_t keep) {
  const std::string what = "node-limited routing over " + std::to_string(nodes) + " nodes, " +
                           std::to_string(keep) + " a token";
  DSV3_CHECK(c.topk_method == "noaux_tc" || c.topk_method == "group_limited_greedy",
             what + ": the model routes by '" + c.topk_method + "', which has no groups",
             "node-limited routing needs topk_method noaux_tc or group_limited_greedy");
  DSV3_CHECK(nodes >= 1 && c.n_routed_experts % nodes == 0 && keep >= 1 && keep <= nodes,
             what + ": needs 1 <= keep <= nodes and nodes dividing the " +
                 std::to_string(c.n_routed_experts) + " routed experts");
  const int64_t per = c.n_routed_experts / nodes;
  DSV3_CHECK(
      c.topk_method != "noaux_tc" || per >= 2,
      what + ": a node's score sums its 2 best experts, but a node holds " + std::to_string(per),
      "use fewer nodes (expert-parallel ranks)");
  DSV3_CHECK(c.num_experts_per_tok <= keep * per,
             what + ": " + std::to_string(c.num_experts_per_tok) +
                 " experts a token do not fit on " + std::to_string(keep) + " nodes of " +
                 std::to_string(per),
             "allow more nodes a token");
  c.n_group = nodes;
  c.topk_group = keep;
}

void route_tokens(const RouterSpec& r, const Kernels& k, float* scores, const float* bias,
                  int64_t T, int32_t* experts, float* weights) {
  const int64_t E = r.n_experts, per_group = E / r.n_group;
  if (r.sigmoid) {
    k.sigmoid(scores, T * E);
  } else {
    k.softmax(scores, T, E);
  }
  std::vector<float> choice(E), group_score(r.n_group);
  std::vector<int32_t> top(std::max<int64_t>(2, r.topk_group));
  for (int64_t t = 0; t < T; ++t) {
    const float* s = scores + t * E;
    for (int64_t e = 0; e < E; ++e) choice[e] = s[e] + (bias ? bias[e] : 0.0f);  // step 2
    if (r.n_group > 1) {  // step 3: node-limited routing
      for (int64_t g = 0; g < r.n_group; ++g) {
        const float* cg = choice.data() + g * per_group;
        if (r.method == RouterSpec::Method::NoauxTc) {
          k.topk(top.data(), cg, per_group, 2);
          group_score[g] = cg[top[0]] + cg[top[1]];
        } else {
          k.topk(top.data(), cg, per_group, 1);
          group_score[g] = cg[top[0]];
        }
      }
      k.topk(top.data(), group_score.data(), r.n_group, r.topk_group);
      std::vector<bool> keep(r.n_group, false);
      for (int64_t i = 0; i < r.topk_group; ++i) keep[top[i]] = true;
      for (int64_t e = 0; e < E; ++e)
        if (!keep[e / per_group]) choice[e] = -INFINITY;
    }
    int32_t* idx = experts + t * r.top_k;
    float* w = weights + t * r.top_k;
    k.topk(idx, choice.data(), E, r.top_k);  // step 4
    double sum = 0;
    for (int64_t i = 0; i < r.top_k; ++i) sum += (w[i] = s[idx[i]]);  // step 5: unbiased s
    const double norm = r.norm_topk_prob && r.top_k > 1 ? 1.0 / (sum + 1e-20) : 1.0;
    for (int64_t i = 0; i < r.top_k; ++i) w[i] = static_cast<float>(w[i] * norm * r.scaling);
  }
}

void route_tokens_backward(const RouterSpec& r, const float* scores, const int32_t* experts,
                           const float* dweights, const float* dscores_aux, int64_t T,
                           float* dlogits) {
  const int64_t E = r.n_experts, K = r.top_k;
  const bool norm = r.norm_topk_prob && K > 1;
  std::vector<double> ds(E);
  for (int64_t t = 0; t < T; ++t) {
    const float* s = scores + t * E;
    const int32_t* idx = experts + t * K;
    const float* dg = dweights + t * K;
    for (int64_t e = 0; e < E; ++e) ds[e] = dscores_aux ? dscores_aux[t * E + e] : 0.0;
    // g_j = scaling * s_j / (S + 1e-20), S = the sum of the selected s (or g_j = scaling * s_j).
    double S = 0, dot = 0;
    for (int64_t j = 0; j < K; ++j) {
      S += s[idx[j]];
      dot += static_cast<double>(dg[j]) * s[idx[j]];
    }
    const double inv = norm ? 1.0 / (S + 1e-20) : 1.0;
    for (int64_t j = 0; j < K; ++j)
      ds[idx[j]] += r.scaling * inv * (dg[j] - (norm ? dot * inv : 0.0));
    float* dl = dlogits + t * E;
    if (r.sigmoid) {
      for (int64_t e = 0; e < E; ++e) dl[e] = static_cast<float>(ds[e] * s[e] * (1.0 - s[e]));
    } else {  // softmax: dl_e = s_e (ds_e - Σ_f s_f ds_f)
      double sd = 0;
      for (int64_t e = 0; e < E; ++e) sd += s[e] * ds[e];
      for (int64_t e = 0; e < E; ++e) dl[e] = static_cast<float>(s[e] * (ds[e] - sd));
    }
  }
}

}  // namespace dsv3

// MoE routing against an independent brute force (full sorts, written from SPEC §1.6) on 10,000
// random tokens per router type; node-limited routing (SPEC §2) against tests/ref/router_ref.py's
// float64 torch rule (golden/router_cases.json).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "base/rng.h"
#include "model/moe_router.h"
#include "model/presets.h"

namespace dsv3 {
namespace {

constexpr int64_t kTokens = 10000;

struct Brute {
  std::vector<int32_t> idx;  // sorted ascending
  std::vector<double> w;     // weights in the order of idx
};

// Sorted-order helper: indices of v by descending value, ties to the lower index.
std::vector<int32_t> by_value(const std::vector<double>& v) {
  std::vector<int32_t> o(v.size());
  std::iota(o.begin(), o.end(), 0);
  std::stable_sort(o.begin(), o.end(), [&](int32_t a, int32_t b) { return v[a] > v[b]; });
  return o;
}

Brute brute_route(const RouterSpec& r, const float* logits, const float* bias) {
  const int64_t E = r.n_experts, per = E / r.n_group;
  std::vector<double> s(E), choice(E);
  if (r.sigmoid) {
    for (int64_t e = 0; e < E; ++e) s[e] = 1.0 / (1.0 + std::exp(-double(logits[e])));
  } else {
    double m = *std::max_element(logits, logits + E), z = 0;
    for (int64_t e = 0; e < E; ++e) z += std::exp(logits[e] - m);
    for (int64_t e = 0; e < E; ++e) s[e] = std::exp(logits[e] - m) / z;
  }
  for (int64_t e = 0; e < E; ++e)
    choice[e] = float(float(s[e]) + (bias ? bias[e] : 0.0f));  // as computed in FP32
  std::vector<bool> allowed(E, true);
  if (r.n_group > 1) {
    std::vector<double> gs(r.n_group);
    for (int64_t g = 0; g < r.n_group; ++g) {
      std::vector<double> grp(choice.begin() + g * per, choice.begin() + (g + 1) * per);
      std::sort(grp.rbegin(), grp.rend());
      gs[g] = r.method == RouterSpec::Method::NoauxTc ? grp[0] + grp[1] : grp[0];
    }
    auto order = by_value(gs);
    std::vector<bool> keep(r.n_group, false);
    for (int64_t i = 0; i < r.topk_group; ++i) keep[order[i]] = true;
    for (int64_t e = 0; e < E; ++e) allowed[e] = keep[e / per];
  }
  std::vector<double> masked(E);
  for (int64_t e = 0; e < E; ++e) masked[e] = allowed[e] ? choice[e] : -INFINITY;
  auto order = by_value(masked);
  Brute b;
  b.idx.assign(order.begin(), order.begin() + r.top_k);
  std::sort(b.idx.begin(), b.idx.end());
  double sum = 0;
  for (int32_t e : b.idx) sum += s[e];
  for (int32_t e : b.idx)
    b.w.push_back(s[e] / (r.norm_topk_prob && r.top_k > 1 ? sum : 1.0) * r.scaling);
  return b;
}

struct Routed {
  std::vector<int32_t> idx;
  std::vector<float> w;
};

Routed run(const RouterSpec& r, const std::vector<float>& logits, const float* bias) {
  std::vector<float> scores = logits;
  Routed out;
  out.idx.resize(kTokens * r.top_k);
  out.w.resize(kTokens * r.top_k);
  route_tokens(r, ref_kernels(), scores.data(), bias, kTokens, out.idx.data(), out.w.data());
  return out;
}

std::vector<float> random_logits(int64_t E, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(kTokens * E);
  for (auto& x : v) x = static_cast<float>(rng.normal(0, 2.0));
  return v;
}

// Compares with the brute force token by token; returns how many tokens chose differently than
// `other` (if given).
int64_t check_against_brute(const RouterSpec& r, const std::vector<float>& logits,
                            const float* bias, const Routed& got, const Routed* other = nullptr) {
  const int64_t E = r.n_experts, K = r.top_k;
  int64_t differing = 0;
  for (int64_t t = 0; t < kTokens; ++t) {
    Brute b = brute_route(r, logits.data() + t * E, bias);
    std::vector<std::pair<int32_t, float>> pairs;
    for (int64_t j = 0; j < K; ++j) pairs.push_back({got.idx[t * K + j], got.w[t * K + j]});
    std::sort(pairs.begin(), pairs.end());
    double wsum = 0;
    for (int64_t j = 0; j < K; ++j) {
      EXPECT_EQ(pairs[j].first, b.idx[j]) << "token " << t;
      // Weights: float32 scores and one division: 1e-6 relative.
      EXPECT_NEAR(pairs[j].second, b.w[j], 1e-6 * r.scaling) << "token " << t;
      wsum += pairs[j].second;
    }
    if (r.norm_topk_prob) {
      EXPECT_NEAR(wsum, r.scaling, 1e-5) << "token " << t;
    }
    if (other) {
      std::vector<int32_t> a(got.idx.begin() + t * K, got.idx.begin() + (t + 1) * K);
      std::vector<int32_t> o(other->idx.begin() + t * K, other->idx.begin() + (t + 1) * K);
      if (a != o) {
        ++differing;
      } else {  // the bias changed nothing here, so the weights are the same bits
        for (int64_t j = 0; j < K; ++j) EXPECT_EQ(got.w[t * K + j], other->w[t * K + j]);
      }
    }
    if (::testing::Test::HasFailure()) break;
  }
  return differing;
}

RouterSpec v3_router() {
  RouterSpec r;  // DeepSeek-V3: 256 experts, 8 groups keep 4, top-8, sigmoid, scale 2.5
  r.method = RouterSpec::Method::NoauxTc;
  r.sigmoid = true;
  r.n_experts = 256;
  r.top_k = 8;
  r.n_group = 8;
  r.topk_group = 4;
  r.norm_topk_prob = true;
  r.scaling = 2.5f;
  return r;
}

TEST(Router, NoauxTcMatchesBruteForceAndBiasOnlySelects) {
  const RouterSpec r = v3_router();
  const auto logits = random_logits(r.n_experts, 1);
  Rng rng(2);
  std::vector<float> bias(r.n_experts);
  for (auto& b : bias) b = static_cast<float>(rng.normal(0, 0.1));
  const Routed plain = run(r, logits, nullptr);
  const Routed biased = run(r, logits, bias.data());
  check_against_brute(r, logits, nullptr, plain);
  const int64_t differing = check_against_brute(r, logits, bias.data(), biased, &plain);
  EXPECT_GT(differing, kTokens / 10) << "the bias should change many selections";
}

TEST(Router, V2GreedyAndGroupLimitedGreedyMatchBruteForce) {
  RouterSpec r;  // V2-Lite: softmax, greedy top-6 of 64, no renormalisation, scale 1
  r.method = RouterSpec::Method::Greedy;
  r.sigmoid = false;
  r.n_experts = 64;
  r.top_k = 6;
  r.norm_topk_prob = false;
  r.scaling = 1.0f;
  auto logits = random_logits(r.n_experts, 3);
  check_against_brute(r, logits, nullptr, run(r, logits, nullptr));
  // V2: group score = max, 8 groups keep 3, scale 16.
  r.method = RouterSpec::Method::GroupLimitedGreedy;
  r.n_experts = 160;
  r.n_group = 8;
  r.topk_group = 3;
  r.scaling = 16.0f;
  logits = random_logits(r.n_experts, 4);
  check_against_brute(r, logits, nullptr, run(r, logits, nullptr));
}

TEST(Router, SpecFromConfigValidates) {
  ModelConfig c;
  c.n_routed_experts = 8;
  c.num_experts_per_tok = 2;
  c.n_group = 3;  // does not divide 8
  c.topk_group = 1;
  EXPECT_THROW(router_spec(c), Error);
  c.n_group = 4;
  c.topk_method = "sorted";
  EXPECT_THROW(router_spec(c), Error);
  c.topk_method = "noaux_tc";
  EXPECT_EQ(router_spec(c).n_group, 4);
}

// limit_routing_to_nodes over 2, 4 and 8 nodes (expert-parallel ranks), 1 or 2 a token, routes as
// the torch rule: the same experts (the golden holds each token's sorted), the weights within
// 1e-6 relative (FP32 scores against float64), and never more than `keep` nodes a token.
TEST(Router, NodeLimitedMatchesTorchReference) {
  const std::string path = std::string(DSV3_SOURCE_DIR) + "/tests/ref/golden/router_cases.json";
  const Json j = Json::parse(read_file(path), path);
  const int64_t T = j.at("tokens").as_int(), K = j.at("top_k").as_int();
  for (const Json& cs : j.at("cases").as_array()) {
    const int64_t nodes = cs.at("nodes").as_int(), keep = cs.at("keep").as_int();
    SCOPED_TRACE("nodes " + std::to_string(nodes) + ", keep " + std::to_string(keep));
    ModelConfig c = preset_config("tiny");
    ASSERT_EQ(c.n_routed_experts, j.at("experts").as_int());
    ASSERT_EQ(c.num_experts_per_tok, K);
    ASSERT_EQ(c.routed_scaling_factor, j.at("scale").as_double());
    limit_routing_to_nodes(c, nodes, keep);
    const RouterSpec r = router_spec(c);
    std::vector<float> scores, bias;
    for (const Json& x : cs.at("logits").as_array())
      scores.push_back(static_cast<float>(x.as_double()));
    for (const Json& x : cs.at("bias").as_array())
      bias.push_back(static_cast<float>(x.as_double()));
    std::vector<int32_t> idx(static_cast<size_t>(T * K));
    std::vector<float> w(idx.size());
    route_tokens(r, ref_kernels(), scores.data(), bias.data(), T, idx.data(), w.data());
    const Json::Array& want_idx = cs.at("experts").as_array();
    const Json::Array& want_w = cs.at("weights").as_array();
    const int64_t per = c.n_routed_experts / nodes;
    for (int64_t t = 0; t < T; ++t) {
      std::vector<std::pair<int32_t, float>> got;
      for (int64_t i = 0; i < K; ++i) got.emplace_back(idx[t * K + i], w[t * K + i]);
      std::sort(got.begin(), got.end());
      std::vector<bool> on(static_cast<size_t>(nodes), false);
      for (int64_t i = 0; i < K; ++i) {
        const auto at = static_cast<size_t>(t * K + i);
        ASSERT_EQ(got[i].first, want_idx[at].as_int()) << "token " << t;
        EXPECT_NEAR(got[i].second, want_w[at].as_double(), 1e-6 * want_w[at].as_double());
        on[static_cast<size_t>(got[i].first / per)] = true;
      }
      EXPECT_LE(std::count(on.begin(), on.end(), true), keep) << "token " << t;
    }
  }
}

TEST(Router, NodeLimitRefusesWhatCannotRoute) {
  const ModelConfig tiny = preset_config("tiny");  // 16 experts, 4 a token, noaux_tc
  for (const auto& [nodes, keep] :
       std::vector<std::pair<int64_t, int64_t>>{{3, 1},     // nodes do not divide the experts
                                                {4, 0},     // no node
                                                {4, 5},     // more nodes than there are
                                                {16, 4},    // a node's score needs 2 experts
                                                {8, 1}}) {  // 4 experts a token on 1 node of 2
    ModelConfig c = tiny;
    EXPECT_THROW(limit_routing_to_nodes(c, nodes, keep), Error) << nodes << " " << keep;
  }
  ModelConfig greedy = tiny;
  greedy.topk_method = "greedy";
  EXPECT_THROW(limit_routing_to_nodes(greedy, 4, 2), Error);
}

}  // namespace
}  // namespace dsv3

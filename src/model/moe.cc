// DeepSeekMoE forward (SPEC §1.6).
#include "model/moe.h"

#include <algorithm>

namespace dsv3 {

Moe::Moe(const ModelConfig& c, const ModelWeights& w, const std::string& prefix)
    : hidden_(c.hidden_size),
      router_(router_spec(c)),
      gate_(weight_ref(w, prefix + "gate.weight", c.n_routed_experts, c.hidden_size)) {
  if (router_.method == RouterSpec::Method::NoauxTc)
    bias_ = weight_f32(w, prefix + "gate.e_score_correction_bias", c.n_routed_experts);
  experts_.reserve(c.n_routed_experts);
  for (int64_t e = 0; e < c.n_routed_experts; ++e)
    experts_.emplace_back(w, prefix + "experts." + std::to_string(e) + ".", c.hidden_size,
                          c.moe_intermediate_size);
  if (c.n_shared_experts > 0)
    shared_.emplace(w, prefix + "shared_experts.", c.hidden_size,
                    c.n_shared_experts * c.moe_intermediate_size);
}

void Moe::forward(ComputeContext ctx, const float* x, int64_t T, MoeActs& a, float* out) const {
  const Kernels& k = ctx.kernels;
  const int64_t E = router_.n_experts, K = router_.top_k, d = hidden_;
  // The gate in FP32 (SPEC §1.6 step 1: HF casts to FP32, TR keeps gating out of FP8).
  a.scores.resize(T * E);
  a.experts.resize(T * K);
  a.weights.resize(T * K);
  k.matmul(a.scores.data(), x, gate_, T, ctx.pool);
  route_tokens(router_, k, a.scores.data(), bias_.empty() ? nullptr : bias_.data(), T,
               a.experts.data(), a.weights.data());

  if (shared_) {
    shared_->forward(ctx, x, T, a.shared, out);
  } else {
    std::fill_n(out, T * d, 0.0f);
  }
  // Tokens per expert, in token order (a deterministic sum order for each output row).
  std::vector<std::vector<int64_t>> slots(E);  // entries t * K + j
  for (int64_t i = 0; i < T * K; ++i) slots[a.experts[i]].push_back(i);
  for (int64_t e = 0; e < E; ++e) {
    const auto& s = slots[e];
    if (s.empty()) continue;
    const int64_t n = static_cast<int64_t>(s.size());
    a.expert_in.resize(n * d);
    a.expert_out.resize(n * d);
    for (int64_t i = 0; i < n; ++i) std::copy_n(x + (s[i] / K) * d, d, a.expert_in.data() + i * d);
    experts_[e].forward(ctx, a.expert_in.data(), n, a.expert, a.expert_out.data());
    for (int64_t i = 0; i < n; ++i)
      k.axpy(out + (s[i] / K) * d, a.weights[s[i]], a.expert_out.data() + i * d, d);
  }
}

}  // namespace dsv3

// DeepSeekMoE forward (SPEC §1.6).
#include "model/moe.h"

#include <algorithm>

namespace dsv3 {

Moe::Moe(const ModelConfig& c, const ParamStore& ps, const std::string& prefix)
    : hidden_(c.hidden_size),
      router_(router_spec(c)),
      gate_(ps.matrix(prefix + "gate.weight", c.n_routed_experts, c.hidden_size), nullptr,
            LinearKind::Fp32) {
  if (router_.method == RouterSpec::Method::NoauxTc)
    bias_ = &ps.vector(prefix + "gate.e_score_correction_bias", c.n_routed_experts);
  experts_.reserve(c.n_routed_experts);
  for (int64_t e = 0; e < c.n_routed_experts; ++e)
    experts_.emplace_back(ps, prefix + "experts." + std::to_string(e) + ".", c.hidden_size,
                          c.moe_intermediate_size);
  if (c.n_shared_experts > 0)
    shared_.emplace(ps, prefix + "shared_experts.", c.hidden_size,
                    c.n_shared_experts * c.moe_intermediate_size);
}

void Moe::forward(ComputeContext ctx, MoeDispatcher& dispatcher, const float* x, int64_t T,
                  MoeActs& a, float* out) const {
  const Kernels& k = ctx.kernels;
  const int64_t E = router_.n_experts, K = router_.top_k, d = hidden_;
  // 1. Route: the gate in FP32 (SPEC §1.6 step 1: HF casts to FP32).
  a.scores.resize(T * E);
  a.experts.resize(T * K);
  a.weights.resize(T * K);
  gate_.forward(ctx, x, T, a.scores.data());
  route_tokens(router_, k, a.scores.data(), bias_ ? bias_->f32 : nullptr, T, a.experts.data(),
               a.weights.data());
  // 2. Plan and dispatch.
  make_dispatch_plan(a.experts.data(), T, K, E, a.plan);
  dispatcher.dispatch(a.plan, x, d, a.exchange, a.grouped);
  const int64_t rows = a.exchange.offsets[E];
  a.routed_out.resize(rows * d);
  // 3. Grouped expert compute: expert e's rows [offsets[e], offsets[e + 1]) (none for an expert
  // another expert-parallel rank holds), and the shared experts into out, as one batch.
  if (!experts_.empty()) experts_[0].reserve(a.routed, rows);
  std::vector<SwiGluCall> calls;
  for (int64_t e = 0; e < E; ++e) {
    const int64_t r0 = a.exchange.offsets[e], n = a.exchange.counts[e];
    if (n > 0)
      calls.push_back({&experts_[e], a.grouped.data() + r0 * d, n, &a.routed, r0,
                       a.routed_out.data() + r0 * d});
  }
  if (shared_) {
    shared_->reserve(a.shared, T);
    calls.push_back({&*shared_, x, T, &a.shared, 0, out});
  } else {
    std::fill_n(out, T * d, 0.0f);
  }
  SwiGlu::forward_batch(ctx, calls);
  // 4. Combine on top of the shared experts' output.
  dispatcher.combine(a.plan, a.exchange, a.routed_out.data(), a.weights.data(), d, out);
}

void Moe::backward(ComputeContext ctx, MoeDispatcher& dispatcher, const float* x, int64_t T,
                   const MoeActs& a, const float* dout, MoeGrads& g, float* dx) const {
  const int64_t E = router_.n_experts, K = router_.top_k, d = hidden_;
  // Shared experts first: they write dx; everything else adds to it.
  if (shared_) {
    shared_->backward(ctx, x, T, a.shared, 0, dout, g.ffn, dx);
  } else {
    std::fill_n(dx, T * d, 0.0f);
  }
  // 4. Combine: dL/dy per grouped row and dL/dg per slot.
  g.dweights.resize(T * K);
  dispatcher.combine_backward(a.plan, a.exchange, dout, a.routed_out.data(), a.weights.data(), d,
                              g.dy, g.dweights.data());
  g.dgrouped.resize(a.exchange.offsets[E] * d);
  // 3. Each expert over its own rows.
  for (int64_t e = 0; e < E; ++e) {
    const int64_t r0 = a.exchange.offsets[e], n = a.exchange.counts[e];
    if (n > 0)
      experts_[e].backward(ctx, a.grouped.data() + r0 * d, n, a.routed, r0, g.dy.data() + r0 * d,
                           g.ffn, g.dgrouped.data() + r0 * d);
  }
  // 2. Dispatch: each token collects its K rows.
  dispatcher.dispatch_backward(a.plan, a.exchange, g.dgrouped.data(), d, dx);
  // 1. Route: through the normalised gate weights (and auxiliary losses) into the gate.
  g.dlogits.resize(T * E);
  g.dx_gate.resize(T * d);
  route_tokens_backward(router_, a.scores.data(), a.experts.data(), g.dweights.data(),
                        a.dscores_aux.empty() ? nullptr : a.dscores_aux.data(), T,
                        g.dlogits.data());
  gate_.backward_weight(ctx, g.dlogits.data(), x, T);
  gate_.backward_input(ctx, g.dlogits.data(), T, g.dx_gate.data());
  ctx.kernels.axpy(dx, 1.0f, g.dx_gate.data(), T * d);
}

}  // namespace dsv3

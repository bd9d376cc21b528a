// SwiGLU FFN (SPEC §1.6).
#include "model/ffn.h"

#include <algorithm>

namespace dsv3 {

SwiGlu::SwiGlu(const ParamStore& ps, const std::string& prefix, int64_t hidden, int64_t inter)
    : gate_(ps.matrix(prefix + "gate_proj.weight", inter, hidden)),
      up_(ps.matrix(prefix + "up_proj.weight", inter, hidden)),
      down_(ps.matrix(prefix + "down_proj.weight", hidden, inter)) {}

void SwiGlu::reserve(FfnActs& a, int64_t T) const {
  const auto n = static_cast<size_t>(T * inter());
  a.gate.resize(n);
  a.up.resize(n);
  a.act.resize(n);
}

void SwiGlu::forward(ComputeContext ctx, const float* x, int64_t T, FfnActs& a, int64_t row0,
                     float* out) const {
  if (gate_.batches(ctx) && up_.batches(ctx) && down_.batches(ctx))
    return forward_batch(ctx, {{this, x, T, &a, row0, out}});  // gate and up in one batch
  const int64_t I = inter(), n = T * I;
  float* gate = a.gate.data() + row0 * I;
  float* up = a.up.data() + row0 * I;
  float* act = a.act.data() + row0 * I;
  // gate_proj and up_proj quantize x alike: the tiles gate_proj keeps serve both Wgrads.
  const auto rows = static_cast<int64_t>(a.gate.size()) / I;
  const bool cache = gate_.caches_input(ctx);
  if (cache) {
    gate_.forward(ctx, x, T, gate, Fp8InputCache{&a.x_fp8, rows, row0});
  } else {
    if (keeps_input(a) || !a.act_fp8.q.empty()) a.x_fp8 = a.act_fp8 = Fp8Tiles{};  // stale
    gate_.forward(ctx, x, T, gate);
  }
  up_.forward(ctx, x, T, up);
  std::copy_n(gate, n, act);  // the kernel works in place; the pre-activation stays for backward
  ctx.kernels.swiglu(act, up, n);
  if (cache)
    down_.forward(ctx, act, T, out, Fp8InputCache{&a.act_fp8, rows, row0});
  else
    down_.forward(ctx, act, T, out);
}

void SwiGlu::forward_batch(ComputeContext ctx, const std::vector<SwiGluCall>& calls) {
  bool batch = true;
  for (const SwiGluCall& c : calls)
    batch =
        batch && c.ffn->gate_.batches(ctx) && c.ffn->up_.batches(ctx) && c.ffn->down_.batches(ctx);
  if (!batch) {
    for (const SwiGluCall& c : calls) c.ffn->forward(ctx, c.x, c.T, *c.acts, c.row0, c.out);
    return;
  }
  std::vector<LinearCall> proj;
  for (const SwiGluCall& c : calls) {
    const int64_t I = c.ffn->inter();
    proj.push_back({&c.ffn->gate_, c.x, c.T, c.acts->gate.data() + c.row0 * I});
    proj.push_back({&c.ffn->up_, c.x, c.T, c.acts->up.data() + c.row0 * I});
  }
  Linear::forward_batch(ctx, proj);
  proj.clear();
  for (const SwiGluCall& c : calls) {
    const int64_t I = c.ffn->inter(), n = c.T * I;
    float* act = c.acts->act.data() + c.row0 * I;
    std::copy_n(c.acts->gate.data() + c.row0 * I, n, act);
    ctx.kernels.swiglu(act, c.acts->up.data() + c.row0 * I, n);
    proj.push_back({&c.ffn->down_, act, c.T, c.out});
  }
  Linear::forward_batch(ctx, proj);
}

void SwiGlu::release_cached(FfnActs& a) {
  if (!a.act_fp8.q.empty()) std::vector<float>().swap(a.act);
}

void SwiGlu::backward(ComputeContext ctx, const float* x, int64_t T, const FfnActs& a, int64_t row0,
                      const float* dout, FfnGrads& g, float* dx) const {
  const int64_t I = inter(), n = T * I, d = down_.out();
  const float* gate = a.gate.data() + row0 * I;
  const float* up = a.up.data() + row0 * I;
  if (static_cast<int64_t>(g.dact.size()) < n) {
    g.dact.resize(n);
    g.dgate.resize(n);
    g.dup.resize(n);
  }
  if (static_cast<int64_t>(g.dx_up.size()) < T * d) g.dx_up.resize(T * d);
  const bool cache = gate_.caches_input(ctx);
  if (cache)
    down_.backward_weight(ctx, dout, a.act_fp8, row0, T);
  else
    down_.backward_weight(ctx, dout, a.act.data() + row0 * I, T);
  down_.backward_input(ctx, dout, T, g.dact.data());
  ctx.kernels.swiglu_backward(g.dgate.data(), g.dup.data(), gate, up, g.dact.data(), n);
  if (cache) {
    gate_.backward_weight(ctx, g.dgate.data(), a.x_fp8, row0, T);
    up_.backward_weight(ctx, g.dup.data(), a.x_fp8, row0, T);
  } else {
    gate_.backward_weight(ctx, g.dgate.data(), x, T);
    up_.backward_weight(ctx, g.dup.data(), x, T);
  }
  gate_.backward_input(ctx, g.dgate.data(), T, dx);
  up_.backward_input(ctx, g.dup.data(), T, g.dx_up.data());
  ctx.kernels.axpy(dx, 1.0f, g.dx_up.data(), T * d);
}

}  // namespace dsv3

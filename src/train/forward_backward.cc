// Forward, losses and backward of one micro-batch.
#include "train/forward_backward.h"

#include <cmath>
#include <span>

#include "base/error.h"
#include "model/param_store.h"
#include "train/balance.h"
#include "train/loss.h"

namespace dsv3 {

ForwardBackward::ForwardBackward(Model& model, ComputeContext ctx) : model_(model), ctx_(ctx) {
  DSV3_CHECK(model.params().training(), "train: the model's parameters are not trainable",
             "call params().enable_training() first");
  model_.set_attention_path(AttentionPath::Naive);
  mb_.acts.keep_layers = true;
}

LossParts ForwardBackward::run(const int32_t* windows, int64_t B, int64_t T, const LossWeights& w,
                               double weight) {
  return pass(windows, B, T, w, weight, true);
}

LossParts ForwardBackward::evaluate(const int32_t* windows, int64_t B, int64_t T,
                                    const LossWeights& w) {
  return pass(windows, B, T, w, 1.0, false);
}

size_t ForwardBackward::terms_size() const {
  return 2 + 2 * static_cast<size_t>(layers() + 1);
}

void ForwardBackward::start(MicroBatch& mb, const int32_t* windows, int64_t B, int64_t T,
                            const LossWeights& w, double weight) const {
  DSV3_CHECK(B >= 1 && T >= 2, "train: a micro-batch needs at least one window of 3 tokens");
  DSV3_CHECK(weight > 0, "train: a micro-batch's loss weight must be > 0");
  const int64_t N = B * T;
  mb.weight = weight;
  mb.with_mtp = w.mtp_lambda > 0 && model_.has_mtp();
  mb.acts.keep_layers = true;
  mb.main.clear();
  mb.mtp.clear();
  mb.targets.resize(N);
  mb.mtp_targets.resize(N);
  for (int64_t b = 0; b < B; ++b) {
    const int32_t* win = windows + b * (T + 1);
    mb.main.add(nullptr, std::span<const int32_t>(win, T), LogitsRows::All);
    if (mb.with_mtp) mb.mtp.add(nullptr, std::span<const int32_t>(win + 1, T), LogitsRows::All);
    for (int64_t i = 0; i < T; ++i) {
      mb.targets[b * T + i] = win[i + 1];
      mb.mtp_targets[b * T + i] = i + 2 <= T ? win[i + 2] : -1;
    }
  }
  mb.terms.assign(terms_size(), 0.0);
}

void ForwardBackward::forward(MicroBatch& mb, StageLayers s, const LossWeights& w, bool backward) {
  const ModelConfig& c = model_.config();
  const int64_t V = c.vocab_size, d = c.hidden_size, N = mb.main.rows(), L = layers();
  const bool last = s.end == L;
  if (last) {
    mb.logits.resize(N * V);
    mb.hidden.resize(mb.with_mtp ? N * d : 0);
  }
  model_.forward_layers(mb.main, mb.acts, s.begin, s.end, last ? mb.logits.data() : nullptr,
                        last && mb.with_mtp ? mb.hidden.data() : nullptr);
  if (last) {
    ThreadPool& pool = mb.acts.pool ? *mb.acts.pool : ctx_.pool;  // the pass's pool (F&B pairs)
    // A non-finite loss (diverged weights) ends the pass: the trainer skips the step, and the
    // balance loss would refuse non-finite scores.
    mb.terms[0] = cross_entropy_loss(ctx_.kernels, pool, mb.logits.data(), mb.targets.data(), N, V,
                                     mb.weight);
    if (!std::isfinite(mb.terms[0])) return;
    if (mb.with_mtp) {
      mb.mtp_logits.resize(N * V);
      model_.forward_mtp(mb.mtp, mb.hidden.data(), mb.acts, mb.mtp_logits.data());
      mb.terms[1] = cross_entropy_loss(ctx_.kernels, pool, mb.mtp_logits.data(),
                                       mb.mtp_targets.data(), N, V, mb.weight * w.mtp_lambda);
      if (!std::isfinite(mb.terms[1])) return;
    }
  }
  for (int64_t l = s.begin; l < s.end; ++l)
    if (!mb.acts.expert_load[l].empty())
      balance(mb, mb.acts.layers[l].moe, mb.main, static_cast<size_t>(l), w, backward);
  if (last && mb.with_mtp && !mb.acts.mtp.layer.moe.plan.counts.empty())
    balance(mb, mb.acts.mtp.layer.moe, mb.mtp, static_cast<size_t>(L), w, backward);
}

void ForwardBackward::balance(MicroBatch& mb, MoeActs& a, const Batch& b, size_t l,
                              const LossWeights& w, bool backward) const {
  const ModelConfig& c = model_.config();
  const int64_t E = c.n_routed_experts, K = c.num_experts_per_tok;
  const size_t bal = 2 + l, aux = 2 + static_cast<size_t>(layers() + 1) + l;
  a.dscores_aux.clear();
  // Diverged activations upstream (the loss, on the last stage, will be non-finite too).
  for (float x : a.scores)
    if (!std::isfinite(x)) {
      mb.terms[bal] = mb.terms[aux] = NAN;
      return;
    }
  // The gradient is weight * α * dL/ds; balance_loss returns α' L for the α' it is given.
  const double weight = mb.weight;
  if (w.balance_alpha > 0)
    mb.terms[bal] =
        balance_loss(a, b, E, K, w.balance_alpha * weight, BalanceScope::Sequence, a.dscores_aux) /
        (w.balance_alpha * weight);
  if (w.aux_alpha > 0)
    mb.terms[aux] =
        balance_loss(a, b, E, K, w.aux_alpha * weight, BalanceScope::Batch, a.dscores_aux) /
        (w.aux_alpha * weight);
  if (!backward) a.dscores_aux.clear();
}

LossParts ForwardBackward::loss_parts(const std::vector<double>& terms, const LossWeights& w) {
  const size_t layers = (terms.size() - 2) / 2;
  LossParts p;
  p.ce = terms[0];
  p.mtp = terms[1];
  for (size_t l = 0; l < layers; ++l) p.balance += terms[2 + l];
  for (size_t l = 0; l < layers; ++l) p.aux += terms[2 + layers + l];
  p.total = p.ce + w.mtp_lambda * p.mtp + w.balance_alpha * p.balance + w.aux_alpha * p.aux;
  return p;
}

void ForwardBackward::backward(MicroBatch& mb, StageLayers s, const float* dout) {
  const int64_t N = mb.main.rows(), d = model_.config().hidden_size;
  if (s.end < layers()) {
    model_.backward_layers(mb.main, mb.acts, s.begin, s.end, nullptr, nullptr, dout);
    return;
  }
  if (mb.with_mtp) {
    mb.dhidden.resize(N * d);
    model_.backward_mtp(mb.mtp, mb.hidden.data(), mb.acts, mb.mtp_logits.data(), mb.dhidden.data());
  }
  model_.backward_layers(mb.main, mb.acts, s.begin, s.end, mb.logits.data(),
                         mb.with_mtp ? mb.dhidden.data() : nullptr, nullptr);
}

LossParts ForwardBackward::pass(const int32_t* windows, int64_t B, int64_t T, const LossWeights& w,
                                double weight, bool backward) {
  const StageLayers whole{0, layers()};
  start(mb_, windows, B, T, w, weight);
  forward(mb_, whole, w, backward);
  load_ = mb_.acts.expert_load;
  if (mb_.with_mtp && std::isfinite(mb_.terms[0]))
    load_.push_back(mb_.acts.mtp.layer.moe.plan.counts);
  LossParts p = loss_parts(mb_.terms, w);
  if (backward && std::isfinite(p.total)) this->backward(mb_, whole, nullptr);
  return p;
}

}  // namespace dsv3

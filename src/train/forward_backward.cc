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
  acts_.keep_layers = true;
}

LossParts ForwardBackward::run(const int32_t* windows, int64_t B, int64_t T, const LossWeights& w,
                               double weight) {
  return pass(windows, B, T, w, weight, true);
}

LossParts ForwardBackward::evaluate(const int32_t* windows, int64_t B, int64_t T,
                                    const LossWeights& w) {
  return pass(windows, B, T, w, 1.0, false);
}

LossParts ForwardBackward::pass(const int32_t* windows, int64_t B, int64_t T, const LossWeights& w,
                                double weight, bool backward) {
  const ModelConfig& c = model_.config();
  const int64_t V = c.vocab_size, d = c.hidden_size, N = B * T;
  DSV3_CHECK(B >= 1 && T >= 2, "train: a micro-batch needs at least one window of 3 tokens");
  DSV3_CHECK(weight > 0, "train: a micro-batch's loss weight must be > 0");
  const bool mtp = w.mtp_lambda > 0 && model_.has_mtp();
  main_.clear();
  mtp_.clear();
  targets_.resize(N);
  mtp_targets_.resize(N);
  for (int64_t b = 0; b < B; ++b) {
    const int32_t* win = windows + b * (T + 1);
    main_.add(nullptr, std::span<const int32_t>(win, T), LogitsRows::All);
    if (mtp) mtp_.add(nullptr, std::span<const int32_t>(win + 1, T), LogitsRows::All);
    for (int64_t i = 0; i < T; ++i) {
      targets_[b * T + i] = win[i + 1];
      mtp_targets_[b * T + i] = i + 2 <= T ? win[i + 2] : -1;
    }
  }
  logits_.resize(N * V);
  hidden_.resize(mtp ? N * d : 0);
  model_.forward(main_, acts_, logits_.data(), mtp ? hidden_.data() : nullptr);
  load_ = acts_.expert_load;

  LossParts p;
  p.ce = cross_entropy_loss(ctx_.kernels, ctx_.pool, logits_.data(), targets_.data(), N, V, weight);
  // A non-finite loss (diverged weights) ends the pass: the trainer skips the step, and the
  // balance loss would refuse non-finite scores.
  auto diverged = [&](double x) {
    if (std::isfinite(x)) return false;
    p.total = x;
    return true;
  };
  if (diverged(p.ce)) return p;
  if (mtp) {
    mtp_logits_.resize(N * V);
    model_.forward_mtp(mtp_, hidden_.data(), acts_, mtp_logits_.data());
    load_.push_back(acts_.mtp.layer.moe.plan.counts);
    p.mtp = cross_entropy_loss(ctx_.kernels, ctx_.pool, mtp_logits_.data(), mtp_targets_.data(), N,
                               V, weight * w.mtp_lambda);
  }
  if (diverged(p.mtp)) return p;
  balance_losses(w, weight, backward, p);
  p.total = p.ce + w.mtp_lambda * p.mtp + w.balance_alpha * p.balance + w.aux_alpha * p.aux;
  if (!backward) return p;
  if (mtp) {
    dhidden_.resize(N * d);
    model_.backward_mtp(mtp_, hidden_.data(), acts_, mtp_logits_.data(), dhidden_.data());
  }
  model_.backward(main_, acts_, logits_.data(), mtp ? dhidden_.data() : nullptr);
  return p;
}

void ForwardBackward::balance_losses(const LossWeights& w, double weight, bool backward,
                                     LossParts& p) {
  const ModelConfig& c = model_.config();
  const int64_t E = c.n_routed_experts, K = c.num_experts_per_tok;
  // The gradient is weight * α * dL/ds; balance_loss returns α' L for the α' it is given.
  auto one = [&](MoeActs& a, const Batch& b) {
    a.dscores_aux.clear();
    if (w.balance_alpha > 0)
      p.balance += balance_loss(a, b, E, K, w.balance_alpha * weight, BalanceScope::Sequence,
                                a.dscores_aux) /
                   (w.balance_alpha * weight);
    if (w.aux_alpha > 0)
      p.aux += balance_loss(a, b, E, K, w.aux_alpha * weight, BalanceScope::Batch, a.dscores_aux) /
               (w.aux_alpha * weight);
    if (!backward) a.dscores_aux.clear();
  };
  for (size_t l = 0; l < acts_.layers.size(); ++l)
    if (!acts_.expert_load[l].empty()) one(acts_.layers[l].moe, main_);
  if (mtp_.rows() > 0 && !acts_.mtp.layer.moe.plan.counts.empty()) one(acts_.mtp.layer.moe, mtp_);
}

}  // namespace dsv3

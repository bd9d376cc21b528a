// One micro-batch of training (SPEC §1.7, §2): the forward pass of the main model and the MTP
// module over B windows of T + 1 tokens, the losses, and the backward pass into the parameter
// store's gradient arena. The optimizer step, the balance bias update and the batch loop are the
// trainer's.
//
// Window w[0 .. T]: the main model reads w[0 .. T-1] and predicts w[1 .. T]; the MTP module's
// row i reads the main model's hidden state h_i and token w[i+1] and predicts w[i+2] (rows
// i <= T-2 have a target). Losses: CE = mean over the main rows; MTP = mean over the MTP rows with
// a target; balance = alpha * Σ over MoE layers (the MTP layer included) of the sequence-wise
// balance loss (TR Eq.17-20), or aux_alpha * the V2-style expert-level loss over the whole
// micro-batch; total = CE + mtp_lambda * MTP + balance.
#pragma once
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "model/activations.h"
#include "model/batch.h"
#include "model/model.h"

namespace dsv3 {

struct LossWeights {
  double mtp_lambda = 0.3;      // λ (TR §4.2); 0 skips the MTP module
  double balance_alpha = 1e-4;  // α of the sequence-wise balance loss; 0 turns it off
  double aux_alpha = 0.0;       // α1 of the V2 expert-level auxiliary loss (ablation only)
};

// total is the weighted sum; the parts are unweighted: mtp the MTP CE, balance Σ over MoE layers
// of the sequence-wise f·P (mean over sequences), aux Σ over MoE layers of the batch-wise f·P.
struct LossParts {
  double total = 0, ce = 0, mtp = 0, balance = 0, aux = 0;
};

// Layers [begin, end) of the main model: a pipeline stage (src/dist, SPEC §4), or [0, L) the whole
// model. The first stage (begin == 0) embeds; the last (end == L) also runs the final norm, the
// head, the losses and the MTP module, which reads the main model's last hidden state and the
// embedding of the shifted tokens.
struct StageLayers {
  int64_t begin = 0, end = 0;
};

// One micro-batch on its way through forward and backward: its batches, targets, activations and
// outputs. A pipeline stage holds several in flight; the one-process pass holds one.
struct MicroBatch {
  ForwardActs acts;
  Batch main, mtp;
  std::vector<int32_t> targets, mtp_targets;
  std::vector<float> logits, hidden, mtp_logits, dhidden;
  double weight = 1;  // of its gradient: 1 / the micro-batches of an optimizer step
  bool with_mtp = false;
  // The unweighted loss terms the stages computed (loss_terms() entries): CE and MTP CE on the last
  // stage, the balance and aux losses of each MoE layer on the layer's stage (zero elsewhere).
  std::vector<double> terms;
};

class ForwardBackward {
 public:
  // The model's store must have training enabled; the model is switched to the Naive attention
  // path (the one with a backward pass).
  ForwardBackward(Model& model, ComputeContext ctx);

  // windows [B, T + 1]. Accumulates weight * dL/dθ into model.params().grads() (weight: 1 / the
  // number of micro-batches of an optimizer step) and returns the unweighted loss parts.
  LossParts run(const int32_t* windows, int64_t B, int64_t T, const LossWeights& w, double weight);
  // Recompute the RMSNorm outputs and MLA up-projections in backward instead of keeping them
  // (SPEC §3.1): less activation memory, the same gradients bit for bit.
  void set_recompute(bool on) { mb_.acts.recompute = on; }
  // Called by run()'s backward as gradients become final (ForwardActs::grads_ready); empty: none.
  void set_grads_ready(std::function<void(int64_t layer)> f) {
    mb_.acts.grads_ready = std::move(f);
  }
  // The loss parts only, no backward (validation).
  LossParts evaluate(const int32_t* windows, int64_t B, int64_t T, const LossWeights& w);

  // Tokens routed to each expert by the last run, per MoE layer: [L][E] for the main layers
  // (empty for dense ones), then one more entry for the MTP layer when it ran.
  const std::vector<std::vector<int64_t>>& expert_load() const { return load_; }

  // The pieces run() is made of, for pipeline stages (src/dist). start() sets mb up for windows
  // [B, T + 1] (the windows must outlive nothing: they are copied). forward() runs the stage's
  // layers (a stage after the first reads mb.acts.resid[s.begin], which the caller filled), then
  // on the last stage the losses and the MTP module, and the balance losses of the stage's MoE
  // layers into mb.terms (their gradients too unless !backward). backward() runs the stage's
  // backward: the last stage from its losses, the others from dout = dL/d(resid[s.end]); the
  // result dL/d(resid[s.begin]) is in mb.acts.dinput (see Model::backward_layers).
  void start(MicroBatch& mb, const int32_t* windows, int64_t B, int64_t T, const LossWeights& w,
             double weight) const;
  void forward(MicroBatch& mb, StageLayers s, const LossWeights& w, bool backward);
  void backward(MicroBatch& mb, StageLayers s, const float* dout);
  // mb.terms: [2 + 2 (L + 1)] = CE, MTP, balance of layers 0..L (L: the MTP layer), aux of the
  // same.
  size_t terms_size() const;
  // The loss parts from a micro-batch's terms, summed as the one-process pass sums them.
  static LossParts loss_parts(const std::vector<double>& terms, const LossWeights& w);
  int64_t layers() const { return model_.config().num_hidden_layers; }

 private:
  LossParts pass(const int32_t* windows, int64_t B, int64_t T, const LossWeights& w, double weight,
                 bool backward);
  // One MoE layer's balance terms (index l of the terms) and, with backward, its gradient.
  void balance(MicroBatch& mb, MoeActs& a, const Batch& b, size_t l, const LossWeights& w,
               bool backward) const;

  Model& model_;
  ComputeContext ctx_;
  MicroBatch mb_;
  std::vector<std::vector<int64_t>> load_;
};

}  // namespace dsv3

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
  void set_recompute(bool on) { acts_.recompute = on; }
  // The loss parts only, no backward (validation).
  LossParts evaluate(const int32_t* windows, int64_t B, int64_t T, const LossWeights& w);

  // Tokens routed to each expert by the last run, per MoE layer: [L][E] for the main layers
  // (empty for dense ones), then one more entry for the MTP layer when it ran.
  const std::vector<std::vector<int64_t>>& expert_load() const { return load_; }

 private:
  LossParts pass(const int32_t* windows, int64_t B, int64_t T, const LossWeights& w, double weight,
                 bool backward);
  void balance_losses(const LossWeights& w, double weight, bool backward, LossParts& p);

  Model& model_;
  ComputeContext ctx_;
  ForwardActs acts_;
  Batch main_, mtp_;
  std::vector<int32_t> targets_, mtp_targets_;
  std::vector<float> logits_, hidden_, mtp_logits_, dhidden_;
  std::vector<std::vector<int64_t>> load_;
};

}  // namespace dsv3

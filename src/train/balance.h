// Load balancing in training (SPEC §2): the auxiliary-loss-free bias update and its MaxVio
// measure, the complementary sequence-wise balance loss (TR Eq.17-20) and, for the ablations, the
// same f·P loss over the whole batch (TR §4.5.3 "batch-wise") or V2's expert-level loss (V2
// §2.2.3: softmax scores, α1 = 0.001 for V2-Lite; per sequence).
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "model/batch.h"
#include "model/moe.h"

namespace dsv3 {

// b_i += γ·sign(mean_j load_j - load_i) in FP32 (sign(0) = 0): overloaded experts lose γ,
// underloaded ones gain it. load: the expert counts of one MoE layer over the whole global batch
// (every micro-batch and rank), as ForwardActs::expert_load reports them per forward.
void update_balance_bias(float* bias, const int64_t* load, int64_t E, double gamma);

// MaxVio = max_i load_i / mean_j load_j - 1 (0: perfectly balanced); 0 when no token was routed.
double max_violation(const int64_t* load, int64_t E);

enum class BalanceScope {
  Sequence,  // TR Eq.17-20: one loss per sequence, T = its tokens; the mean over sequences
  Batch,     // one loss over every row of the batch at once
};

// L = α Σ_i f_i P_i for one MoE layer, with, over the T rows of a sequence (or of the batch),
//   s'_{i,t} = s_{i,t} / Σ_j s_{j,t} (all E experts; s = MoeActs::scores after routing),
//   P_i = (1/T) Σ_t s'_{i,t},   f_i = E / (K·T) · Σ_t 1[i selected for t] (MoeActs::experts).
// Returns L (Sequence: the mean over b's sequences) and adds dL/ds [rows, E] to `dscores`
// (resized to rows·E and zeroed first when empty). The gradient flows through P only: f counts a
// discrete selection. Sequences with no rows are skipped (and not counted in the mean).
double balance_loss(const MoeActs& a, const Batch& b, int64_t E, int64_t K, double alpha,
                    BalanceScope scope, std::vector<float>& dscores);
// The same over explicit row ranges (what a batch's seqs() holds); Batch scope: rows 0 .. rows-1.
double balance_loss(const MoeActs& a, std::span<const BatchSeq> seqs, int64_t rows, int64_t E,
                    int64_t K, double alpha, BalanceScope scope, std::vector<float>& dscores);

// TR Eq.17-20 (V3: α = 1e-4), into a.dscores_aux as Moe::backward reads it.
inline double sequence_balance_loss(const MoeActs& a, const Batch& b, int64_t E, int64_t K,
                                    double alpha, std::vector<float>& dscores) {
  return balance_loss(a, b, E, K, alpha, BalanceScope::Sequence, dscores);
}

}  // namespace dsv3

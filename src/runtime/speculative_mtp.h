// Speculative decoding with the model's own MTP module as the draft (DeepSeek-V3 TR §2.2, §5.4.3;
// SPEC §1.7). One step of one sequence: the MTP module drafts N tokens from the main model's last
// hidden state, the main model scores the last accepted token and the N drafts in ONE forward, and
// the rule of Leviathan et al. 2023 / Chen et al. 2023 (judge_draft) keeps a prefix of the drafts
// plus one token of its own, so the output has exactly the main model's distribution (greedy:
// exactly its tokens). The main and MTP caches roll back to the first rejection.
//
// Depth 1 is what V3 trains; N > 1 feeds the MTP module its own output (shared_head.norm of its
// layer) as the next "main hidden state": beyond what it was trained for, so later drafts are
// accepted less often (docs/PERFORMANCE.md measures it).
//
// The step is an object per sequence so that a scheduler can run it for one slot at a time; it
// holds the MTP cache and the main model's hidden states of the positions in the main cache (the
// MTP module's input for the next draft), and owns no main-model state.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "base/rng.h"
#include "model/activations.h"
#include "model/model.h"
#include "runtime/kv_cache.h"
#include "runtime/sampler.h"

namespace dsv3 {

// The verdict on one draft token drawn from q when the main model says p (both [vocab],
// normalised): accept with probability min(1, p(draft) / q(draft)); otherwise the token is drawn
// from max(0, p - q), normalised. With q one-hot and p one-hot (greedy) this accepts exactly
// when the draft is p's token and otherwise returns p's token, without using rng.
struct DraftVerdict {
  bool accepted = false;
  int32_t token = -1;
};
DraftVerdict judge_draft(std::span<const double> p, std::span<const double> q, int32_t draft,
                         Rng& rng);

struct SpeculativeStats {
  int64_t steps = 0;    // verification passes of the main model
  int64_t drafted = 0;  // draft tokens proposed
  int64_t accepted = 0;
  int64_t emitted = 0;  // tokens the steps produced (accepted drafts + one per step, at most)
  // Seconds in the MTP module (catching up and drafting) and in the main model's verification
  // passes (forward and acceptance): where a step's time goes.
  double draft_s = 0, verify_s = 0;

  double acceptance_rate() const { return drafted ? double(accepted) / double(drafted) : 0.0; }
  // Mean tokens one verification pass produced (1 + accepted drafts, per step).
  double tokens_per_step() const { return steps ? double(emitted) / double(steps) : 0.0; }
  // The counts since `earlier`, a copy taken before.
  SpeculativeStats since(const SpeculativeStats& earlier) const;
  SpeculativeStats& operator+=(const SpeculativeStats& o);
};

// Mixed into a sampling seed to seed the drafts: a stream of their own, since drawing them from
// the sampler's would correlate each draft with the acceptance test that judges it.
constexpr uint64_t kDraftSeedStream = 0x9e3779b97f4a7c15ULL;

class MtpSpeculator {
 public:
  // The model must have an MTP module (Error otherwise, naming the fix). n_draft >= 1 drafts per
  // step; text_vocab: logits past it (the embedding's padding rows) are never drafted or sampled;
  // draft_seed: the draft's own random generator (the sampler's draws the acceptance tests).
  MtpSpeculator(Model& model, int64_t n_draft, DType cache_dtype, int64_t text_vocab,
                uint64_t draft_seed);

  int64_t n_draft() const { return n_draft_; }
  // Restarts the drafts' random generator (a new sequence with its own seed).
  void seed_drafts(uint64_t seed) { draft_rng_.reseed(seed); }
  // The main model just put `ids` in the main cache (after the positions seen so far) with these
  // hidden states [ids.size(), hidden_size] (Model::forward's `hidden`).
  void observe(const float* hidden, std::span<const int32_t> ids);
  // Keeps the first n positions seen (the main cache was truncated to n).
  void truncate(int64_t n);
  int64_t positions() const { return static_cast<int64_t>(ids_.size()); }

  // One step. `cache` holds the sequence up to the last accepted token `last`, which is not in it
  // yet (as Generator keeps it); every position of `cache` has been observe()d. Emits at most
  // `max_tokens` >= 1 tokens through on_token, each accepted (sampler.accept) before the call;
  // on_token returns false to stop (end of sequence, stop string, limit): no later token is
  // accepted. On return `cache` holds `last` and every emitted token but the final one, which is
  // the next step's `last`, exactly as token-by-token generation leaves it. Returns the number
  // of tokens emitted (>= 1). Fewer drafts are made near the end of the context. step() is
  // draft(), one Model::forward of the rows it returns, then accept().
  int64_t step(KvCache& cache, int32_t last, Sampler& sampler, int64_t max_tokens,
               const std::function<bool(int32_t)>& on_token);

  // The two halves of step() for a scheduler that verifies several sequences in one batch:
  // draft() runs the MTP module and returns the rows to verify, [last, draft 1 .. n] (valid until
  // the next call); the caller adds them to a Batch on `cache` with logits for every row
  // (LogitsRows::All) and the hidden states, runs Model::forward, and passes this sequence's
  // logits [n + 1, vocab] (masked in place) and hidden [n + 1, hidden_size] to accept().
  std::span<const int32_t> draft(const KvCache& cache, int32_t last, const Sampler& sampler,
                                 int64_t max_tokens);
  int64_t accept(KvCache& cache, float* logits, const float* hidden, Sampler& sampler,
                 const std::function<bool(int32_t)>& on_token);

  const SpeculativeStats& stats() const { return stats_; }

 private:
  // Runs the MTP module over the positions from its cache's end to the last observed one, with
  // `last` as the token after that; leaves the last row's logits in mtp_logits_.
  void catch_up(int32_t last);
  // The draft sampler's distribution of mtp_logits_, and a draft drawn from it.
  int32_t draft_from(Sampler& draft_sampler, std::vector<double>& q);
  void mask_padding(float* logits, int64_t rows) const;

  Model& model_;
  int64_t n_draft_, text_vocab_, vocab_, d_;
  KvCache mtp_cache_;
  Rng draft_rng_;
  ForwardActs acts_;
  std::vector<float> hidden_;  // [positions(), d] the main model's hidden state per position
  std::vector<int32_t> ids_;   // the token at each position
  std::vector<int32_t> rows_;  // the rows draft() returned: last, then the drafts
  std::vector<float> mtp_logits_, logits_, verify_hidden_, chain_hidden_;
  std::vector<std::vector<double>> q_;
  SpeculativeStats stats_;
};

}  // namespace dsv3

#include "runtime/speculative_mtp.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "base/error.h"
#include "base/timer.h"
#include "model/batch.h"
#include "runtime/generate.h"

namespace dsv3 {

DraftVerdict judge_draft(std::span<const double> p, std::span<const double> q, int32_t draft,
                         Rng& rng) {
  DSV3_CHECK(p.size() == q.size() && draft >= 0 && static_cast<size_t>(draft) < p.size(),
             "speculative: draft " + std::to_string(draft) + " outside distributions of " +
                 std::to_string(p.size()) + " and " + std::to_string(q.size()) + " tokens");
  const double pd = p[draft], qd = q[draft];
  DSV3_CHECK(qd > 0, "speculative: the draft " + std::to_string(draft) +
                         " has probability 0 under the distribution it was drawn from");
  // u < p/q, written without the division; p >= q accepts without a draw (greedy never draws).
  if (pd >= qd || (pd > 0 && rng.uniform() * qd < pd)) return {true, draft};
  std::vector<double> residual(p.size());
  double total = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    residual[i] = std::max(0.0, p[i] - q[i]);
    total += residual[i];
  }
  // p(draft) < q(draft) with p, q normalised leaves positive mass elsewhere; rounding alone could
  // empty it, and then p itself is the right distribution.
  if (total <= 0) {
    total = 0;
    for (size_t i = 0; i < p.size(); ++i) total += residual[i] = p[i];
  }
  return {false, draw_token(residual, total, rng)};
}

SpeculativeStats& SpeculativeStats::operator+=(const SpeculativeStats& o) {
  steps += o.steps;
  drafted += o.drafted;
  accepted += o.accepted;
  emitted += o.emitted;
  draft_s += o.draft_s;
  verify_s += o.verify_s;
  return *this;
}

namespace {

CacheLayout mtp_layout(const Model& model) {
  DSV3_CHECK(model.has_mtp(),
             "speculative decoding: the model has no MTP module (num_nextn_predict_layers is 0 "
             "in its config.json)",
             "use a DeepSeek-V3 model trained with MTP (dsv3 train --mtp-lambda > 0), or leave "
             "out --speculative");
  return model.mtp_cache_layout();
}

}  // namespace

SpeculativeStats SpeculativeStats::since(const SpeculativeStats& earlier) const {
  return {steps - earlier.steps,     drafted - earlier.drafted, accepted - earlier.accepted,
          emitted - earlier.emitted, draft_s - earlier.draft_s, verify_s - earlier.verify_s};
}

MtpSpeculator::MtpSpeculator(Model& model, int64_t n_draft, DType cache_dtype, int64_t text_vocab,
                             uint64_t draft_seed)
    : model_(model),
      n_draft_(n_draft),
      text_vocab_(text_vocab),
      vocab_(model.config().vocab_size),
      d_(model.config().hidden_size),
      mtp_cache_(mtp_layout(model), cache_dtype),
      draft_rng_(draft_seed),
      mtp_logits_(vocab_) {
  DSV3_CHECK(n_draft >= 1 && n_draft <= 16,
             "speculative decoding: --draft " + std::to_string(n_draft) + " is outside 1 .. 16",
             "1 is what the MTP module was trained for");
}

void MtpSpeculator::observe(const float* hidden, std::span<const int32_t> ids) {
  hidden_.insert(hidden_.end(), hidden, hidden + static_cast<int64_t>(ids.size()) * d_);
  ids_.insert(ids_.end(), ids.begin(), ids.end());
}

void MtpSpeculator::truncate(int64_t n) {
  DSV3_CHECK(n >= 0 && n <= positions(), "speculative: cannot keep " + std::to_string(n) + " of " +
                                             std::to_string(positions()) + " positions");
  ids_.resize(n);
  hidden_.resize(n * d_);
  // MTP row i reads the token at i + 1, which the next step may change when it is position n.
  mtp_cache_.truncate(std::min(mtp_cache_.length(), std::max<int64_t>(n - 1, 0)));
}

void MtpSpeculator::mask_padding(float* logits, int64_t rows) const {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t v = std::max<int64_t>(text_vocab_, 0); v < vocab_; ++v)
      logits[r * vocab_ + v] = -INFINITY;
}

void MtpSpeculator::catch_up(int32_t last) {
  const int64_t L = positions(), m = mtp_cache_.length();
  // Row i: the main hidden state h_i and the token t_{i+1} (SPEC §1.7); t_L is `last`.
  std::vector<int32_t> next(ids_.begin() + m + 1, ids_.end());
  next.push_back(last);
  Batch b;
  for (int64_t r0 = m; r0 < L; r0 += kPrefillChunk) {
    const int64_t n = std::min(kPrefillChunk, L - r0);
    b.clear();
    b.add(&mtp_cache_, {next.data() + (r0 - m), static_cast<size_t>(n)},
          r0 + n == L ? LogitsRows::Last : LogitsRows::None);
    model_.forward_mtp(b, hidden_.data() + r0 * d_, acts_, mtp_logits_.data());
  }
}

int32_t MtpSpeculator::draft_from(Sampler& draft_sampler, std::vector<double>& q) {
  mask_padding(mtp_logits_.data(), 1);
  q = draft_sampler.distribution(mtp_logits_);
  double total = 0;
  for (double x : q) total += x;
  return draw_token(q, total, draft_rng_);
}

std::span<const int32_t> MtpSpeculator::draft(const KvCache& cache, int32_t last,
                                              const Sampler& sampler, int64_t max_tokens) {
  const int64_t L = cache.length();
  DSV3_CHECK(L == positions(), "speculative: the main cache holds " + std::to_string(L) +
                                   " positions but " + std::to_string(positions()) +
                                   " were observed");
  DSV3_CHECK(max_tokens >= 1, "speculative: a step must be allowed one token");
  // Rows L .. L + n of the verification must fit in the context; a draft needs h_{L-1}.
  const int64_t ctx = model_.config().max_position_embeddings;
  int64_t n = std::min(n_draft_, max_tokens - 1);
  if (ctx > 0) n = std::min(n, ctx - L - 1);
  if (L == 0) n = 0;
  n = std::max<int64_t>(n, 0);

  // The penalties see each draft as accepted, as they will if it is.
  Timer clock;
  rows_.assign(1, last);
  q_.resize(n);
  if (n > 0) {
    Sampler draft_sampler = sampler;
    catch_up(last);
    for (int64_t k = 0; k < n; ++k) {
      if (k > 0) {  // depth > 1: the module's own output stands in for the main hidden state
        const int64_t r = static_cast<int64_t>(acts_.mtp.normed.size()) / d_ - 1;
        chain_hidden_.assign(acts_.mtp.normed.begin() + r * d_,
                             acts_.mtp.normed.begin() + (r + 1) * d_);
        Batch b;
        b.add(&mtp_cache_, {&rows_.back(), 1}, LogitsRows::Last);
        model_.forward_mtp(b, chain_hidden_.data(), acts_, mtp_logits_.data());
      }
      const int32_t dk = draft_from(draft_sampler, q_[k]);
      draft_sampler.accept(dk);
      rows_.push_back(dk);
    }
    mtp_cache_.truncate(L);  // the chained rows used drafted hidden states
  }
  stats_.draft_s += clock.seconds();
  return rows_;
}

int64_t MtpSpeculator::accept(KvCache& cache, float* logits, const float* hidden, Sampler& sampler,
                              const std::function<bool(int32_t)>& on_token) {
  DSV3_CHECK(!rows_.empty(), "speculative: accept() without a draft()");
  const int64_t n = static_cast<int64_t>(rows_.size()) - 1;
  const int64_t L = cache.length() - (n + 1);
  DSV3_CHECK(L == positions(), "speculative: the cache does not hold the verified rows");
  Timer clock;
  mask_padding(logits, n + 1);
  auto row = [&](int64_t j) {
    return std::span<const float>(logits + j * vocab_, static_cast<size_t>(vocab_));
  };
  ++stats_.steps;
  stats_.drafted += n;

  std::vector<int32_t> out;
  bool more = true, all_accepted = true;
  for (int64_t j = 0; j < n && more && all_accepted; ++j) {
    const std::vector<double> p = sampler.distribution(row(j));
    const DraftVerdict v = judge_draft(p, q_[j], rows_[j + 1], sampler.rng());
    all_accepted = v.accepted;
    stats_.accepted += v.accepted;
    sampler.accept(v.token);
    out.push_back(v.token);
    more = on_token(v.token);
  }
  if (more && all_accepted) {  // every draft kept: the bonus token from the last row
    const int32_t t = sampler.sample(row(n));
    sampler.accept(t);
    out.push_back(t);
    on_token(t);
  }
  const auto e = static_cast<int64_t>(out.size());
  stats_.emitted += e;

  // Roll back to `last` and the emitted tokens but the final one (the next `last`).
  cache.truncate(L + e);
  rows_.resize(1);
  rows_.insert(rows_.end(), out.begin(), out.end() - 1);
  observe(hidden, rows_);
  rows_.clear();
  stats_.verify_s += clock.seconds();
  return e;
}

int64_t MtpSpeculator::step(KvCache& cache, int32_t last, Sampler& sampler, int64_t max_tokens,
                            const std::function<bool(int32_t)>& on_token) {
  const std::span<const int32_t> rows = draft(cache, last, sampler, max_tokens);
  // Verify: the last accepted token and the drafts in one forward pass of the main model.
  Timer clock;
  const auto m = static_cast<int64_t>(rows.size());
  Batch vb;
  vb.add(&cache, rows, LogitsRows::All);
  logits_.resize(m * vocab_);
  verify_hidden_.resize(m * d_);
  model_.forward(vb, acts_, logits_.data(), verify_hidden_.data());
  stats_.verify_s += clock.seconds();
  return accept(cache, logits_.data(), verify_hidden_.data(), sampler, on_token);
}

}  // namespace dsv3

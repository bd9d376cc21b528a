// Sampler: picks the next token from a row of logits. One sampler per sequence; it remembers the
// sequence's tokens for the penalties and owns the sequence's random generator (same seed, same
// tokens).
//
// The transforms, applied in this order to the logits z (in double precision):
//  1. repetition_penalty r (Hugging Face RepetitionPenaltyLogitsProcessor, from CTRL, Keskar et
//     al. 2019): for every distinct token of the context (prompt and generated tokens),
//     z = z / r when z > 0, else z * r.
//  2. frequency_penalty a_f and presence_penalty a_p (OpenAI's definition; llama.cpp and vLLM
//     apply the same formula): z -= c * a_f + (c > 0) * a_p, with c the number of times the token
//     was generated so far (generated tokens only, as vLLM and the OpenAI API do).
//  3. temperature == 0: greedy, the argmax of the penalised logits (lowest id on a tie, as
//     torch.argmax). Otherwise z /= temperature, then the Hugging Face warpers in the order of
//     transformers' _get_logits_processor:
//  4. top_k: keep the tokens whose logit is >= the k-th largest (ties at the boundary are kept).
//  5. top_p: sort by probability, descending; keep a token when the probability mass of the
//     tokens before it is < top_p (the smallest prefix reaching top_p). The first always stays.
//  6. min_p: keep tokens whose probability (after 4 and 5, renormalised) is >= min_p times the
//     largest probability.
//  7. Draw from the softmax of the surviving logits with the sequence's Rng.
#pragma once
#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "base/rng.h"

namespace dsv3 {

// A token drawn from probs [vocab] (non-negative, summing to `total` > 0) by the inverse CDF in
// id order. A distribution with a single non-zero entry returns it without using rng, as
// Sampler::sample does for greedy, so greedy decoding never advances the generator.
int32_t draw_token(std::span<const double> probs, double total, Rng& rng);

struct SamplingParams {
  double temperature = 1.0;         // 0: greedy
  int64_t top_k = 0;                // 0: off
  double top_p = 1.0;               // 1: off
  double min_p = 0.0;               // 0: off
  double repetition_penalty = 1.0;  // 1: off
  double frequency_penalty = 0.0;   // 0: off
  double presence_penalty = 0.0;    // 0: off
  uint64_t seed = 0;

  bool greedy() const { return temperature == 0.0; }
  // Throws Error naming the field for NaN, infinities and values out of range.
  void validate() const;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& p);

  const SamplingParams& params() const { return p_; }
  // The prompt's tokens (and any earlier turns): they count for the repetition penalty only.
  void add_context(std::span<const int32_t> ids);
  // A token that was generated (sampled here or forced): it counts for every penalty.
  void accept(int32_t id);
  // Forget the context and restart the random generator from the seed.
  void reset();

  // Picks the next token from logits [vocab] (does not accept it: call accept()).
  int32_t sample(std::span<const float> logits);
  // The distribution sample() draws from, as probabilities per token id (0 where filtered out);
  // greedy gives a one-hot vector. For tests and diagnostics; sample() does the same work.
  std::vector<double> distribution(std::span<const float> logits) const;
  // The sequence's random generator: speculative decoding (runtime/speculative_mtp.h) draws its
  // acceptance tests and residual samples from it, so one seed fixes the whole output.
  Rng& rng() { return rng_; }

 private:
  struct Candidate {
    double z;
    int32_t id;
  };
  // Steps 1-6: fills `cands` with the surviving tokens, their z shifted so that the largest is
  // 0, and returns the sum of their exp(z) (the softmax normaliser).
  double filter(std::span<const float> logits, std::vector<Candidate>& cands) const;

  SamplingParams p_;
  Rng rng_;
  std::unordered_map<int32_t, int32_t> context_count_;    // prompt + generated
  std::unordered_map<int32_t, int32_t> generated_count_;  // generated only
  std::vector<Candidate> cands_;                          // reused across calls
};

}  // namespace dsv3

// Generation for one sequence: a model, its attention cache and the token ids in it. generate()
// prefills new prompt tokens after what is cached and then samples token by token, streaming the
// text (whole UTF-8 characters, stop strings cut exactly) to a callback, until EOS, a stop string,
// the token limit, a full context or an interrupt.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/model.h"
#include "runtime/kv_cache.h"
#include "runtime/sampler.h"
#include "runtime/speculative_mtp.h"
#include "tokenizer/tokenizer.h"

namespace dsv3 {

// Prompt tokens per forward call: bounds the activations of a long prompt.
constexpr int64_t kPrefillChunk = 256;

// Runs ids through the model into the cache, kPrefillChunk tokens per forward call, writing the
// logits of the last position only into last_logits [vocab] (may be null) and, when `hidden` is
// given, every position's last hidden state into hidden [ids.size(), hidden_size]. Checks
// `interrupt` before each call; returns how many tokens went in (all of them unless interrupted).
int64_t prefill_chunked(Model& model, AttentionCache& cache, std::span<const int32_t> ids,
                        float* last_logits, const std::atomic<bool>* interrupt = nullptr,
                        float* hidden = nullptr);

// StopConditions::max_new_tokens with no limit: generation runs until the context is full.
constexpr int64_t kNoTokenLimit = INT64_MAX;

// Which these are for a request: resolve_generation_policy (runtime/generation_policy.h).
struct StopConditions {
  int64_t max_new_tokens = 128;  // tokens sampled at most (EOS included), or kNoTokenLimit
  std::vector<int32_t> eos_ids;  // sampling one of these ends the text (it is not shown)
  std::vector<std::string> stop_strings;
};

enum class StopReason { Eos, StopString, MaxTokens, ContextFull, Interrupted };
const char* stop_reason_name(StopReason r);

struct GenerationResult {
  std::vector<int32_t> tokens;  // sampled, in order (the EOS that ended the text included)
  std::string text;             // what was streamed: special tokens left out, cut at a stop
  StopReason reason = StopReason::MaxTokens;
  int64_t prompt_tokens = 0;  // prefilled by this call
  // Seconds: prefill (the new prompt tokens), time to first token (prefill + its sampling), and
  // decoding (from the first token to the last, decode_tokens forward passes of one token).
  double prefill_s = 0, ttft_s = 0, decode_s = 0;
  int64_t decode_tokens = 0;
  SpeculativeStats speculative;  // this call's, with speculation enabled
};

class Generator {
 public:
  // The model and tokenizer must outlive the generator. cache_dtype: F32 or BF16.
  Generator(Model& model, const Tokenizer& tok, DType cache_dtype = DType::F32);

  // From now on, decode speculatively: the model's MTP module drafts n_draft tokens per step
  // (runtime/speculative_mtp.h). Greedy output is the same token for token; sampled output has
  // the same distribution. Call before the first generate(). Throws Error for a model without
  // an MTP module.
  void enable_speculation(int64_t n_draft, uint64_t draft_seed);
  bool speculative() const { return spec_ != nullptr; }

  // Prefills `new_ids` after the cached tokens (they join the sampler's context), then samples.
  // on_text receives the text as it is produced. `interrupt`, when set by another thread or a
  // signal handler, ends the call after the current forward pass (prefill included) with
  // StopReason::Interrupted; the cache keeps what was computed. Throws Error when the prompt does
  // not fit in the context.
  GenerationResult generate(std::span<const int32_t> new_ids, Sampler& sampler,
                            const StopConditions& stop,
                            const std::function<void(std::string_view)>& on_text,
                            const std::atomic<bool>* interrupt = nullptr);

  const std::vector<int32_t>& cached_ids() const { return ids_; }
  int64_t context_limit() const { return model_.config().max_position_embeddings; }
  void truncate(int64_t n);  // keep the first n cached tokens
  void clear() { truncate(0); }
  const KvCache& cache() const { return cache_; }

 private:
  // Feeds ids through prefill_chunked, leaving the last row's logits in logits_. When the
  // model throws (an id outside its vocabulary), the cache is rolled back to before the call.
  bool feed(std::span<const int32_t> ids, const std::atomic<bool>* interrupt);

  Model& model_;
  const Tokenizer& tok_;
  KvCache cache_;
  std::vector<int32_t> ids_;   // the tokens in the cache, in order
  std::vector<float> logits_;  // [vocab] of the last position fed
  std::unique_ptr<MtpSpeculator> spec_;
  std::vector<float> hidden_;  // [tokens fed, hidden_size] for spec_
};

}  // namespace dsv3

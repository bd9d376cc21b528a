#include "runtime/generate.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "base/timer.h"
#include "runtime/stream_text.h"

namespace dsv3 {
namespace {

bool interrupted(const std::atomic<bool>* flag) {
  return flag && flag->load(std::memory_order_relaxed);
}

}  // namespace

const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::Eos:
      return "eos";
    case StopReason::StopString:
      return "stop string";
    case StopReason::MaxTokens:
      return "token limit";
    case StopReason::ContextFull:
      return "context full";
    case StopReason::Interrupted:
      return "interrupted";
  }
  return "?";
}

Generator::Generator(Model& model, const Tokenizer& tok, DType cache_dtype)
    : model_(model),
      tok_(tok),
      cache_(model.cache_layout(), cache_dtype),
      logits_(model.config().vocab_size) {}

void Generator::enable_speculation(int64_t n_draft, uint64_t draft_seed) {
  DSV3_CHECK(ids_.empty(), "generate: enable speculation before the first generation");
  spec_ = std::make_unique<MtpSpeculator>(model_, n_draft, cache_.dtype(), tok_.vocab_size(),
                                          draft_seed);
}

void Generator::truncate(int64_t n) {
  DSV3_CHECK(n >= 0 && n <= static_cast<int64_t>(ids_.size()),
             "generate: cannot keep " + std::to_string(n) + " of " + std::to_string(ids_.size()) +
                 " cached tokens");
  cache_.truncate(n);
  ids_.resize(n);
  if (spec_) spec_->truncate(n);
}

int64_t prefill_chunked(Model& model, AttentionCache& cache, std::span<const int32_t> ids,
                        float* last_logits, const std::atomic<bool>* interrupt, float* hidden) {
  const int64_t d = model.config().hidden_size;
  const int64_t n = static_cast<int64_t>(ids.size());
  for (int64_t i = 0; i < n; i += kPrefillChunk) {
    if (interrupted(interrupt)) return i;
    const int64_t m = std::min(kPrefillChunk, n - i);
    // Only the last position's logits are needed: [1, vocab] rather than [m, vocab].
    const bool last = i + m == n;
    model.forward(ids.data() + i, m, cache, last ? last_logits : nullptr,
                  hidden ? hidden + i * d : nullptr, LogitsRows::Last);
  }
  return n;
}

bool Generator::feed(std::span<const int32_t> ids, const std::atomic<bool>* interrupt) {
  int64_t fed = 0;
  if (spec_) hidden_.resize(ids.size() * model_.config().hidden_size);
  try {
    fed = prefill_chunked(model_, cache_, ids, logits_.data(), interrupt,
                          spec_ ? hidden_.data() : nullptr);
  } catch (...) {
    cache_.truncate(static_cast<int64_t>(ids_.size()));  // earlier chunks are in the cache
    throw;
  }
  ids_.insert(ids_.end(), ids.begin(), ids.begin() + fed);
  if (spec_) spec_->observe(hidden_.data(), ids.first(fed));
  if (fed < static_cast<int64_t>(ids.size())) return false;
  // Rows past the tokenizer's vocabulary are the embedding's padding: no text, never sampled.
  for (size_t v = std::max<int64_t>(tok_.vocab_size(), 0); v < logits_.size(); ++v)
    logits_[v] = -INFINITY;
  return true;
}

GenerationResult Generator::generate(std::span<const int32_t> new_ids, Sampler& sampler,
                                     const StopConditions& stop,
                                     const std::function<void(std::string_view)>& on_text,
                                     const std::atomic<bool>* interrupt) {
  GenerationResult r;
  Timer clock;
  std::vector<int32_t> prompt(new_ids.begin(), new_ids.end());
  if (prompt.empty()) {
    // The logits of the last cached position are needed again: recompute that one position.
    DSV3_CHECK(!ids_.empty(), "generate: the prompt is empty", "give a prompt");
    prompt.push_back(ids_.back());
    truncate(static_cast<int64_t>(ids_.size()) - 1);
  } else {
    sampler.add_context(prompt);
  }
  const int64_t limit = context_limit();
  const int64_t needed = static_cast<int64_t>(ids_.size() + prompt.size());
  DSV3_CHECK(needed <= limit,
             "generate: the prompt needs " + std::to_string(needed) +
                 " positions but the model's context is " + std::to_string(limit),
             "shorten the prompt (or the conversation: /reset in dsv3 chat)");
  if (!feed(prompt, interrupt)) {
    r.reason = StopReason::Interrupted;
    r.prefill_s = clock.seconds();
    return r;
  }
  r.prompt_tokens = static_cast<int64_t>(prompt.size());
  r.prefill_s = clock.seconds();

  StreamDecoder decoder(tok_, /*skip_special=*/true);
  StopStringFilter stops(stop.stop_strings);
  auto emit = [&](const std::string& s) {
    if (s.empty()) return;
    r.text += s;
    if (on_text) on_text(s);
  };
  auto is_eos = [&](int32_t id) {
    return std::find(stop.eos_ids.begin(), stop.eos_ids.end(), id) != stop.eos_ids.end();
  };
  Timer decode_clock;
  // Takes a sampled (and accepted) token; false when it ends the generation (r.reason set).
  auto take = [&](int32_t id) {
    r.tokens.push_back(id);
    if (r.tokens.size() == 1) {
      r.ttft_s = clock.seconds();
      decode_clock.reset();
    }
    if (is_eos(id)) {
      r.reason = StopReason::Eos;
      return false;
    }
    emit(stops.push(decoder.push(id)));
    if (stops.stopped()) {
      r.reason = StopReason::StopString;
      return false;
    }
    // The token is fed only when another one will be sampled after it.
    if (static_cast<int64_t>(r.tokens.size()) >= stop.max_new_tokens) {
      r.reason = StopReason::MaxTokens;
      return false;
    }
    return true;
  };
  const SpeculativeStats spec_before = spec_ ? spec_->stats() : SpeculativeStats{};
  bool more = stop.max_new_tokens > 0;
  int32_t id = -1;
  if (more) {
    id = sampler.sample(logits_);
    sampler.accept(id);
    more = take(id);
  }
  while (more) {
    if (static_cast<int64_t>(ids_.size()) >= limit) {
      r.reason = StopReason::ContextFull;
      break;
    }
    if (spec_) {
      // One verification pass: `id` and the accepted drafts go into the cache, the last token
      // emitted waits for the next pass, as in the token-by-token branch.
      if (interrupted(interrupt)) {
        r.reason = StopReason::Interrupted;
        break;
      }
      const int64_t before = cache_.length();
      int32_t last = id;
      const int64_t left = stop.max_new_tokens - static_cast<int64_t>(r.tokens.size());
      spec_->step(cache_, id, sampler, left, [&](int32_t t) {
        ids_.push_back(last);
        last = t;
        return more = take(t);
      });
      id = last;
      r.decode_tokens += cache_.length() - before;
      continue;
    }
    if (!feed(std::span<const int32_t>(&id, 1), interrupt)) {
      r.reason = StopReason::Interrupted;
      break;
    }
    ++r.decode_tokens;
    id = sampler.sample(logits_);
    sampler.accept(id);
    more = take(id);
  }
  if (spec_) r.speculative = spec_->stats().since(spec_before);
  if (!r.tokens.empty()) r.decode_s = decode_clock.seconds();
  if (!stops.stopped()) {
    emit(stops.push(decoder.flush()));
    if (!stops.stopped()) emit(stops.flush());
    if (stops.stopped()) r.reason = StopReason::StopString;
  }
  return r;
}

}  // namespace dsv3

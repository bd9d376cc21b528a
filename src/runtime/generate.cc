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

void Generator::truncate(int64_t n) {
  DSV3_CHECK(n >= 0 && n <= static_cast<int64_t>(ids_.size()),
             "generate: cannot keep " + std::to_string(n) + " of " + std::to_string(ids_.size()) +
                 " cached tokens");
  cache_.truncate(n);
  ids_.resize(n);
}

int64_t prefill_chunked(Model& model, AttentionCache& cache, std::span<const int32_t> ids,
                        float* last_logits, const std::atomic<bool>* interrupt) {
  const int64_t n = static_cast<int64_t>(ids.size());
  for (int64_t i = 0; i < n; i += kPrefillChunk) {
    if (interrupted(interrupt)) return i;
    const int64_t m = std::min(kPrefillChunk, n - i);
    // Only the last position's logits are needed: [1, vocab] rather than [m, vocab].
    const bool last = i + m == n;
    model.forward(ids.data() + i, m, cache, last ? last_logits : nullptr, nullptr,
                  LogitsRows::Last);
  }
  return n;
}

bool Generator::feed(std::span<const int32_t> ids, const std::atomic<bool>* interrupt) {
  int64_t fed = 0;
  try {
    fed = prefill_chunked(model_, cache_, ids, logits_.data(), interrupt);
  } catch (...) {
    cache_.truncate(static_cast<int64_t>(ids_.size()));  // earlier chunks are in the cache
    throw;
  }
  ids_.insert(ids_.end(), ids.begin(), ids.begin() + fed);
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
  for (;;) {
    if (static_cast<int64_t>(r.tokens.size()) >= stop.max_new_tokens) {
      r.reason = StopReason::MaxTokens;
      break;
    }
    int32_t id = sampler.sample(logits_);
    sampler.accept(id);
    r.tokens.push_back(id);
    if (r.tokens.size() == 1) {
      r.ttft_s = clock.seconds();
      decode_clock.reset();
    }
    if (is_eos(id)) {
      r.reason = StopReason::Eos;
      break;
    }
    emit(stops.push(decoder.push(id)));
    if (stops.stopped()) {
      r.reason = StopReason::StopString;
      break;
    }
    // The token is fed only when another one will be sampled after it.
    if (static_cast<int64_t>(r.tokens.size()) >= stop.max_new_tokens) {
      r.reason = StopReason::MaxTokens;
      break;
    }
    if (static_cast<int64_t>(ids_.size()) >= limit) {
      r.reason = StopReason::ContextFull;
      break;
    }
    if (!feed(std::span<const int32_t>(&id, 1), interrupt)) {
      r.reason = StopReason::Interrupted;
      break;
    }
    ++r.decode_tokens;
  }
  if (!r.tokens.empty()) r.decode_s = decode_clock.seconds();
  if (!stops.stopped()) {
    emit(stops.push(decoder.flush()));
    if (!stops.stopped()) emit(stops.flush());
    if (stops.stopped()) r.reason = StopReason::StopString;
  }
  return r;
}

}  // namespace dsv3

// Generation policy: what one generation samples with and when it stops, decided from the model
// folder's defaults (generation_config.json, runtime/generation_config.h), its config and
// tokenizer, and what the user asked for. The CLI maps its flags into GenerationOverrides, an
// OpenAI-style server its request fields; neither decides a default itself.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/config.h"
#include "runtime/generate.h"
#include "runtime/generation_config.h"
#include "runtime/sampler.h"
#include "tokenizer/tokenizer.h"

namespace dsv3 {

// What the user set explicitly; an absent field takes the folder's value, else the built-in one.
struct GenerationOverrides {
  std::optional<double> temperature;  // 0: greedy
  std::optional<int64_t> top_k;       // 0: off
  std::optional<double> top_p;        // 1: off
  std::optional<double> min_p;        // 0: off
  std::optional<double> repetition_penalty;
  std::optional<double> frequency_penalty;
  std::optional<double> presence_penalty;
  std::optional<uint64_t> seed;           // absent: a random one (the result holds it)
  std::optional<int64_t> max_tokens;      // >= 0, or kNoTokenLimit
  bool ignore_eos = false;                // sample past end-of-sequence tokens
  std::vector<std::string> stop_strings;  // none empty
};

struct GenerationPolicy {
  SamplingParams sampling;  // seed always set
  StopConditions stop;
};

// Throws Error naming the field for an override out of range: exactly what
// resolve_generation_policy would throw for these overrides, so that a caller can reject them
// before it loads a model.
void check_generation_overrides(const GenerationOverrides& o);

// The policy of one generation, each value from the first that has it:
//  - sampling: the override, the folder's GenerationDefaults (generation_config.json or the
//    built-in defaults, see load_generation_defaults); the seed: the override, else a random one;
//  - max_new_tokens: the override, generation_config.json's max_new_tokens, default_max_tokens
//    (the caller's: kNoTokenLimit for a chat without a limit);
//  - eos_ids: none with ignore_eos; generation_config.json's eos_token_id; the tokenizer's EOS and
//    config.json's eos_token_id (when it differs), whichever exist;
//  - stop_strings: the overrides'.
// Throws Error as check_generation_overrides.
GenerationPolicy resolve_generation_policy(const GenerationOverrides& o,
                                           const GenerationDefaults& defaults,
                                           int64_t default_max_tokens, const ModelConfig& config,
                                           const Tokenizer& tok);

}  // namespace dsv3

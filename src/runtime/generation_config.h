// Generation defaults of a model folder: generation_config.json when present (sampling values and
// end-of-sequence ids), else dsv3's built-in defaults. What the user sets (command-line flags,
// request fields) goes over both in resolve_generation_policy (runtime/generation_policy.h).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/sampler.h"

namespace dsv3 {

struct GenerationDefaults {
  SamplingParams sampling;
  std::vector<int32_t>
      eos_ids;  // generation_config.json eos_token_id (an id or a list); may be empty
  int64_t max_new_tokens = -1;  // generation_config.json max_new_tokens; -1 when absent
  std::string source;           // where the values came from, for messages
};

// With generation_config.json, absent fields take transformers' GenerationConfig defaults
// (temperature 1, top_k 50, top_p 1, no min_p, repetition_penalty 1) and do_sample false or
// absent means greedy, so that dsv3 samples as transformers' generate() would for that folder.
// Without the file: llama.cpp's defaults (temperature 0.8, top_k 40, top_p 0.95, min_p 0.05).
// Errors name the file and the field.
GenerationDefaults load_generation_defaults(const std::string& model_dir);

// The same from a parsed document (`source` names it in errors).
GenerationDefaults parse_generation_config(const std::string& text, const std::string& source);

}  // namespace dsv3

#include "runtime/generation_policy.h"

#include <random>

#include "base/error.h"

namespace dsv3 {
namespace {

// The overridden sampling fields of o written over p (the seed apart).
void apply_sampling(const GenerationOverrides& o, SamplingParams& p) {
  p.temperature = o.temperature.value_or(p.temperature);
  p.top_k = o.top_k.value_or(p.top_k);
  p.top_p = o.top_p.value_or(p.top_p);
  p.min_p = o.min_p.value_or(p.min_p);
  p.repetition_penalty = o.repetition_penalty.value_or(p.repetition_penalty);
  p.frequency_penalty = o.frequency_penalty.value_or(p.frequency_penalty);
  p.presence_penalty = o.presence_penalty.value_or(p.presence_penalty);
}

std::vector<int32_t> eos_ids(const GenerationDefaults& d, const ModelConfig& c,
                             const Tokenizer& tok) {
  if (!d.eos_ids.empty()) return d.eos_ids;
  std::vector<int32_t> ids;
  if (tok.eos_id() >= 0) ids.push_back(tok.eos_id());
  if (c.eos_token_id >= 0 && c.eos_token_id != tok.eos_id())
    ids.push_back(static_cast<int32_t>(c.eos_token_id));
  return ids;
}

}  // namespace

void check_generation_overrides(const GenerationOverrides& o) {
  SamplingParams p;  // every field valid: what fails is an override
  apply_sampling(o, p);
  p.validate();
  if (o.max_tokens)
    DSV3_CHECK(*o.max_tokens >= 0, "max_tokens " + std::to_string(*o.max_tokens) + " < 0");
  for (const auto& s : o.stop_strings) DSV3_CHECK(!s.empty(), "stop: empty stop string");
}

GenerationPolicy resolve_generation_policy(const GenerationOverrides& o,
                                           const GenerationDefaults& defaults,
                                           int64_t default_max_tokens, const ModelConfig& config,
                                           const Tokenizer& tok) {
  check_generation_overrides(o);
  GenerationPolicy g;
  g.sampling = defaults.sampling;
  apply_sampling(o, g.sampling);
  g.sampling.seed = o.seed ? *o.seed : std::random_device{}();
  g.sampling.validate();
  g.stop.max_new_tokens = o.max_tokens                   ? *o.max_tokens
                          : defaults.max_new_tokens >= 0 ? defaults.max_new_tokens
                                                         : default_max_tokens;
  if (!o.ignore_eos) g.stop.eos_ids = eos_ids(defaults, config, tok);
  g.stop.stop_strings = o.stop_strings;
  return g;
}

}  // namespace dsv3

#include "runtime/generation_config.h"

#include <cstdint>

#include "base/error.h"
#include "base/file.h"
#include "base/json.h"

namespace dsv3 {

GenerationDefaults parse_generation_config(const std::string& text, const std::string& source) {
  Json j = Json::parse(text, source);
  DSV3_CHECK(j.is_object(), source + ": expected a JSON object");
  GenerationDefaults d;
  d.source = source;
  SamplingParams& s = d.sampling;
  s.temperature = 1.0;  // transformers GenerationConfig defaults
  s.top_k = 50;
  s.top_p = 1.0;
  auto num = [&](const char* key, double& out) {
    if (const Json* v = j.find(key); v && !v->is_null()) out = v->as_double(source + ": " + key);
  };
  num("temperature", s.temperature);
  num("top_p", s.top_p);
  num("min_p", s.min_p);
  num("repetition_penalty", s.repetition_penalty);
  if (const Json* v = j.find("top_k"); v && !v->is_null()) s.top_k = v->as_int(source + ": top_k");
  bool do_sample = false;
  if (const Json* v = j.find("do_sample"); v && !v->is_null())
    do_sample = v->as_bool(source + ": do_sample");
  if (!do_sample) s.temperature = 0;
  if (const Json* v = j.find("max_new_tokens"); v && !v->is_null())
    d.max_new_tokens = v->as_int(source + ": max_new_tokens");
  if (const Json* v = j.find("eos_token_id"); v && !v->is_null()) {
    auto add = [&](const Json& e) {
      int64_t id = e.as_int(source + ": eos_token_id");
      DSV3_CHECK(id >= 0 && id <= INT32_MAX,
                 source + ": eos_token_id " + std::to_string(id) + " is not a token id");
      d.eos_ids.push_back(static_cast<int32_t>(id));
    };
    if (v->is_array()) {
      for (const Json& e : v->as_array()) add(e);
    } else {
      add(*v);
    }
  }
  try {
    s.validate();
  } catch (const Error& e) {
    throw Error(source + ": " + e.what(), e.hint());
  }
  return d;
}

GenerationDefaults load_generation_defaults(const std::string& model_dir) {
  std::string path = path_join(model_dir, "generation_config.json");
  if (file_exists(path)) return parse_generation_config(read_file(path), path);
  GenerationDefaults d;  // llama.cpp common_params_sampling defaults
  d.sampling.temperature = 0.8;
  d.sampling.top_k = 40;
  d.sampling.top_p = 0.95;
  d.sampling.min_p = 0.05;
  d.source = "built-in defaults (no generation_config.json)";
  return d;
}

}  // namespace dsv3

// Generation policy: an override beats generation_config.json, which beats the built-in defaults;
// EOS ids from generation_config.json, else the tokenizer's and config.json's; ignore_eos; the
// token limit; and the checks on overrides.
#include "runtime/generation_policy.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/error.h"

namespace dsv3 {
namespace {

using Ids = std::vector<int32_t>;

// A tokenizer of three tokens; "</s>" (id 2) is its EOS when eos is true.
Tokenizer tokenizer(bool eos) {
  const char* json = R"({"added_tokens": [{"id": 2, "content": "</s>", "special": true,
      "single_word": false, "lstrip": false, "rstrip": false, "normalized": false}],
    "normalizer": null, "decoder": {"type": "ByteLevel"},
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false},
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": []}})";
  return Tokenizer::from_json(json, eos ? R"({"eos_token": "</s>"})" : "{}");
}

ModelConfig config(int64_t eos_token_id) {
  ModelConfig c;
  c.eos_token_id = eos_token_id;
  return c;
}

const GenerationDefaults& file_defaults() {  // a generation_config.json as DeepSeek-R1 ships it
  static const GenerationDefaults d = parse_generation_config(
      R"({"do_sample": true, "temperature": 0.6, "top_p": 0.95, "eos_token_id": [7, 8],
          "max_new_tokens": 50})",
      "generation_config.json");
  return d;
}

GenerationPolicy resolve(const GenerationOverrides& o, const GenerationDefaults& d,
                         int64_t default_max_tokens = 256, int64_t config_eos = 2,
                         bool tokenizer_eos = true) {
  return resolve_generation_policy(o, d, default_max_tokens, config(config_eos),
                                   tokenizer(tokenizer_eos));
}

TEST(GenerationPolicy, FolderDefaultsWithoutOverrides) {
  const GenerationPolicy g = resolve({}, file_defaults());
  EXPECT_DOUBLE_EQ(g.sampling.temperature, 0.6);
  EXPECT_DOUBLE_EQ(g.sampling.top_p, 0.95);
  EXPECT_EQ(g.sampling.top_k, 50);  // transformers' default: the file has none
  EXPECT_EQ(g.stop.max_new_tokens, 50);
  EXPECT_EQ(g.stop.eos_ids, (Ids{7, 8}));
  EXPECT_TRUE(g.stop.stop_strings.empty());
}

TEST(GenerationPolicy, BuiltInDefaultsWithoutTheFile) {
  const GenerationPolicy g = resolve({}, load_generation_defaults("/nonexistent-dsv3-dir"));
  EXPECT_DOUBLE_EQ(g.sampling.temperature, 0.8);
  EXPECT_EQ(g.sampling.top_k, 40);
  EXPECT_DOUBLE_EQ(g.sampling.top_p, 0.95);
  EXPECT_DOUBLE_EQ(g.sampling.min_p, 0.05);
  EXPECT_EQ(g.stop.max_new_tokens, 256);  // the caller's default
}

TEST(GenerationPolicy, OverridesBeatTheFile) {
  GenerationOverrides o;
  o.temperature = 0;
  o.top_k = 3;
  o.top_p = 0.5;
  o.min_p = 0.1;
  o.repetition_penalty = 1.2;
  o.frequency_penalty = 0.3;
  o.presence_penalty = -0.4;
  o.seed = 42;
  o.max_tokens = 9;
  o.stop_strings = {"\n\n", "END"};
  const GenerationPolicy g = resolve(o, file_defaults());
  EXPECT_TRUE(g.sampling.greedy());
  EXPECT_EQ(g.sampling.top_k, 3);
  EXPECT_DOUBLE_EQ(g.sampling.top_p, 0.5);
  EXPECT_DOUBLE_EQ(g.sampling.min_p, 0.1);
  EXPECT_DOUBLE_EQ(g.sampling.repetition_penalty, 1.2);
  EXPECT_DOUBLE_EQ(g.sampling.frequency_penalty, 0.3);
  EXPECT_DOUBLE_EQ(g.sampling.presence_penalty, -0.4);
  EXPECT_EQ(g.sampling.seed, 42u);
  EXPECT_EQ(g.stop.max_new_tokens, 9);
  EXPECT_EQ(g.stop.stop_strings, (std::vector<std::string>{"\n\n", "END"}));
  EXPECT_EQ(g.stop.eos_ids, (Ids{7, 8}));  // not an override
}

TEST(GenerationPolicy, OneOverrideLeavesTheOtherFields) {
  GenerationOverrides o;
  o.top_k = 5;
  const GenerationPolicy g = resolve(o, file_defaults());
  EXPECT_EQ(g.sampling.top_k, 5);
  EXPECT_DOUBLE_EQ(g.sampling.temperature, 0.6);
  EXPECT_DOUBLE_EQ(g.sampling.top_p, 0.95);
}

TEST(GenerationPolicy, TokenLimit) {
  GenerationDefaults no_limit = file_defaults();
  no_limit.max_new_tokens = -1;  // the file has no max_new_tokens
  EXPECT_EQ(resolve({}, no_limit, 256).stop.max_new_tokens, 256);
  EXPECT_EQ(resolve({}, no_limit, kNoTokenLimit).stop.max_new_tokens, kNoTokenLimit);
  EXPECT_EQ(resolve({}, file_defaults(), kNoTokenLimit).stop.max_new_tokens, 50);
  GenerationOverrides o;
  o.max_tokens = kNoTokenLimit;
  EXPECT_EQ(resolve(o, file_defaults()).stop.max_new_tokens, kNoTokenLimit);
  o.max_tokens = 0;
  EXPECT_EQ(resolve(o, file_defaults()).stop.max_new_tokens, 0);
}

TEST(GenerationPolicy, EosIdsFallBackToTheTokenizerAndConfig) {
  GenerationDefaults d = file_defaults();
  d.eos_ids.clear();  // generation_config.json without eos_token_id
  EXPECT_EQ(resolve({}, d, 256, /*config_eos=*/2).stop.eos_ids, (Ids{2}));  // the same id once
  EXPECT_EQ(resolve({}, d, 256, /*config_eos=*/1).stop.eos_ids, (Ids{2, 1}));
  EXPECT_EQ(resolve({}, d, 256, /*config_eos=*/-1).stop.eos_ids, (Ids{2}));
  EXPECT_EQ(resolve({}, d, 256, /*config_eos=*/1, /*tokenizer_eos=*/false).stop.eos_ids, (Ids{1}));
  EXPECT_TRUE(resolve({}, d, 256, -1, false).stop.eos_ids.empty());
}

TEST(GenerationPolicy, IgnoreEosEmptiesThem) {
  GenerationOverrides o;
  o.ignore_eos = true;
  EXPECT_TRUE(resolve(o, file_defaults()).stop.eos_ids.empty());
  GenerationDefaults d = file_defaults();
  d.eos_ids.clear();
  EXPECT_TRUE(resolve(o, d).stop.eos_ids.empty());
}

TEST(GenerationPolicy, BadOverridesAreNamedErrorsBeforeAnyModel) {
  auto message = [](const GenerationOverrides& o) -> std::string {
    try {
      check_generation_overrides(o);
    } catch (const Error& e) {
      EXPECT_THROW(resolve(o, file_defaults()), Error);  // the same check
      return e.what();
    }
    return "";
  };
  GenerationOverrides o;
  EXPECT_EQ(message(o), "");
  o.top_p = 1.5;
  EXPECT_NE(message(o).find("top_p"), std::string::npos);
  o = {};
  o.temperature = -1;
  EXPECT_NE(message(o).find("temperature"), std::string::npos);
  o = {};
  o.max_tokens = -1;
  EXPECT_NE(message(o).find("max_tokens"), std::string::npos);
  o = {};
  o.stop_strings = {"x", ""};
  EXPECT_NE(message(o).find("empty stop string"), std::string::npos);
}

}  // namespace
}  // namespace dsv3

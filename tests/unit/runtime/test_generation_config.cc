// generation_config.json: transformers' semantics for present and absent fields, and named errors.
#include "runtime/generation_config.h"

#include <gtest/gtest.h>

#include <string>

#include "base/error.h"

namespace dsv3 {
namespace {

TEST(GenerationConfig, DeepSeekR1File) {
  // The file shipped with DeepSeek-R1 (values as published in its Hugging Face repository).
  auto d = parse_generation_config(
      R"({"_from_model_config": true, "bos_token_id": 0, "eos_token_id": 1, "do_sample": true,
          "temperature": 0.6, "top_p": 0.95, "transformers_version": "4.46.3"})",
      "generation_config.json");
  EXPECT_DOUBLE_EQ(d.sampling.temperature, 0.6);
  EXPECT_DOUBLE_EQ(d.sampling.top_p, 0.95);
  EXPECT_EQ(d.sampling.top_k, 50);  // transformers' default when absent
  EXPECT_EQ(d.sampling.min_p, 0.0);
  ASSERT_EQ(d.eos_ids.size(), 1u);
  EXPECT_EQ(d.eos_ids[0], 1);
}

TEST(GenerationConfig, WithoutDoSampleIsGreedyAsTransformers) {
  auto d = parse_generation_config(R"({"temperature": 0.7, "eos_token_id": [151643, 151645]})",
                                   "g.json");
  EXPECT_TRUE(d.sampling.greedy());
  EXPECT_EQ(d.eos_ids, (std::vector<int32_t>{151643, 151645}));
}

TEST(GenerationConfig, ErrorsNameTheFileAndField) {
  try {
    parse_generation_config(R"({"do_sample": true, "top_p": "high"})", "m/generation_config.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("m/generation_config.json"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("top_p"), std::string::npos);
  }
  EXPECT_THROW(parse_generation_config(R"({"do_sample": true, "top_p": 1.5})", "g"), Error);
  EXPECT_THROW(parse_generation_config(R"({"eos_token_id": -3})", "g"), Error);
  EXPECT_THROW(parse_generation_config(R"({"eos_token_id": 4294967296})", "g"), Error);
  EXPECT_THROW(parse_generation_config(R"([1])", "g"), Error);
  EXPECT_THROW(parse_generation_config(R"({"top_k": 1, "top_k": 2})", "g"), Error);
}

TEST(GenerationConfig, BuiltInDefaultsWithoutTheFile) {
  auto d = load_generation_defaults("/nonexistent-dir-for-dsv3-test");
  EXPECT_DOUBLE_EQ(d.sampling.temperature, 0.8);
  EXPECT_EQ(d.sampling.top_k, 40);
  EXPECT_TRUE(d.eos_ids.empty());
}

}  // namespace
}  // namespace dsv3

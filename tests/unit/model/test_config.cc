// config.json parsing and validation (SPEC §1.1, §1.3, §1.5, §7, §9) and the presets.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "base/error.h"
#include "base/json.h"
#include "model/config.h"
#include "model/presets.h"

namespace dsv3 {
namespace {

// A small valid deepseek_v3 config; tests edit one field at a time.
Json base_v3() {
  return Json::parse(R"({
    "model_type": "deepseek_v3", "vocab_size": 1000, "hidden_size": 64, "intermediate_size": 128,
    "num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": 256,
    "q_lora_rank": 32, "kv_lora_rank": 16, "qk_nope_head_dim": 8, "qk_rope_head_dim": 4,
    "v_head_dim": 8, "n_routed_experts": 8, "num_experts_per_tok": 2, "moe_intermediate_size": 16,
    "n_group": 2, "topk_group": 1, "first_k_dense_replace": 1})");
}

Json base_qwen2() {
  return Json::parse(R"({
    "model_type": "qwen2", "vocab_size": 1000, "hidden_size": 64, "intermediate_size": 128,
    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "max_position_embeddings": 256})");
}

// The message of the Error that parsing `j` throws ("" when it parses).
std::string parse_error(const Json& j) {
  try {
    parse_config(j, "test/config.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_REJECTED(json, ...)                                                              \
  do {                                                                                          \
    std::string msg = parse_error(json);                                                        \
    ASSERT_FALSE(msg.empty()) << "accepted, expected an error";                                 \
    EXPECT_NE(msg.find("test/config.json"), std::string::npos) << msg;                          \
    for (const char* part : {__VA_ARGS__}) EXPECT_NE(msg.find(part), std::string::npos) << msg; \
  } while (0)

TEST(Config, BaseConfigsParse) {
  ModelConfig c = parse_config(base_v3());
  EXPECT_EQ(c.arch, Arch::DeepseekV3);
  EXPECT_EQ(c.scoring_func, "sigmoid");  // DeepseekV3Config defaults
  EXPECT_EQ(c.topk_method, "noaux_tc");
  EXPECT_TRUE(c.norm_topk_prob);
  EXPECT_EQ(c.num_key_value_heads, 4);
  ModelConfig q = parse_config(base_qwen2());
  EXPECT_EQ(q.arch, Arch::Qwen2);
  EXPECT_EQ(q.head_dim, 16);
  EXPECT_TRUE(q.attention_bias);
}

TEST(Config, MissingRequiredFieldsAreNamed) {
  for (const char* f : {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                        "num_attention_heads", "max_position_embeddings", "kv_lora_rank",
                        "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim", "num_experts_per_tok",
                        "moe_intermediate_size", "model_type"}) {
    Json j = base_v3();
    auto& o = j.as_object();
    for (auto it = o.begin(); it != o.end(); ++it)
      if (it->first == f) {
        o.erase(it);
        break;
      }
    EXPECT_REJECTED(j, f, "missing");
  }
}

TEST(Config, TypeErrorsAreNamed) {
  Json j = base_v3();
  j["hidden_size"] = Json("64");
  EXPECT_REJECTED(j, "hidden_size", "integer");
  j = base_v3();
  j["rms_norm_eps"] = Json("small");
  EXPECT_REJECTED(j, "rms_norm_eps", "number");
  j = base_v3();
  j["norm_topk_prob"] = Json(1);
  EXPECT_REJECTED(j, "norm_topk_prob");
  j = base_v3();
  j["num_hidden_layers"] = Json(2.5);
  EXPECT_REJECTED(j, "num_hidden_layers", "integer");
  j = base_v3();
  j["num_hidden_layers"] = Json(2.0);  // an integral double is accepted
  EXPECT_EQ(parse_error(j), "");
}

TEST(Config, InconsistentFieldsAreNamed) {
  Json j = base_v3();
  j["num_attention_heads"] = Json(5);
  EXPECT_REJECTED(j, "hidden_size", "num_attention_heads", "divisible");
  j = base_v3();
  j["kv_lora_rank"] = Json(0);
  EXPECT_REJECTED(j, "kv_lora_rank", "positive");
  j = base_v3();
  j["num_experts_per_tok"] = Json(9);
  EXPECT_REJECTED(j, "num_experts_per_tok", "n_routed_experts");
  j = base_v3();
  j["topk_group"] = Json(3);
  EXPECT_REJECTED(j, "topk_group", "n_group");
  j = base_v3();
  j["n_group"] = Json(3);
  EXPECT_REJECTED(j, "n_routed_experts", "n_group");
  j = base_v3();
  j["scoring_func"] = Json("relu");
  EXPECT_REJECTED(j, "scoring_func", "relu");
  j = base_v3();
  j["topk_method"] = Json("random");
  EXPECT_REJECTED(j, "topk_method", "random");
  j = base_v3();
  j["hidden_size"] = Json(-64);
  EXPECT_REJECTED(j, "hidden_size");
  j = base_v3();
  j["n_shared_experts"] = Json(-1);
  EXPECT_REJECTED(j, "n_shared_experts", "negative");
  j = base_v3();
  j["num_key_value_heads"] = Json(2);
  EXPECT_REJECTED(j, "num_key_value_heads");
  j = base_v3();
  j["num_experts_per_tok"] = Json(6);  // topk_group 1 of 2 groups of 4 cannot supply 6 experts
  EXPECT_REJECTED(j, "topk_group", "num_experts_per_tok");

  Json q = base_qwen2();
  q["num_key_value_heads"] = Json(3);
  EXPECT_REJECTED(q, "num_attention_heads", "num_key_value_heads");
  q = base_qwen2();
  q["use_sliding_window"] = Json(true);
  EXPECT_REJECTED(q, "use_sliding_window");
}

// Keys dsv3 has no field for (aux_loss_alpha, sliding_window, ...) are written back unchanged, and
// a Llama 3.1 eos list keeps its form.
TEST(Config, UnknownKeysAndEosListsSurviveTheRoundTrip) {
  Json j = base_qwen2();
  j["sliding_window"] = Json(4096);
  j["eos_token_id"] = Json::parse("[7, 8, 9]");
  ModelConfig c = parse_config(j);
  EXPECT_EQ(c.eos_token_id, 7);
  Json out = config_to_json(c);
  EXPECT_EQ(out.at("sliding_window").as_int(), 4096);
  EXPECT_EQ(out.at("eos_token_id").size(), 3u);
  c.eos_token_id = 3;
  EXPECT_EQ(config_to_json(c).at("eos_token_id").as_int(), 3);
  j["eos_token_id"] = Json("x");
  EXPECT_REJECTED(j, "eos_token_id");
}

TEST(Config, UnknownModelTypeIsRefusedByName) {
  Json j = base_v3();
  j["model_type"] = Json("mixtral");
  EXPECT_REJECTED(j, "model_type", "mixtral");
}

TEST(Config, RopeScalingTypeOrRopeType) {
  Json j = base_v3();
  j["rope_scaling"] =
      Json::parse(R"({"type": "yarn", "factor": 4, "original_max_position_embeddings": 64})");
  ModelConfig a = parse_config(j);
  j["rope_scaling"] =
      Json::parse(R"({"rope_type": "yarn", "factor": 4, "original_max_position_embeddings": 64})");
  ModelConfig b = parse_config(j);
  EXPECT_EQ(a.rope_scaling.type, "yarn");
  EXPECT_EQ(b.rope_scaling.type, "yarn");
  EXPECT_EQ(b.rope_scaling.beta_fast, 32.0);
  EXPECT_EQ(b.rope_scaling.mscale_all_dim, 0.0);  // HF default: no attention-scale change
  j["rope_scaling"] = Json::parse(R"({"type": "yarn", "rope_type": "linear", "factor": 4})");
  EXPECT_REJECTED(j, "rope_scaling.type", "rope_type");
  j["rope_scaling"] = Json::parse(R"({"type": "ntk", "factor": 4})");
  EXPECT_REJECTED(j, "rope_scaling.type", "ntk");
  j["rope_scaling"] = Json::parse(R"({"type": "yarn", "factor": 4})");
  EXPECT_REJECTED(j, "rope_scaling.original_max_position_embeddings", "missing");
  j["rope_scaling"] =
      Json::parse(R"({"type": "yarn", "factor": 0.5, "original_max_position_embeddings": 64})");
  EXPECT_REJECTED(j, "rope_scaling.factor");
  j["rope_scaling"] = Json();
  EXPECT_EQ(parse_config(j).rope_scaling.type, "");
}

TEST(Config, Fp8QuantizationConfig) {
  Json j = base_v3();
  j["quantization_config"] = Json::parse(
      R"({"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8", "weight_block_size": [128, 128]})");
  ModelConfig c = parse_config(j);
  EXPECT_TRUE(c.fp8_weights);
  EXPECT_EQ(c.weight_block_rows, 128);
  EXPECT_EQ(c.weight_block_cols, 128);
  j["quantization_config"]["weight_block_size"] = Json::parse("[128, 64]");
  EXPECT_REJECTED(j, "quantization_config.weight_block_size");
  j["quantization_config"] = Json::parse(R"({"quant_method": "gptq"})");
  EXPECT_REJECTED(j, "quantization_config.quant_method", "gptq");
}

// SPEC §1.3: V3 0.0721688 * 1.873854 = 0.1352338; V2-Lite (mscale_all_dim 0.707) 0.1147214.
// Recomputed here from the formula: 192^-0.5 * (0.1 * mscale_all_dim * ln 40 + 1)^2.
TEST(Config, SoftmaxScale) {
  ModelConfig v3 = preset_config("deepseek-v3");
  ModelConfig v2 = preset_config("deepseek-v2-lite");
  double m3 = 0.1 * 1.0 * std::log(40.0) + 1, m2 = 0.1 * 0.707 * std::log(40.0) + 1;
  EXPECT_NEAR(v3.softmax_scale(), m3 * m3 / std::sqrt(192.0), 1e-15);
  EXPECT_NEAR(v2.softmax_scale(), m2 * m2 / std::sqrt(192.0), 1e-15);
  EXPECT_NEAR(v3.softmax_scale(), 0.1352338, 5e-8);  // the SPEC's 7 printed digits
  EXPECT_NEAR(v2.softmax_scale(), 0.1147214, 5e-8);
  EXPECT_NEAR(preset_config("moonlight-16b-a3b").softmax_scale(), 1 / std::sqrt(192.0), 1e-15);
  EXPECT_NEAR(preset_config("r1-distill-qwen-7b").softmax_scale(), 1 / std::sqrt(128.0), 1e-15);
}

// SPEC §1.5: 576 elements per token per layer for V3; SPEC §7: FP16 KV per token 28/56/192 KiB.
TEST(Config, KvCacheElements) {
  EXPECT_EQ(preset_config("deepseek-v3").kv_cache_elems_per_token_layer(), 576);
  ModelConfig v3 = preset_config("deepseek-v3");
  EXPECT_EQ(v3.kv_cache_elems_per_token_layer() * v3.num_hidden_layers, 35136);
  const std::pair<const char*, int64_t> kib[] = {
      {"r1-distill-qwen-1.5b", 28}, {"r1-distill-qwen-7b", 56}, {"r1-distill-qwen-14b", 192}};
  for (const auto& [name, k] : kib) {
    ModelConfig c = preset_config(name);
    EXPECT_EQ(c.kv_cache_elems_per_token_layer() * c.num_hidden_layers * 2, k * 1024) << name;
  }
}

// SPEC §1.1 and §7 values, written out independently of the preset table.
TEST(Presets, RealShapesMatchTheSpec) {
  ModelConfig v3 = preset_config("deepseek-v3");
  EXPECT_EQ(v3.hidden_size, 7168);
  EXPECT_EQ(v3.num_hidden_layers, 61);
  EXPECT_EQ(v3.num_attention_heads, 128);
  EXPECT_EQ(v3.q_lora_rank, 1536);
  EXPECT_EQ(v3.kv_lora_rank, 512);
  EXPECT_EQ(v3.intermediate_size, 18432);
  EXPECT_EQ(v3.moe_intermediate_size, 2048);
  EXPECT_EQ(v3.first_k_dense_replace, 3);
  EXPECT_EQ(v3.n_routed_experts, 256);
  EXPECT_EQ(v3.n_shared_experts, 1);
  EXPECT_EQ(v3.num_experts_per_tok, 8);
  EXPECT_EQ(v3.n_group, 8);
  EXPECT_EQ(v3.topk_group, 4);
  EXPECT_EQ(v3.routed_scaling_factor, 2.5);
  EXPECT_EQ(v3.vocab_size, 129280);
  EXPECT_EQ(v3.rope_scaling.factor, 40);
  EXPECT_EQ(v3.rope_scaling.original_max_position_embeddings, 4096);
  EXPECT_EQ(v3.max_position_embeddings, 163840);
  EXPECT_EQ(v3.num_nextn_predict_layers, 1);

  ModelConfig v2 = preset_config("deepseek-v2-lite");
  EXPECT_EQ(v2.arch, Arch::DeepseekV2);
  EXPECT_EQ(v2.q_lora_rank, 0);
  EXPECT_EQ(v2.scoring_func, "softmax");
  EXPECT_EQ(v2.topk_method, "greedy");
  EXPECT_FALSE(v2.norm_topk_prob);
  EXPECT_EQ(v2.intermediate_size, 10944);
  EXPECT_EQ(v2.vocab_size, 102400);
  EXPECT_EQ(v2.num_nextn_predict_layers, 0);

  ModelConfig ml = preset_config("moonlight-16b-a3b");
  EXPECT_EQ(ml.arch, Arch::DeepseekV3);
  EXPECT_EQ(ml.routed_scaling_factor, 2.446);
  EXPECT_EQ(ml.rope_theta, 50000);
  EXPECT_EQ(ml.rope_scaling.type, "");
  EXPECT_EQ(ml.vocab_size, 163840);
  EXPECT_EQ(ml.rms_norm_eps, 1e-5);

  ModelConfig q14 = preset_config("r1-distill-qwen-14b");
  EXPECT_EQ(q14.hidden_size, 5120);
  EXPECT_EQ(q14.num_hidden_layers, 48);
  EXPECT_EQ(q14.num_key_value_heads, 8);
  EXPECT_EQ(q14.intermediate_size, 13824);
  EXPECT_EQ(q14.rope_theta, 1e6);
  EXPECT_EQ(q14.bos_token_id, 151643);

  ModelConfig ll = preset_config("r1-distill-llama-8b");
  EXPECT_EQ(ll.arch, Arch::Llama);
  EXPECT_EQ(ll.rope_scaling.type, "llama3");
  EXPECT_EQ(ll.rope_scaling.factor, 8);
  EXPECT_EQ(ll.rope_scaling.low_freq_factor, 1);
  EXPECT_EQ(ll.rope_scaling.high_freq_factor, 4);
  EXPECT_EQ(ll.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_EQ(ll.rope_theta, 500000);
  EXPECT_EQ(ll.vocab_size, 128256);
  EXPECT_FALSE(ll.attention_bias);
}

TEST(Presets, TinyHasEveryFeatureOn) {
  ModelConfig t = preset_config("tiny");
  EXPECT_GT(t.q_lora_rank, 0);
  EXPECT_GT(t.n_group, 1);
  EXPECT_LT(t.topk_group, t.n_group);
  EXPECT_GT(t.n_shared_experts, 0);
  EXPECT_GT(t.first_k_dense_replace, 0);
  EXPECT_EQ(t.num_nextn_predict_layers, 1);
  EXPECT_EQ(t.rope_scaling.type, "yarn");
  EXPECT_EQ(t.vocab_size, 4096);
  EXPECT_EQ(preset_tokenizer("tiny"), "dsv3-en-4k");
  EXPECT_EQ(preset_config("small").vocab_size, 16384);
}

// dsv3 init looks for the preset's tokenizer in assets/tokenizers/NAME and .cache/assets/NAME; the
// names must be the folders scripts/fetch-assets.sh creates, or the real shapes get no tokenizer.
TEST(Presets, TokenizerNamesAreTheFetchedFolders) {
  EXPECT_EQ(preset_tokenizer("small"), "dsv3-en-16k");
  EXPECT_EQ(preset_tokenizer("deepseek-v3"), "deepseek_v3");
  for (const char* q : {"r1-distill-qwen-1.5b", "r1-distill-qwen-7b", "r1-distill-qwen-14b"})
    EXPECT_EQ(preset_tokenizer(q), "qwen2.5-r1-distill") << q;
}

TEST(Presets, UnknownPresetNamesTheKnownOnes) {
  try {
    preset_config("deepseek-v4");
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("deepseek-v4"), std::string::npos);
    EXPECT_NE(e.hint().find("deepseek-v3"), std::string::npos);
  }
}

// config_to_json writes what parse_config reads back, for every preset (a write/read round trip).
TEST(Presets, ConfigJsonRoundTrip) {
  for (const std::string& name : preset_names()) {
    ModelConfig a = preset_config(name);
    a.fp8_weights = a.is_mla();
    ModelConfig b = parse_config(Json::parse(config_to_json(a).dump(2)), name);
    EXPECT_EQ(config_to_json(a).dump(), config_to_json(b).dump()) << name;
    EXPECT_EQ(b.fp8_weights, a.is_mla()) << name;
    EXPECT_EQ(b.softmax_scale(), a.softmax_scale()) << name;
    b.fp8_weights = false;  // dropping quantization_config removes it from the JSON
    EXPECT_FALSE(parse_config(config_to_json(b), name).fp8_weights) << name;
  }
}

}  // namespace
}  // namespace dsv3

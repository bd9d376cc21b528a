// model_size() equals the parameter table it never builds, and configs over dsv3's limits are
// refused by parse_config, naming the limit, before anything is allocated (issue 19).
#include <gtest/gtest.h>

#include <string>

#include "base/error.h"
#include "base/json.h"
#include "model/config.h"
#include "model/param_table.h"
#include "model/presets.h"

namespace dsv3 {
namespace {

void expect_size_of_table(const ModelConfig& c, const std::string& what) {
  double tensors = 0, params = 0;
  for (const ParamSpec& p : param_table(c)) {
    tensors += 1;
    params += static_cast<double>(shape_numel(p.shape));
  }
  const ModelSize n = model_size(c);
  EXPECT_EQ(n.tensors, tensors) << what;
  EXPECT_EQ(n.parameters, params) << what;
}

TEST(ModelSize, EqualsTheTableForEveryPresetAndLayout) {
  for (const std::string& name : preset_names()) {
    const ModelConfig c = preset_config(name);
    expect_size_of_table(c, name);
    if (c.n_routed_experts == 0) continue;
    ModelConfig v = c;  // layouts the presets do not have
    v.first_k_dense_replace = 3;
    v.moe_layer_freq = 2;
    v.num_nextn_predict_layers = 3;
    expect_size_of_table(v, name + " with dense layers, every second MoE, 3 MTP");
    v.first_k_dense_replace = v.num_hidden_layers + 1;  // MTP layer past it: MoE
    v.topk_method = "greedy";
    v.tie_word_embeddings = true;
    expect_size_of_table(v, name + " with MoE only in MTP, greedy, tied");
  }
}

Json config_with(const std::string& key, int64_t value) {
  Json j = Json::parse(R"({
    "model_type": "deepseek_v3", "vocab_size": 1000, "hidden_size": 64, "intermediate_size": 128,
    "num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": 256,
    "q_lora_rank": 32, "kv_lora_rank": 16, "qk_nope_head_dim": 8, "qk_rope_head_dim": 4,
    "v_head_dim": 8, "n_routed_experts": 8, "num_experts_per_tok": 2, "moe_intermediate_size": 16,
    "n_group": 1, "topk_group": 1})");
  j[key] = value;
  return j;
}

std::string error_of(const Json& j) {
  try {
    parse_config(j, "test/config.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "accepted";
}

TEST(ModelSize, AbsurdConfigsAreRefusedByName) {
  // One field past its own limit.
  std::string e = error_of(config_with("num_hidden_layers", 1'000'000'000));
  EXPECT_NE(e.find("num_hidden_layers 1000000000 is over dsv3's limit of 16777216"),
            std::string::npos)
      << e;
  e = error_of(config_with("n_routed_experts", 100'000'000));
  EXPECT_NE(e.find("n_routed_experts 100000000 is over dsv3's limit"), std::string::npos) << e;
  e = error_of(config_with("vocab_size", int64_t{1} << 40));
  EXPECT_NE(e.find("vocab_size 1099511627776 is over dsv3's limit of 2147483647"),
            std::string::npos)
      << e;
  // Each field in range, the whole not: the totals name their limit.
  e = error_of(config_with("n_routed_experts", 10'000'000));
  EXPECT_NE(e.find("test/config.json describes a model of 6e+07 tensors"), std::string::npos) << e;
  EXPECT_NE(e.find("over dsv3's limit of 1000000 tensors"), std::string::npos) << e;
  Json wide = config_with("intermediate_size", 16'000'000);
  wide["hidden_size"] = 16'000'000;
  wide["num_hidden_layers"] = 100;
  wide["first_k_dense_replace"] = 100;  // every layer a dense FFN of 16M x 16M
  e = error_of(wide);
  EXPECT_NE(e.find("over dsv3's limit of 10^13 parameters"), std::string::npos) << e;
  // The real shapes are far inside.
  for (const std::string& name : preset_names()) EXPECT_NO_THROW(preset_config(name)) << name;
}

}  // namespace
}  // namespace dsv3

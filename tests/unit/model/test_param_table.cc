// The parameter table against SPEC §6 (names and shapes) and SPEC §1.1 / §7 / §8.1 (counts).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <string>

#include "model/param_table.h"
#include "model/presets.h"

namespace dsv3 {
namespace {

std::map<std::string, ParamSpec> by_name(const ModelConfig& c) {
  std::map<std::string, ParamSpec> m;
  for (const ParamSpec& p : param_table(c)) {
    EXPECT_TRUE(m.emplace(p.name, p).second) << "duplicate " << p.name;
  }
  return m;
}

// "%.*f" of x / 1e9: the figure as SPEC and inspect print it.
std::string billions(uint64_t x, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, static_cast<double>(x) / 1e9);
  return buf;
}

// SPEC §6, written out by hand for layer 0 (dense), 3 (MoE) and 61 (MTP).
TEST(ParamTable, DeepseekV3NamesAndShapes) {
  auto m = by_name(preset_config("deepseek-v3"));
  std::vector<std::pair<std::string, Shape>> expect = {
      {"model.embed_tokens.weight", {129280, 7168}},
      {"model.norm.weight", {7168}},
      {"lm_head.weight", {129280, 7168}},
  };
  auto attn = [&](const std::string& p) {
    expect.push_back({p + "input_layernorm.weight", {7168}});
    expect.push_back({p + "post_attention_layernorm.weight", {7168}});
    expect.push_back({p + "self_attn.q_a_proj.weight", {1536, 7168}});
    expect.push_back({p + "self_attn.q_a_layernorm.weight", {1536}});
    expect.push_back({p + "self_attn.q_b_proj.weight", {24576, 1536}});
    expect.push_back({p + "self_attn.kv_a_proj_with_mqa.weight", {576, 7168}});
    expect.push_back({p + "self_attn.kv_a_layernorm.weight", {512}});
    expect.push_back({p + "self_attn.kv_b_proj.weight", {32768, 512}});
    expect.push_back({p + "self_attn.o_proj.weight", {7168, 16384}});
  };
  auto moe = [&](const std::string& p) {
    expect.push_back({p + "mlp.gate.weight", {256, 7168}});
    expect.push_back({p + "mlp.gate.e_score_correction_bias", {256}});
    for (int e : {0, 17, 255}) {
      std::string x = p + "mlp.experts." + std::to_string(e) + ".";
      expect.push_back({x + "gate_proj.weight", {2048, 7168}});
      expect.push_back({x + "up_proj.weight", {2048, 7168}});
      expect.push_back({x + "down_proj.weight", {7168, 2048}});
    }
    expect.push_back({p + "mlp.shared_experts.gate_proj.weight", {2048, 7168}});
    expect.push_back({p + "mlp.shared_experts.up_proj.weight", {2048, 7168}});
    expect.push_back({p + "mlp.shared_experts.down_proj.weight", {7168, 2048}});
  };
  attn("model.layers.0.");
  expect.push_back({"model.layers.0.mlp.gate_proj.weight", {18432, 7168}});
  expect.push_back({"model.layers.0.mlp.up_proj.weight", {18432, 7168}});
  expect.push_back({"model.layers.0.mlp.down_proj.weight", {7168, 18432}});
  attn("model.layers.3.");
  moe("model.layers.3.");
  attn("model.layers.61.");
  moe("model.layers.61.");
  expect.push_back({"model.layers.61.embed_tokens.weight", {129280, 7168}});
  expect.push_back({"model.layers.61.enorm.weight", {7168}});
  expect.push_back({"model.layers.61.hnorm.weight", {7168}});
  expect.push_back({"model.layers.61.eh_proj.weight", {7168, 14336}});
  expect.push_back({"model.layers.61.shared_head.norm.weight", {7168}});
  expect.push_back({"model.layers.61.shared_head.head.weight", {129280, 7168}});
  for (const auto& [name, shape] : expect) {
    auto it = m.find(name);
    ASSERT_NE(it, m.end()) << name;
    EXPECT_EQ(it->second.shape, shape) << name;
  }
  EXPECT_EQ(m.count("model.layers.2.mlp.gate_proj.weight"), 1u);  // layers 0-2 dense
  EXPECT_EQ(m.count("model.layers.2.mlp.gate.weight"), 0u);
  EXPECT_EQ(m.count("model.layers.62.input_layernorm.weight"), 0u);
  EXPECT_EQ(m.count("model.layers.61.mlp.experts.256.up_proj.weight"), 0u);
  EXPECT_EQ(m.count("model.layers.0.self_attn.q_proj.weight"), 0u);

  // Per layer: 2 norms + 7 attention + 3 dense (layers 0-2) or 2 gate + 256*3 + 3 shared.
  size_t per_attn = 9, dense = 3, moe_n = 2 + 256 * 3 + 3, mtp_extra = 6;
  EXPECT_EQ(m.size(), 3 + 61 * per_attn + 3 * dense + 58 * moe_n + per_attn + moe_n + mtp_extra);

  // Init kinds, FP8 eligibility and FP32 storage (SPEC §1.2, §3.2, §6).
  EXPECT_EQ(m["model.norm.weight"].init, ParamInit::Ones);
  EXPECT_EQ(m["model.layers.3.self_attn.kv_a_layernorm.weight"].init, ParamInit::Ones);
  EXPECT_EQ(m["model.layers.3.mlp.gate.e_score_correction_bias"].init, ParamInit::Zeros);
  EXPECT_TRUE(m["model.layers.3.mlp.gate.e_score_correction_bias"].keep_f32);
  EXPECT_EQ(m["model.layers.3.self_attn.o_proj.weight"].init, ParamInit::Normal);
  EXPECT_TRUE(m["model.layers.3.self_attn.o_proj.weight"].fp8_able);
  EXPECT_TRUE(m["model.layers.3.mlp.experts.5.down_proj.weight"].fp8_able);
  EXPECT_EQ(m["model.layers.3.mlp.experts.5.down_proj.weight"].expert, 5);
  EXPECT_EQ(m["model.layers.3.mlp.shared_experts.down_proj.weight"].expert, -1);
  for (const char* n :
       {"model.embed_tokens.weight", "lm_head.weight", "model.layers.3.mlp.gate.weight",
        "model.layers.61.eh_proj.weight", "model.norm.weight"})
    EXPECT_FALSE(m[n].fp8_able) << n;
  EXPECT_EQ(m["model.layers.61.self_attn.o_proj.weight"].group, ParamGroup::Mtp);
  EXPECT_EQ(m["model.layers.61.self_attn.o_proj.weight"].layer, 61);
  EXPECT_EQ(m["model.layers.60.self_attn.o_proj.weight"].group, ParamGroup::Main);
  EXPECT_EQ(m["model.layers.61.embed_tokens.weight"].copy_of, "model.embed_tokens.weight");
  EXPECT_EQ(m["model.layers.61.shared_head.head.weight"].copy_of, "lm_head.weight");
}

TEST(ParamTable, V2LiteHasDirectQProjAndNoMtp) {
  auto m = by_name(preset_config("deepseek-v2-lite"));
  EXPECT_EQ(m["model.layers.0.self_attn.q_proj.weight"].shape, (Shape{16 * 192, 2048}));
  EXPECT_EQ(m.count("model.layers.0.self_attn.q_a_proj.weight"), 0u);
  EXPECT_EQ(m["model.layers.0.mlp.gate_proj.weight"].shape, (Shape{10944, 2048}));
  EXPECT_EQ(m["model.layers.1.mlp.shared_experts.up_proj.weight"].shape, (Shape{2816, 2048}));
  EXPECT_EQ(m.count("model.layers.1.mlp.gate.e_score_correction_bias"), 0u);  // greedy softmax gate
  EXPECT_EQ(m.count("model.layers.27.input_layernorm.weight"), 0u);
}

// SPEC §6: Qwen2 1.5B has 3 + 28 * 12 = 339 tensors.
TEST(ParamTable, Qwen2TensorsWithBiases) {
  auto m = by_name(preset_config("r1-distill-qwen-1.5b"));
  EXPECT_EQ(m.size(), 339u);
  EXPECT_EQ(m["model.layers.0.self_attn.q_proj.weight"].shape, (Shape{1536, 1536}));
  EXPECT_EQ(m["model.layers.0.self_attn.k_proj.bias"].shape, (Shape{256}));
  EXPECT_EQ(m["model.layers.0.self_attn.v_proj.weight"].shape, (Shape{256, 1536}));
  EXPECT_EQ(m.count("model.layers.0.self_attn.o_proj.bias"), 0u);
  EXPECT_EQ(m["model.layers.27.mlp.down_proj.weight"].shape, (Shape{1536, 8960}));
  EXPECT_EQ(m["model.layers.0.self_attn.q_proj.bias"].init, ParamInit::Zeros);
  auto l = by_name(preset_config("r1-distill-llama-8b"));
  EXPECT_EQ(l.size(), 3u + 32 * 9);
  EXPECT_EQ(l["model.layers.0.self_attn.k_proj.weight"].shape, (Shape{1024, 4096}));
  EXPECT_EQ(l.count("model.layers.0.self_attn.k_proj.bias"), 0u);
}

// Counts recomputed here from closed forms of the configs, then checked against the printed SPEC
// figures (SPEC §1.1, §7, §8.1) at the precision they are printed with.
TEST(ParamTable, CountsMatchTheSpec) {
  {
    const uint64_t d = 7168, V = 129280, H = 128;
    uint64_t attn = 1536 * d + 1536 + H * 192 * 1536 + 576 * d + 512 + H * 256 * 512 + d * H * 128;
    uint64_t expert = 3 * 2048 * d, moe = 256 * d + 256 + 257 * expert;
    uint64_t dense = 3 * 18432 * d, norms = 2 * d;
    uint64_t main = 2 * V * d + d + 61 * (attn + norms) + 3 * dense + 58 * moe;
    uint64_t mtp_unique = attn + norms + moe + 2 * d + 2 * d * d + d;
    uint64_t activated = main - V * d - 58 * 248 * expert;
    ParamCounts n = count_params(preset_config("deepseek-v3"));
    EXPECT_EQ(n.main_total, main);
    EXPECT_EQ(n.mtp_unique, mtp_unique);
    EXPECT_EQ(n.mtp_total, mtp_unique + 2 * V * d);
    EXPECT_EQ(n.main_activated, activated);
    EXPECT_EQ(n.mtp_activated, mtp_unique - 248 * expert);
    EXPECT_EQ(billions(n.main_total, 1), "671.0");
    EXPECT_EQ(billions(n.mtp_unique, 1), "11.6");
    EXPECT_EQ(billions(n.main_activated, 1), "36.6");  // SPEC: 36.6B excl. the embedding (TR 37B)
    EXPECT_EQ(billions(n.main_activated, 0), "37");
  }
  {
    ParamCounts n = count_params(preset_config("deepseek-v2-lite"));
    EXPECT_EQ(billions(n.main_total, 1), "15.7");
    EXPECT_EQ(billions(n.main_activated, 2), "2.45");  // SPEC §1.1 [calc] 2.45B (V2 paper: 2.4B)
    EXPECT_EQ(n.mtp_total, 0u);
  }
  const std::pair<const char*, const char*> qwen[] = {{"r1-distill-qwen-1.5b", "1.78"},
                                                      {"r1-distill-qwen-7b", "7.62"},
                                                      {"r1-distill-qwen-14b", "14.77"}};
  for (const auto& [name, b] : qwen) {
    ParamCounts n = count_params(preset_config(name));
    EXPECT_EQ(billions(n.main_total, 2), b) << name;
  }
  // Dense models activate everything but the embedding lookup.
  ModelConfig q = preset_config("r1-distill-qwen-1.5b");
  ParamCounts nq = count_params(q);
  EXPECT_EQ(nq.main_activated, nq.main_total - static_cast<uint64_t>(q.vocab_size * q.hidden_size));
}

TEST(ParamTable, TinyAndSmallSizes) {
  ParamCounts t = count_params(preset_config("tiny"));
  EXPECT_GT(t.main_total, 2'000'000u);
  EXPECT_LT(t.main_total, 20'000'000u);
  EXPECT_GT(t.mtp_unique, 0u);
  ParamCounts s = count_params(preset_config("small"));
  EXPECT_GE(s.main_total, 20'000'000u);
  EXPECT_LE(s.main_total, 50'000'000u);
}

TEST(ParamTable, NamesAreUniqueForEveryPreset) {
  for (const std::string& name : preset_names()) {
    std::set<std::string> seen;
    for (const ParamSpec& p : param_table(preset_config(name)))
      EXPECT_TRUE(seen.insert(p.name).second) << name << ": " << p.name;
  }
}

}  // namespace
}  // namespace dsv3

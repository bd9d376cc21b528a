// Presets are written as the config.json they stand for and parsed like any other config, so a
// preset and a downloaded release go through the same validation. The real shapes are the released
// Hugging Face config.json values (SPEC §1.1, §7); tiny and small are this project's own.
#include "model/presets.h"

#include "base/error.h"

namespace dsv3 {
namespace {

struct Preset {
  PresetInfo info;
  const char* config_json;
};

// tiny: every feature on (q_lora, grouped routing with topk_group < n_group, shared expert, a first
// dense layer, one MTP layer, YaRN) at about 10M parameters, for tests.
constexpr const char* kTiny = R"({
  "architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3",
  "vocab_size": 4096, "hidden_size": 256, "intermediate_size": 512, "moe_intermediate_size": 128,
  "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 4,
  "q_lora_rank": 96, "kv_lora_rank": 64, "qk_nope_head_dim": 32, "qk_rope_head_dim": 16, "v_head_dim": 32,
  "n_routed_experts": 16, "n_shared_experts": 1, "num_experts_per_tok": 4, "n_group": 4, "topk_group": 2,
  "first_k_dense_replace": 1, "moe_layer_freq": 1, "scoring_func": "sigmoid", "topk_method": "noaux_tc",
  "norm_topk_prob": true, "routed_scaling_factor": 2.5, "num_nextn_predict_layers": 1,
  "max_position_embeddings": 4096, "rope_theta": 10000.0,
  "rope_scaling": {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 1024,
                   "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0},
  "rms_norm_eps": 1e-06, "hidden_act": "silu", "attention_bias": false, "tie_word_embeddings": false,
  "bos_token_id": 0, "eos_token_id": 1, "torch_dtype": "bfloat16"
})";

// small: about 35M parameters (15M activated), sized for training on a 2-core CPU; plain RoPE as
// DeepSeek-V3 pretrains at 4K (SPEC §1.4).
constexpr const char* kSmall = R"({
  "architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3",
  "vocab_size": 16384, "hidden_size": 384, "intermediate_size": 1024, "moe_intermediate_size": 192,
  "num_hidden_layers": 6, "num_attention_heads": 6, "num_key_value_heads": 6,
  "q_lora_rank": 128, "kv_lora_rank": 128, "qk_nope_head_dim": 48, "qk_rope_head_dim": 16, "v_head_dim": 48,
  "n_routed_experts": 16, "n_shared_experts": 1, "num_experts_per_tok": 4, "n_group": 4, "topk_group": 2,
  "first_k_dense_replace": 1, "moe_layer_freq": 1, "scoring_func": "sigmoid", "topk_method": "noaux_tc",
  "norm_topk_prob": true, "routed_scaling_factor": 2.5, "num_nextn_predict_layers": 1,
  "max_position_embeddings": 4096, "rope_theta": 10000.0, "rope_scaling": null,
  "rms_norm_eps": 1e-06, "hidden_act": "silu", "attention_bias": false, "tie_word_embeddings": false,
  "bos_token_id": 0, "eos_token_id": 1, "torch_dtype": "bfloat16"
})";

// deepseek-ai/DeepSeek-V3 config.json (SPEC §1.1, §6) without quantization_config: `dsv3 init
// --fp8` adds it back together with E4M3 weights.
constexpr const char* kDeepseekV3 = R"({
  "architectures": ["DeepseekV3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "aux_loss_alpha": 0.001, "bos_token_id": 0, "eos_token_id": 1, "ep_size": 1,
  "first_k_dense_replace": 3, "hidden_act": "silu", "hidden_size": 7168, "initializer_range": 0.02,
  "intermediate_size": 18432, "kv_lora_rank": 512, "max_position_embeddings": 163840,
  "model_type": "deepseek_v3", "moe_intermediate_size": 2048, "moe_layer_freq": 1, "n_group": 8,
  "n_routed_experts": 256, "n_shared_experts": 1, "norm_topk_prob": true, "num_attention_heads": 128,
  "num_experts_per_tok": 8, "num_hidden_layers": 61, "num_key_value_heads": 128,
  "num_nextn_predict_layers": 1, "pretraining_tp": 1, "q_lora_rank": 1536, "qk_nope_head_dim": 128,
  "qk_rope_head_dim": 64, "rms_norm_eps": 1e-06,
  "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 1.0, "mscale_all_dim": 1.0,
                   "original_max_position_embeddings": 4096, "type": "yarn"},
  "rope_theta": 10000, "routed_scaling_factor": 2.5, "scoring_func": "sigmoid", "seq_aux": true,
  "tie_word_embeddings": false, "topk_group": 4, "topk_method": "noaux_tc", "torch_dtype": "bfloat16",
  "use_cache": true, "v_head_dim": 128, "vocab_size": 129280
})";

// deepseek-ai/DeepSeek-V2-Lite config.json (SPEC §1.1).
constexpr const char* kDeepseekV2Lite = R"({
  "architectures": ["DeepseekV2ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "aux_loss_alpha": 0.001, "bos_token_id": 100000, "eos_token_id": 100001,
  "first_k_dense_replace": 1, "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02,
  "intermediate_size": 10944, "kv_lora_rank": 512, "max_position_embeddings": 163840,
  "model_type": "deepseek_v2", "moe_intermediate_size": 1408, "moe_layer_freq": 1, "n_group": 1,
  "n_routed_experts": 64, "n_shared_experts": 2, "norm_topk_prob": false, "num_attention_heads": 16,
  "num_experts_per_tok": 6, "num_hidden_layers": 27, "num_key_value_heads": 16, "pretraining_tp": 1,
  "q_lora_rank": null, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "rms_norm_eps": 1e-06,
  "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 0.707,
                   "mscale_all_dim": 0.707, "original_max_position_embeddings": 4096, "type": "yarn"},
  "rope_theta": 10000, "routed_scaling_factor": 1.0, "scoring_func": "softmax", "seq_aux": true,
  "tie_word_embeddings": false, "topk_group": 1, "topk_method": "greedy", "torch_dtype": "bfloat16",
  "use_cache": true, "v_head_dim": 128, "vocab_size": 102400
})";

// moonshotai/Moonlight-16B-A3B config.json (SPEC §1.1).
constexpr const char* kMoonlight = R"({
  "architectures": ["DeepseekV3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "aux_loss_alpha": 0.001, "bos_token_id": 163584, "eos_token_id": 163586, "ep_size": 1,
  "first_k_dense_replace": 1, "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02,
  "intermediate_size": 11264, "kv_lora_rank": 512, "max_position_embeddings": 8192,
  "model_type": "deepseek_v3", "moe_intermediate_size": 1408, "moe_layer_freq": 1, "n_group": 1,
  "n_routed_experts": 64, "n_shared_experts": 2, "norm_topk_prob": true, "num_attention_heads": 16,
  "num_experts_per_tok": 6, "num_hidden_layers": 27, "num_key_value_heads": 16,
  "num_nextn_predict_layers": 0, "pretraining_tp": 1, "q_lora_rank": null, "qk_nope_head_dim": 128,
  "qk_rope_head_dim": 64, "rms_norm_eps": 1e-05, "rope_theta": 50000.0, "routed_scaling_factor": 2.446,
  "scoring_func": "sigmoid", "seq_aux": true, "tie_word_embeddings": false, "topk_group": 1,
  "topk_method": "noaux_tc", "torch_dtype": "bfloat16", "use_cache": true, "v_head_dim": 128,
  "vocab_size": 163840
})";

// deepseek-ai/DeepSeek-R1-Distill-Qwen-{1.5B,7B,14B} config.json (SPEC §7).
constexpr const char* kQwen1_5B = R"({
  "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
  "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 1536, "initializer_range": 0.02,
  "intermediate_size": 8960, "max_position_embeddings": 131072, "max_window_layers": 21,
  "model_type": "qwen2", "num_attention_heads": 12, "num_hidden_layers": 28, "num_key_value_heads": 2,
  "rms_norm_eps": 1e-06, "rope_theta": 10000, "sliding_window": 4096, "tie_word_embeddings": false,
  "torch_dtype": "bfloat16", "use_cache": true, "use_mrope": false, "use_sliding_window": false,
  "vocab_size": 151936
})";
constexpr const char* kQwen7B = R"({
  "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
  "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 3584, "initializer_range": 0.02,
  "intermediate_size": 18944, "max_position_embeddings": 131072, "max_window_layers": 28,
  "model_type": "qwen2", "num_attention_heads": 28, "num_hidden_layers": 28, "num_key_value_heads": 4,
  "rms_norm_eps": 1e-06, "rope_theta": 10000, "sliding_window": 4096, "tie_word_embeddings": false,
  "torch_dtype": "bfloat16", "use_cache": true, "use_mrope": false, "use_sliding_window": false,
  "vocab_size": 152064
})";
constexpr const char* kQwen14B = R"({
  "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
  "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 5120, "initializer_range": 0.02,
  "intermediate_size": 13824, "max_position_embeddings": 131072, "max_window_layers": 48,
  "model_type": "qwen2", "num_attention_heads": 40, "num_hidden_layers": 48, "num_key_value_heads": 8,
  "rms_norm_eps": 1e-05, "rope_theta": 1000000.0, "sliding_window": 131072, "tie_word_embeddings": false,
  "torch_dtype": "bfloat16", "use_cache": true, "use_sliding_window": false, "vocab_size": 152064
})";

// deepseek-ai/DeepSeek-R1-Distill-Llama-8B config.json (the Llama-3.1-8B shape).
constexpr const char* kLlama8B = R"({
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 128000, "eos_token_id": 128001, "hidden_act": "silu", "hidden_size": 4096,
  "initializer_range": 0.02, "intermediate_size": 14336, "max_position_embeddings": 131072,
  "mlp_bias": false, "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 32,
  "num_key_value_heads": 8, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
  "rope_scaling": {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16", "use_cache": true,
  "vocab_size": 128256
})";

const std::vector<Preset>& table() {
  static const std::vector<Preset> t = {
      {{"tiny", "dsv3-en-4k", "DeepSeek-V3 architecture, ~10M params, every feature on (tests)"},
       kTiny},
      {{"small", "dsv3-en-16k", "DeepSeek-V3 architecture, ~35M params, for CPU training"}, kSmall},
      {{"deepseek-v3", "deepseek_v3", "DeepSeek-V3 (671B, 37B activated)"}, kDeepseekV3},
      {{"deepseek-v2-lite", "deepseek-v2", "DeepSeek-V2-Lite (15.7B, 2.4B activated)"},
       kDeepseekV2Lite},
      {{"moonlight-16b-a3b", "moonlight", "Moonlight-16B-A3B (DeepSeek-V3 architecture)"},
       kMoonlight},
      {{"r1-distill-qwen-1.5b", "qwen2.5-r1-distill", "DeepSeek-R1-Distill-Qwen-1.5B (Qwen2)"},
       kQwen1_5B},
      {{"r1-distill-qwen-7b", "qwen2.5-r1-distill", "DeepSeek-R1-Distill-Qwen-7B (Qwen2)"},
       kQwen7B},
      {{"r1-distill-qwen-14b", "qwen2.5-r1-distill", "DeepSeek-R1-Distill-Qwen-14B (Qwen2)"},
       kQwen14B},
      {{"r1-distill-llama-8b", "llama3-r1-distill", "DeepSeek-R1-Distill-Llama-8B (Llama 3.1)"},
       kLlama8B},
  };
  return t;
}

const Preset& find_preset(std::string_view name) {
  for (const auto& p : table())
    if (p.info.name == name) return p;
  std::string known;
  for (const auto& p : table()) known += (known.empty() ? "" : ", ") + p.info.name;
  throw Error("unknown preset '" + std::string(name) + "'", "known presets: " + known);
}

}  // namespace

const std::vector<PresetInfo>& presets() {
  static const std::vector<PresetInfo> infos = [] {
    std::vector<PresetInfo> v;
    for (const auto& p : table()) v.push_back(p.info);
    return v;
  }();
  return infos;
}

std::vector<std::string> preset_names() {
  std::vector<std::string> v;
  for (const auto& p : table()) v.push_back(p.info.name);
  return v;
}

ModelConfig preset_config(std::string_view name) {
  const Preset& p = find_preset(name);
  std::string source = "preset " + p.info.name;
  return parse_config(Json::parse(p.config_json, source), source);
}

std::string preset_tokenizer(std::string_view name) {
  return find_preset(name).info.tokenizer;
}

}  // namespace dsv3

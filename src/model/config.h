// ModelConfig: a Hugging Face config.json, validated, with every field the forward pass needs.
// One struct for all architectures; fields that an architecture lacks keep their neutral value.
#pragma once
#include <cstdint>
#include <string>

#include "base/json.h"

namespace dsv3 {

enum class Arch { DeepseekV3, DeepseekV2, Qwen2, Llama };

struct RopeScaling {
  std::string type;  // "" (none), "yarn", "llama3", "linear"
  double factor = 1.0;
  int64_t original_max_position_embeddings = 0;
  // YaRN (SPEC §1.4)
  double beta_fast = 32.0, beta_slow = 1.0, mscale = 1.0, mscale_all_dim = 0.0;
  // llama3
  double low_freq_factor = 1.0, high_freq_factor = 4.0;
};

struct ModelConfig {
  Arch arch = Arch::DeepseekV3;
  std::string model_type;  // "deepseek_v3", "deepseek_v2", "qwen2", "llama"

  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;  // dense FFN width
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // GQA (qwen2/llama); = heads for MLA
  int64_t head_dim = 0;             // qwen2/llama; hidden/heads when absent
  double rms_norm_eps = 1e-6;
  int64_t max_position_embeddings = 0;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // qwen2: q/k/v biases are always present

  // MLA (SPEC §1.3). q_lora_rank == 0 means a direct q_proj (V2-Lite, Moonlight).
  int64_t q_lora_rank = 0;
  int64_t kv_lora_rank = 0;
  int64_t qk_nope_head_dim = 0;
  int64_t qk_rope_head_dim = 0;
  int64_t v_head_dim = 0;

  // DeepSeekMoE (SPEC §1.6). n_routed_experts == 0: every layer dense.
  int64_t n_routed_experts = 0;
  int64_t n_shared_experts = 0;
  int64_t num_experts_per_tok = 0;
  int64_t moe_intermediate_size = 0;
  int64_t first_k_dense_replace = 0;
  int64_t moe_layer_freq = 1;
  int64_t n_group = 1;
  int64_t topk_group = 1;
  std::string scoring_func = "sigmoid";  // "sigmoid" | "softmax"
  std::string topk_method = "noaux_tc";  // "noaux_tc" | "greedy" | "group_limited_greedy"
  bool norm_topk_prob = true;
  double routed_scaling_factor = 1.0;

  int64_t num_nextn_predict_layers = 0;  // MTP depth (SPEC §1.7)

  int64_t bos_token_id = -1, eos_token_id = -1;
  std::string torch_dtype = "bfloat16";

  // DeepSeek FP8 checkpoints (SPEC §3.2): quantization_config.quant_method == "fp8".
  bool fp8_weights = false;
  int64_t weight_block_rows = 128, weight_block_cols = 128;
  // Block-quantized weights (dsv3 quantize; docs/QUANTIZATION.md): quantization_config with
  // quant_method "dsv3_blocks" and fmt "q8_0", "q4_0" or "q4_mixed"; empty for none. Each tensor's
  // format is in its own dtype (I8 / U8) and companions (NAME_scale, NAME_min).
  std::string block_quant;

  Json raw;  // the config.json as read, written back unchanged where dsv3 has no field

  bool is_mla() const { return arch == Arch::DeepseekV3 || arch == Arch::DeepseekV2; }
  bool is_moe_layer(int64_t layer) const {
    return n_routed_experts > 0 && layer >= first_k_dense_replace && layer % moe_layer_freq == 0;
  }
  int64_t qk_head_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }
  // SPEC §1.3: (d_n + d_r)^-0.5 * m^2 with YaRN's m; head_dim^-0.5 for qwen2/llama.
  double softmax_scale() const;
  // Elements cached per token per layer: kv_lora_rank + qk_rope_head_dim for MLA (SPEC §1.5),
  // 2 * kv_heads * head_dim for GQA.
  int64_t kv_cache_elems_per_token_layer() const;
};

// Limits on one field: every width, rank, head, layer or expert count; the vocabulary (token ids
// are int32); the context. model_size() bounds the whole model (param_table.h).
inline constexpr int64_t kMaxConfigDim = int64_t{1} << 24;
inline constexpr int64_t kMaxVocab = (int64_t{1} << 31) - 1;
inline constexpr int64_t kMaxPositions = (int64_t{1} << 31) - 1;

// Parse and validate. Errors name `source` and the field ("config.json: num_attention_heads ...").
// An unknown model_type is refused by name, and so is a model over the limits of check_model_size
// (before anything is allocated for it).
ModelConfig parse_config(const Json& j, const std::string& source = "config.json");
ModelConfig load_config(const std::string& path);
// The HF config.json for this config (raw fields preserved, dsv3's fields written over them).
Json config_to_json(const ModelConfig& c);

std::string_view arch_name(Arch a);

}  // namespace dsv3

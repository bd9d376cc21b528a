// config.json -> ModelConfig: every field read with its type checked, then the whole validated.
// HF defaults are followed where a release omits a key (DeepseekV3Config, DeepseekV2Config,
// Qwen2Config, LlamaConfig); keys a forward pass cannot do without are required.
#include "model/config.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "base/file.h"
#include "model/param_table.h"

namespace dsv3 {
namespace {

// Reads fields of one JSON object; every error names the source file and the field.
class FieldReader {
 public:
  FieldReader(const Json& j, std::string source, std::string prefix = "")
      : j_(j), source_(std::move(source)), prefix_(std::move(prefix)) {}

  std::string where(std::string_view key) const {
    return source_ + ": " + prefix_ + std::string(key);
  }

  // null counts as absent: HF writes "q_lora_rank": null and "rope_scaling": null.
  const Json* find(std::string_view key) const {
    const Json* v = j_.find(key);
    return v && !v->is_null() ? v : nullptr;
  }
  const Json& need(std::string_view key) const {
    const Json* v = find(key);
    if (!v) throw Error(where(key) + " is missing", "add it to the config (see SPEC §1.1 / §7)");
    return *v;
  }

  int64_t integer(std::string_view key, int64_t dflt) const {
    const Json* v = find(key);
    return v ? as_integer(*v, key) : dflt;
  }
  int64_t integer(std::string_view key) const { return as_integer(need(key), key); }
  double number(std::string_view key, double dflt) const {
    const Json* v = find(key);
    return v ? as_number(*v, key) : dflt;
  }
  double number(std::string_view key) const { return as_number(need(key), key); }
  bool boolean(std::string_view key, bool dflt) const {
    const Json* v = find(key);
    if (!v) return dflt;
    if (!v->is_bool()) throw Error(where(key) + " must be true or false");
    return v->as_bool();
  }
  std::string string(std::string_view key, std::string dflt) const {
    const Json* v = find(key);
    if (!v) return dflt;
    if (!v->is_string()) throw Error(where(key) + " must be a string");
    return v->as_string();
  }

 private:
  int64_t as_integer(const Json& v, std::string_view key) const {
    if (v.is_int()) return v.as_int();
    if (v.is_number()) {
      double d = v.as_double();
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15)
        return static_cast<int64_t>(d);
    }
    throw Error(where(key) + " must be an integer, got " + v.dump());
  }
  double as_number(const Json& v, std::string_view key) const {
    if (!v.is_number()) throw Error(where(key) + " must be a number, got " + v.dump());
    double d = v.as_double();
    if (!std::isfinite(d)) throw Error(where(key) + " must be finite");
    return d;
  }

  const Json& j_;
  std::string source_, prefix_;
};

// Sizes are bounded one by one, so that products of two (a matrix's elements) cannot overflow;
// model_size() then bounds the whole (check_model_size).
void need_at_most(const FieldReader& r, std::string_view key, int64_t v, int64_t limit) {
  if (v > limit)
    throw Error(r.where(key) + " " + std::to_string(v) + " is over dsv3's limit of " +
                    std::to_string(limit),
                "the config describes a model far larger than any dsv3 can hold");
}
void need_positive(const FieldReader& r, std::string_view key, int64_t v,
                   int64_t limit = kMaxConfigDim) {
  if (v <= 0) throw Error(r.where(key) + " must be positive, got " + std::to_string(v));
  need_at_most(r, key, v, limit);
}
void need_nonnegative(const FieldReader& r, std::string_view key, int64_t v) {
  if (v < 0) throw Error(r.where(key) + " must not be negative, got " + std::to_string(v));
  need_at_most(r, key, v, kMaxConfigDim);
}

// eos_token_id is an int, or a list of ints in Llama 3.1 configs (the first is the main one).
int64_t token_id(const FieldReader& r, std::string_view key) {
  const Json* v = r.find(key);
  if (!v) return -1;
  if (v->is_array()) {
    if (v->size() == 0) return -1;
    const Json& first = v->as_array()[0];
    if (!first.is_int()) throw Error(r.where(key) + " must be an integer or a list of integers");
    return first.as_int();
  }
  if (!v->is_int()) throw Error(r.where(key) + " must be an integer or a list of integers");
  return v->as_int();
}

RopeScaling parse_rope_scaling(const FieldReader& top, const std::string& source) {
  RopeScaling rs;
  const Json* j = top.find("rope_scaling");
  if (!j) return rs;
  if (!j->is_object()) throw Error(top.where("rope_scaling") + " must be an object or null");
  FieldReader r(*j, source, "rope_scaling.");
  // Older HF configs say "type", newer ones "rope_type"; both must agree when both are present.
  std::string type = r.string("type", ""), rope_type = r.string("rope_type", "");
  if (!type.empty() && !rope_type.empty() && type != rope_type)
    throw Error(r.where("type") + " '" + type + "' disagrees with rope_type '" + rope_type + "'");
  rs.type = type.empty() ? rope_type : type;
  if (rs.type.empty())
    throw Error(r.where("type") + " is missing (need \"type\" or \"rope_type\")");
  if (rs.type == "default") return RopeScaling{};
  if (rs.type != "yarn" && rs.type != "llama3" && rs.type != "linear")
    throw Error(r.where("type") + " '" + rs.type + "' is not supported",
                "supported rope scaling types: yarn, llama3, linear");
  rs.factor = r.number("factor");
  if (!(rs.factor >= 1.0)) throw Error(r.where("factor") + " must be >= 1");
  if (rs.type == "linear") return rs;
  rs.original_max_position_embeddings = r.integer("original_max_position_embeddings");
  need_positive(r, "original_max_position_embeddings", rs.original_max_position_embeddings);
  if (rs.type == "yarn") {  // HF DeepseekV3YarnRotaryEmbedding defaults
    rs.beta_fast = r.number("beta_fast", 32.0);
    rs.beta_slow = r.number("beta_slow", 1.0);
    rs.mscale = r.number("mscale", 1.0);
    rs.mscale_all_dim = r.number("mscale_all_dim", 0.0);
    if (!(rs.beta_fast > 0) || !(rs.beta_slow > 0) || rs.beta_slow > rs.beta_fast)
      throw Error(r.where("beta_fast") + " and beta_slow must satisfy 0 < beta_slow <= beta_fast");
    if (rs.mscale < 0 || rs.mscale_all_dim < 0)
      throw Error(r.where("mscale") + " and mscale_all_dim must not be negative");
  } else {  // llama3
    rs.low_freq_factor = r.number("low_freq_factor");
    rs.high_freq_factor = r.number("high_freq_factor");
    if (!(rs.low_freq_factor > 0) || !(rs.high_freq_factor > rs.low_freq_factor))
      throw Error(r.where("high_freq_factor") + " must be greater than low_freq_factor (> 0)");
  }
  return rs;
}

void parse_mla(const FieldReader& r, ModelConfig& c) {
  c.q_lora_rank = r.integer("q_lora_rank", 0);
  need_nonnegative(r, "q_lora_rank", c.q_lora_rank);
  c.kv_lora_rank = r.integer("kv_lora_rank");
  if (c.kv_lora_rank <= 0)
    throw Error(r.where("kv_lora_rank") +
                " must be positive for multi-head latent attention, got " +
                std::to_string(c.kv_lora_rank));
  need_at_most(r, "kv_lora_rank", c.kv_lora_rank, kMaxConfigDim);
  c.qk_nope_head_dim = r.integer("qk_nope_head_dim");
  c.qk_rope_head_dim = r.integer("qk_rope_head_dim");
  c.v_head_dim = r.integer("v_head_dim");
  need_nonnegative(r, "qk_nope_head_dim", c.qk_nope_head_dim);
  need_positive(r, "qk_rope_head_dim", c.qk_rope_head_dim);
  need_positive(r, "v_head_dim", c.v_head_dim);
  if (c.qk_rope_head_dim % 2)
    throw Error(r.where("qk_rope_head_dim") + " must be even (RoPE rotates pairs)");
  if (c.num_key_value_heads != c.num_attention_heads)
    throw Error(r.where("num_key_value_heads") + " must equal num_attention_heads for MLA");
  if (c.attention_bias) throw Error(r.where("attention_bias") + ": true is not supported for MLA");

  bool v3 = c.arch == Arch::DeepseekV3;
  c.n_routed_experts = r.integer("n_routed_experts", 0);
  need_nonnegative(r, "n_routed_experts", c.n_routed_experts);
  c.n_shared_experts = r.integer("n_shared_experts", 0);
  need_nonnegative(r, "n_shared_experts", c.n_shared_experts);
  c.first_k_dense_replace = r.integer("first_k_dense_replace", 0);
  need_nonnegative(r, "first_k_dense_replace", c.first_k_dense_replace);
  c.moe_layer_freq = r.integer("moe_layer_freq", 1);
  need_positive(r, "moe_layer_freq", c.moe_layer_freq);
  c.n_group = r.integer("n_group", 1);
  c.topk_group = r.integer("topk_group", 1);
  c.scoring_func = r.string("scoring_func", v3 ? "sigmoid" : "softmax");
  c.topk_method = r.string("topk_method", v3 ? "noaux_tc" : "greedy");
  c.norm_topk_prob = r.boolean("norm_topk_prob", v3);
  c.routed_scaling_factor = r.number("routed_scaling_factor", 1.0);
  c.num_nextn_predict_layers = v3 ? r.integer("num_nextn_predict_layers", 0) : 0;
  need_nonnegative(r, "num_nextn_predict_layers", c.num_nextn_predict_layers);
  if (c.n_routed_experts == 0) return;

  c.num_experts_per_tok = r.integer("num_experts_per_tok");
  need_positive(r, "num_experts_per_tok", c.num_experts_per_tok);
  c.moe_intermediate_size = r.integer("moe_intermediate_size");
  need_positive(r, "moe_intermediate_size", c.moe_intermediate_size);
  need_positive(r, "n_group", c.n_group);
  need_positive(r, "topk_group", c.topk_group);
  if (c.num_experts_per_tok > c.n_routed_experts)
    throw Error(r.where("num_experts_per_tok") + " (" + std::to_string(c.num_experts_per_tok) +
                ") is larger than n_routed_experts (" + std::to_string(c.n_routed_experts) + ")");
  if (c.topk_group > c.n_group)
    throw Error(r.where("topk_group") + " (" + std::to_string(c.topk_group) +
                ") is larger than n_group (" + std::to_string(c.n_group) + ")");
  if (c.n_routed_experts % c.n_group)
    throw Error(r.where("n_routed_experts") + " (" + std::to_string(c.n_routed_experts) +
                ") is not divisible by n_group (" + std::to_string(c.n_group) + ")");
  if (c.scoring_func != "sigmoid" && c.scoring_func != "softmax")
    throw Error(r.where("scoring_func") + " '" + c.scoring_func + "' is unknown",
                "supported: sigmoid, softmax");
  if (c.topk_method != "noaux_tc" && c.topk_method != "greedy" &&
      c.topk_method != "group_limited_greedy")
    throw Error(r.where("topk_method") + " '" + c.topk_method + "' is unknown",
                "supported: noaux_tc, greedy, group_limited_greedy");
  int64_t per_group = c.n_routed_experts / c.n_group;
  // SPEC §1.6 step 3: a group's score is the sum of its top-2 experts under noaux_tc.
  if (c.topk_method == "noaux_tc" && c.n_group > 1 && per_group < 2)
    throw Error(r.where("n_group") +
                " leaves fewer than 2 experts per group (noaux_tc sums the top 2)");
  if (c.topk_method != "greedy" && c.topk_group * per_group < c.num_experts_per_tok)
    throw Error(r.where("topk_group") + " groups of " + std::to_string(per_group) +
                " experts cannot supply num_experts_per_tok = " +
                std::to_string(c.num_experts_per_tok) + " experts");
  if (!(c.routed_scaling_factor > 0))
    throw Error(r.where("routed_scaling_factor") + " must be > 0");
}

void parse_gqa(const FieldReader& r, ModelConfig& c) {
  c.head_dim =
      r.integer("head_dim", c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0);
  need_positive(r, "head_dim", c.head_dim);
  if (c.head_dim % 2) throw Error(r.where("head_dim") + " must be even (RoPE rotates pairs)");
  if (c.num_attention_heads % c.num_key_value_heads)
    throw Error(r.where("num_attention_heads") + " (" + std::to_string(c.num_attention_heads) +
                ") is not divisible by num_key_value_heads (" +
                std::to_string(c.num_key_value_heads) + ")");
  if (c.arch == Arch::Qwen2) {
    c.attention_bias = true;  // Qwen2 always has q/k/v biases (SPEC §6)
    if (r.boolean("use_sliding_window", false))
      throw Error(r.where("use_sliding_window") + ": sliding-window attention is not supported");
  } else {
    if (r.boolean("mlp_bias", false)) throw Error(r.where("mlp_bias") + ": true is not supported");
  }
}

}  // namespace

std::string_view arch_name(Arch a) {
  switch (a) {
    case Arch::DeepseekV3:
      return "deepseek_v3";
    case Arch::DeepseekV2:
      return "deepseek_v2";
    case Arch::Qwen2:
      return "qwen2";
    case Arch::Llama:
      return "llama";
  }
  return "?";
}

ModelConfig parse_config(const Json& j, const std::string& source) {
  if (!j.is_object()) throw Error(source + ": the config is not a JSON object");
  FieldReader r(j, source);
  ModelConfig c;
  c.raw = j;
  c.model_type = r.string("model_type", "");
  if (c.model_type.empty()) throw Error(r.where("model_type") + " is missing");
  if (c.model_type == "deepseek_v3")
    c.arch = Arch::DeepseekV3;
  else if (c.model_type == "deepseek_v2")
    c.arch = Arch::DeepseekV2;
  else if (c.model_type == "qwen2")
    c.arch = Arch::Qwen2;
  else if (c.model_type == "llama")
    c.arch = Arch::Llama;
  else
    throw Error(r.where("model_type") + " '" + c.model_type + "' is not supported",
                "supported model types: deepseek_v3, deepseek_v2, qwen2, llama");

  c.vocab_size = r.integer("vocab_size");
  c.hidden_size = r.integer("hidden_size");
  c.intermediate_size = r.integer("intermediate_size");
  c.num_hidden_layers = r.integer("num_hidden_layers");
  c.num_attention_heads = r.integer("num_attention_heads");
  c.num_key_value_heads = r.integer("num_key_value_heads", c.num_attention_heads);
  c.max_position_embeddings = r.integer("max_position_embeddings");
  need_positive(r, "vocab_size", c.vocab_size, kMaxVocab);
  need_positive(r, "hidden_size", c.hidden_size);
  need_positive(r, "intermediate_size", c.intermediate_size);
  need_positive(r, "num_hidden_layers", c.num_hidden_layers);
  need_positive(r, "num_attention_heads", c.num_attention_heads);
  need_positive(r, "num_key_value_heads", c.num_key_value_heads);
  need_positive(r, "max_position_embeddings", c.max_position_embeddings, kMaxPositions);
  if (c.hidden_size % c.num_attention_heads)
    throw Error(r.where("hidden_size") + " (" + std::to_string(c.hidden_size) +
                ") is not divisible by num_attention_heads (" +
                std::to_string(c.num_attention_heads) + ")");

  c.rms_norm_eps = r.number("rms_norm_eps", 1e-6);
  if (!(c.rms_norm_eps > 0)) throw Error(r.where("rms_norm_eps") + " must be > 0");
  c.rope_theta = r.number("rope_theta", 10000.0);
  if (!(c.rope_theta > 1)) throw Error(r.where("rope_theta") + " must be > 1");
  c.rope_scaling = parse_rope_scaling(r, source);
  c.tie_word_embeddings = r.boolean("tie_word_embeddings", false);
  c.attention_bias = r.boolean("attention_bias", false);
  std::string act = r.string("hidden_act", "silu");
  if (act != "silu")
    throw Error(r.where("hidden_act") + " '" + act + "' is not supported (silu only)");
  c.bos_token_id = token_id(r, "bos_token_id");
  c.eos_token_id = token_id(r, "eos_token_id");
  c.torch_dtype = r.string("torch_dtype", "bfloat16");

  if (c.is_mla())
    parse_mla(r, c);
  else
    parse_gqa(r, c);

  // SPEC §3.2: DeepSeek's FP8 releases carry quantization_config.
  if (const Json* q = r.find("quantization_config")) {
    if (!q->is_object()) throw Error(r.where("quantization_config") + " must be an object");
    FieldReader qr(*q, source, "quantization_config.");
    std::string method = qr.string("quant_method", "");
    if (method == "dsv3_blocks") {
      c.block_quant = qr.string("fmt", "");
      if (c.block_quant != "q8_0" && c.block_quant != "q4_0" && c.block_quant != "q4_mixed")
        throw Error(qr.where("fmt") + " '" + c.block_quant +
                    "' is not a dsv3 block format (q8_0, q4_0, q4_mixed)");
      if (qr.number("block_size", 32) != 32)
        throw Error(qr.where("block_size") + " must be 32 (docs/QUANTIZATION.md)");
      check_model_size(c, source);
      return c;
    }
    if (method != "fp8")
      throw Error(qr.where("quant_method") + " '" + method +
                  "' is not supported (fp8, or dsv3_blocks from dsv3 quantize)");
    std::string fmt = qr.string("fmt", "e4m3");
    if (fmt != "e4m3") throw Error(qr.where("fmt") + " '" + fmt + "' is not supported (e4m3 only)");
    c.fp8_weights = true;
    if (const Json* b = qr.find("weight_block_size")) {
      if (!b->is_array() || b->size() != 2 || !b->as_array()[0].is_int() ||
          !b->as_array()[1].is_int())
        throw Error(qr.where("weight_block_size") + " must be a list of two integers");
      c.weight_block_rows = b->as_array()[0].as_int();
      c.weight_block_cols = b->as_array()[1].as_int();
      if (c.weight_block_rows != 128 || c.weight_block_cols != 128)
        throw Error(qr.where("weight_block_size") + " must be [128, 128] (SPEC §3.2)");
    }
  }
  check_model_size(c, source);
  return c;
}

ModelConfig load_config(const std::string& path) {
  std::string text = read_file(path);
  return parse_config(Json::parse(text, path), path);
}

Json config_to_json(const ModelConfig& c) {
  Json j = c.raw.is_object() ? c.raw : Json::object();
  auto set = [&](std::string_view k, Json v) { j[k] = std::move(v); };
  if (!j.contains("architectures")) {
    const char* cls = c.arch == Arch::DeepseekV3   ? "DeepseekV3ForCausalLM"
                      : c.arch == Arch::DeepseekV2 ? "DeepseekV2ForCausalLM"
                      : c.arch == Arch::Qwen2      ? "Qwen2ForCausalLM"
                                                   : "LlamaForCausalLM";
    set("architectures", Json(Json::Array{Json(cls)}));
  }
  set("model_type", Json(arch_name(c.arch)));
  set("vocab_size", c.vocab_size);
  set("hidden_size", c.hidden_size);
  set("intermediate_size", c.intermediate_size);
  set("num_hidden_layers", c.num_hidden_layers);
  set("num_attention_heads", c.num_attention_heads);
  set("num_key_value_heads", c.num_key_value_heads);
  set("max_position_embeddings", c.max_position_embeddings);
  set("rms_norm_eps", c.rms_norm_eps);
  set("rope_theta", c.rope_theta);
  if (c.rope_scaling.type.empty()) {
    set("rope_scaling", Json());
  } else {
    const RopeScaling& s = c.rope_scaling;
    Json rs = Json::object();
    rs[c.arch == Arch::Llama ? "rope_type" : "type"] = Json(s.type);
    rs["factor"] = s.factor;
    if (s.type != "linear")
      rs["original_max_position_embeddings"] = s.original_max_position_embeddings;
    if (s.type == "yarn") {
      rs["beta_fast"] = s.beta_fast;
      rs["beta_slow"] = s.beta_slow;
      rs["mscale"] = s.mscale;
      rs["mscale_all_dim"] = s.mscale_all_dim;
    } else if (s.type == "llama3") {
      rs["low_freq_factor"] = s.low_freq_factor;
      rs["high_freq_factor"] = s.high_freq_factor;
    }
    set("rope_scaling", std::move(rs));
  }
  set("tie_word_embeddings", c.tie_word_embeddings);
  set("hidden_act", Json("silu"));
  if (c.arch != Arch::Qwen2) set("attention_bias", c.attention_bias);
  if (c.bos_token_id >= 0) set("bos_token_id", c.bos_token_id);
  // A Llama 3.1 eos list whose first entry is ours is kept as the list.
  const Json* eos = j.find("eos_token_id");
  bool eos_list_kept = eos && eos->is_array() && eos->size() > 0 && eos->as_array()[0].is_int() &&
                       eos->as_array()[0].as_int() == c.eos_token_id;
  if (c.eos_token_id >= 0 && !eos_list_kept) set("eos_token_id", c.eos_token_id);
  set("torch_dtype", Json(c.torch_dtype));
  if (c.is_mla()) {
    set("q_lora_rank", c.q_lora_rank > 0 ? Json(c.q_lora_rank) : Json());
    set("kv_lora_rank", c.kv_lora_rank);
    set("qk_nope_head_dim", c.qk_nope_head_dim);
    set("qk_rope_head_dim", c.qk_rope_head_dim);
    set("v_head_dim", c.v_head_dim);
    set("n_routed_experts", c.n_routed_experts);
    set("n_shared_experts", c.n_shared_experts);
    set("num_experts_per_tok", c.num_experts_per_tok);
    set("moe_intermediate_size", c.moe_intermediate_size);
    set("first_k_dense_replace", c.first_k_dense_replace);
    set("moe_layer_freq", c.moe_layer_freq);
    set("n_group", c.n_group);
    set("topk_group", c.topk_group);
    set("scoring_func", Json(c.scoring_func));
    set("topk_method", Json(c.topk_method));
    set("norm_topk_prob", c.norm_topk_prob);
    set("routed_scaling_factor", c.routed_scaling_factor);
    if (c.arch == Arch::DeepseekV3) set("num_nextn_predict_layers", c.num_nextn_predict_layers);
  } else {
    set("head_dim", c.head_dim);
  }
  if (c.fp8_weights) {
    Json q = Json::object();
    q["activation_scheme"] = Json("dynamic");
    q["fmt"] = Json("e4m3");
    q["quant_method"] = Json("fp8");
    q["weight_block_size"] =
        Json(Json::Array{Json(c.weight_block_rows), Json(c.weight_block_cols)});
    set("quantization_config", std::move(q));
  } else if (!c.block_quant.empty()) {
    Json q = Json::object();
    q["quant_method"] = Json("dsv3_blocks");
    q["fmt"] = Json(c.block_quant);
    q["block_size"] = Json(32);
    q["scale_dtype"] = Json("F16");
    set("quantization_config", std::move(q));
  } else if (j.contains("quantization_config")) {
    j.as_object().erase(
        std::find_if(j.as_object().begin(), j.as_object().end(),
                     [](const auto& kv) { return kv.first == "quantization_config"; }));
  }
  return j;
}

// SPEC §1.3 and §9: HF's yarn_get_mscale(factor, mscale_all_dim) squared, applied whenever
// rope_scaling is YaRN (not only past 4096 tokens as the reference repo does).
double ModelConfig::softmax_scale() const {
  if (!is_mla()) return 1.0 / std::sqrt(static_cast<double>(head_dim));
  double scale = 1.0 / std::sqrt(static_cast<double>(qk_head_dim()));
  if (rope_scaling.type == "yarn" && rope_scaling.mscale_all_dim != 0 && rope_scaling.factor > 1) {
    double m = 0.1 * rope_scaling.mscale_all_dim * std::log(rope_scaling.factor) + 1.0;
    scale *= m * m;
  }
  return scale;
}

int64_t ModelConfig::kv_cache_elems_per_token_layer() const {
  if (is_mla()) return kv_lora_rank + qk_rope_head_dim;  // SPEC §1.5: c_kv + k_pe
  return 2 * num_key_value_heads * head_dim;
}

}  // namespace dsv3

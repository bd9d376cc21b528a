// The parameter table: every tensor of a HF checkpoint, in the layout of SPEC §6.
#include "model/param_table.h"

#include <algorithm>
#include <cstdio>

#include "base/error.h"

namespace dsv3 {
namespace {

class TableBuilder {
 public:
  explicit TableBuilder(const ModelConfig& c) : c_(c) {}

  void add(std::string name, Shape shape, ParamInit init, bool fp8_able = false) {
    ParamSpec p;
    p.name = prefix_ + name;
    p.shape = std::move(shape);
    p.init = init;
    p.group = group_;
    p.layer = layer_;
    p.fp8_able = fp8_able;
    p.expert = expert_;
    specs_.push_back(std::move(p));
  }
  void linear(const std::string& name, int64_t out, int64_t in) {
    add(name + ".weight", {out, in}, ParamInit::Normal, /*fp8_able=*/true);
  }
  void norm(const std::string& name, int64_t dim) { add(name + ".weight", {dim}, ParamInit::Ones); }

  void set_scope(std::string prefix, int64_t layer, ParamGroup group) {
    prefix_ = std::move(prefix);
    layer_ = layer;
    group_ = group;
  }

  // SPEC §1.3 / §6: MLA projections. q_lora_rank == 0 is V2-Lite's direct q_proj.
  void mla() {
    int64_t d = c_.hidden_size, H = c_.num_attention_heads;
    if (c_.q_lora_rank > 0) {
      linear("self_attn.q_a_proj", c_.q_lora_rank, d);
      norm("self_attn.q_a_layernorm", c_.q_lora_rank);
      linear("self_attn.q_b_proj", H * c_.qk_head_dim(), c_.q_lora_rank);
    } else {
      linear("self_attn.q_proj", H * c_.qk_head_dim(), d);
    }
    linear("self_attn.kv_a_proj_with_mqa", c_.kv_lora_rank + c_.qk_rope_head_dim, d);
    norm("self_attn.kv_a_layernorm", c_.kv_lora_rank);
    linear("self_attn.kv_b_proj", H * (c_.qk_nope_head_dim + c_.v_head_dim), c_.kv_lora_rank);
    linear("self_attn.o_proj", d, H * c_.v_head_dim);
  }

  // SPEC §6 Qwen2: q/k/v biases; Llama: biases only with attention_bias (then o_proj too, as HF).
  void gqa() {
    int64_t d = c_.hidden_size, hd = c_.head_dim;
    int64_t q = c_.num_attention_heads * hd, kv = c_.num_key_value_heads * hd;
    const std::pair<const char*, int64_t> proj[] = {{"q_proj", q}, {"k_proj", kv}, {"v_proj", kv}};
    for (const auto& [name, out] : proj) {
      linear(std::string("self_attn.") + name, out, d);
      if (c_.attention_bias)
        add(std::string("self_attn.") + name + ".bias", {out}, ParamInit::Zeros);
    }
    linear("self_attn.o_proj", d, q);
    if (c_.attention_bias && c_.arch == Arch::Llama)
      add("self_attn.o_proj.bias", {d}, ParamInit::Zeros);
  }

  void swiglu(const std::string& prefix, int64_t width) {
    linear(prefix + "gate_proj", width, c_.hidden_size);
    linear(prefix + "up_proj", width, c_.hidden_size);
    linear(prefix + "down_proj", c_.hidden_size, width);
  }

  // SPEC §1.6 / §6: router, routed experts, shared experts.
  void moe() {
    int64_t E = c_.n_routed_experts;
    add("mlp.gate.weight", {E, c_.hidden_size}, ParamInit::Normal);
    if (c_.topk_method == "noaux_tc") {
      add("mlp.gate.e_score_correction_bias", {E}, ParamInit::Zeros);
      specs_.back().keep_f32 = true;
      specs_.back().has_grad = false;
    }
    for (int64_t e = 0; e < E; ++e) {
      expert_ = e;
      swiglu("mlp.experts." + std::to_string(e) + ".", c_.moe_intermediate_size);
    }
    expert_ = -1;
    if (c_.n_shared_experts > 0)
      swiglu("mlp.shared_experts.", c_.n_shared_experts * c_.moe_intermediate_size);
  }

  void decoder_layer(int64_t l) {
    norm("input_layernorm", c_.hidden_size);
    if (c_.is_mla())
      mla();
    else
      gqa();
    norm("post_attention_layernorm", c_.hidden_size);
    if (c_.is_moe_layer(l))
      moe();
    else
      swiglu("mlp.", c_.intermediate_size);
  }

  std::vector<ParamSpec> build() {
    int64_t V = c_.vocab_size, d = c_.hidden_size, L = c_.num_hidden_layers;
    set_scope("model.", -1, ParamGroup::Main);
    add("embed_tokens.weight", {V, d}, ParamInit::Normal);
    for (int64_t l = 0; l < L; ++l) {
      set_scope("model.layers." + std::to_string(l) + ".", l, ParamGroup::Main);
      decoder_layer(l);
    }
    // SPEC §1.7 / §6: MTP module k lives at model.layers.{L + k - 1}.
    for (int64_t k = 1; k <= c_.num_nextn_predict_layers; ++k) {
      int64_t l = L + k - 1;
      set_scope("model.layers." + std::to_string(l) + ".", l, ParamGroup::Mtp);
      add("embed_tokens.weight", {V, d}, ParamInit::Normal);
      specs_.back().copy_of = "model.embed_tokens.weight";
      norm("enorm", d);
      norm("hnorm", d);
      add("eh_proj.weight", {d, 2 * d},
          ParamInit::Normal);  // unquantized in FP8 releases (SPEC §3.2)
      decoder_layer(l);
      norm("shared_head.norm", d);
      add("shared_head.head.weight", {V, d}, ParamInit::Normal);
      specs_.back().copy_of = "lm_head.weight";
    }
    set_scope("model.", -1, ParamGroup::Main);
    norm("norm", d);
    if (!c_.tie_word_embeddings) {
      set_scope("", -1, ParamGroup::Main);
      add("lm_head.weight", {V, d}, ParamInit::Normal);
    }
    return std::move(specs_);
  }

 private:
  const ModelConfig& c_;
  std::vector<ParamSpec> specs_;
  std::string prefix_;
  int64_t layer_ = -1, expert_ = -1;
  ParamGroup group_ = ParamGroup::Main;
};

}  // namespace

std::vector<ParamSpec> param_table(const ModelConfig& c) {
  return TableBuilder(c).build();
}

// Activated parameters per token: everything a token's forward pass multiplies with, i.e. all but
// the routed experts it was not sent to (E - top_k per MoE layer) and the embedding, which is a
// lookup (SPEC §1.1: V3 about 36.6B, "37B").
ParamCounts count_params(const ModelConfig& c) {
  ParamCounts n;
  uint64_t main_routed = 0, mtp_routed = 0;
  for (const ParamSpec& p : param_table(c)) {
    uint64_t k = static_cast<uint64_t>(shape_numel(p.shape));
    bool lookup = p.name == "model.embed_tokens.weight";
    if (p.group == ParamGroup::Main) {
      n.main_total += k;
      if (!lookup) n.main_activated += k;
      if (p.expert >= 0) main_routed += k;
    } else {
      n.mtp_total += k;
      if (!p.copy_of.empty()) continue;
      n.mtp_unique += k;
      n.mtp_activated += k;
      if (p.expert >= 0) mtp_routed += k;
    }
  }
  // Every routed expert has the same size, so routed / E is one expert's share of all layers.
  if (c.n_routed_experts > 0) {
    uint64_t E = static_cast<uint64_t>(c.n_routed_experts);
    uint64_t unselected = E - static_cast<uint64_t>(c.num_experts_per_tok);
    n.main_activated -= main_routed / E * unselected;
    n.mtp_activated -= mtp_routed / E * unselected;
  }
  return n;
}

std::string format_params(uint64_t n) {
  char buf[32];
  const double v = static_cast<double>(n);
  if (v >= 100e9)
    std::snprintf(buf, sizeof buf, "%.1fB", v / 1e9);
  else if (v >= 1e9)
    std::snprintf(buf, sizeof buf, "%.2fB", v / 1e9);
  else if (v >= 1e6)
    std::snprintf(buf, sizeof buf, "%.2fM", v / 1e6);
  else if (v >= 1e3)
    std::snprintf(buf, sizeof buf, "%.2fK", v / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(n));
  return buf;
}

std::string parameter_summary(const ModelConfig& c) {
  const ParamCounts n = count_params(c);
  std::string s = format_params(n.main_total) + " parameters";
  if (n.mtp_unique > 0) s += " + " + format_params(n.mtp_unique) + " MTP";
  return s;
}

namespace {

ModelSize size_of(const ModelConfig& c) {
  ModelSize n;
  for (const ParamSpec& p : param_table(c)) {
    n.tensors += 1;
    n.parameters += static_cast<double>(shape_numel(p.shape));
  }
  return n;
}

// a + k * (b - c), field by field.
ModelSize add_scaled(ModelSize a, double k, ModelSize b, ModelSize c = {}) {
  a.tensors += k * (b.tensors - c.tensors);
  a.parameters += k * (b.parameters - c.parameters);
  return a;
}

}  // namespace

// The table is a sum of parts that do not depend on each other: the globals (embedding, norm,
// head), one dense layer, one MoE layer (linear in the expert count: experts, gate rows, bias), and
// per MTP module its own tensors plus a layer. Each part comes from the table of a config of at
// most one layer and two experts.
ModelSize model_size(const ModelConfig& c) {
  ModelConfig base = c;
  base.num_hidden_layers = 0;
  base.num_nextn_predict_layers = 0;
  base.n_routed_experts = 0;
  const ModelSize globals = size_of(base);
  ModelConfig one = base;
  one.num_hidden_layers = 1;
  const ModelSize dense = add_scaled({}, 1, size_of(one), globals);
  ModelSize moe;
  if (c.n_routed_experts > 0) {
    ModelConfig m = one;
    m.first_k_dense_replace = 0;
    m.moe_layer_freq = 1;
    m.n_routed_experts = 1;
    const ModelSize m1 = add_scaled({}, 1, size_of(m), globals);
    m.n_routed_experts = 2;
    const ModelSize m2 = add_scaled({}, 1, size_of(m), globals);
    moe = add_scaled(m1, static_cast<double>(c.n_routed_experts - 1), m2, m1);
  }
  ModelConfig mtp = base;  // one MTP module over a dense layer (no experts in `base`)
  mtp.num_nextn_predict_layers = 1;
  const ModelSize mtp_own = add_scaled(add_scaled({}, 1, size_of(mtp), globals), -1, dense);

  // How many of the layers [a, b) are MoE layers (ModelConfig::is_moe_layer), without a loop.
  const auto moe_layers = [&](int64_t a, int64_t b) -> double {
    if (c.n_routed_experts == 0) return 0;
    a = std::max(a, c.first_k_dense_replace);
    if (a >= b) return 0;
    const int64_t f = c.moe_layer_freq;
    const auto multiples = [f](int64_t n) { return (n + f - 1) / f; };  // in [0, n)
    return static_cast<double>(multiples(b) - multiples(a));
  };
  const int64_t L = c.num_hidden_layers, K = c.num_nextn_predict_layers;
  const double moe_main = moe_layers(0, L), moe_mtp = moe_layers(L, L + K);
  ModelSize n = globals;
  n = add_scaled(n, static_cast<double>(L + K) - moe_main - moe_mtp, dense);
  n = add_scaled(n, moe_main + moe_mtp, moe);
  n = add_scaled(n, static_cast<double>(K), mtp_own);
  return n;
}

void check_model_size(const ModelConfig& c, const std::string& source) {
  const ModelSize n = model_size(c);
  char what[160];
  std::snprintf(what, sizeof what, "%.4g tensors and %.4g parameters", n.tensors, n.parameters);
  const std::string hint = "check num_hidden_layers (" + std::to_string(c.num_hidden_layers) +
                           "), n_routed_experts (" + std::to_string(c.n_routed_experts) +
                           ") and the sizes";
  if (n.tensors > kMaxTensors)
    throw Error(source + " describes a model of " + what + ": over dsv3's limit of " +
                    std::to_string(static_cast<int64_t>(kMaxTensors)) + " tensors",
                hint);
  if (n.parameters > kMaxParameters)
    throw Error(
        source + " describes a model of " + what + ": over dsv3's limit of 10^13 parameters", hint);
}

DType storage_dtype(const ParamSpec& p, DType dtype) {
  if (p.keep_f32) return DType::F32;
  if (dtype == DType::F8_E4M3) return p.fp8_able ? DType::F8_E4M3 : DType::BF16;
  return dtype;
}

}  // namespace dsv3

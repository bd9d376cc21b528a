// dsv3 inspect: a model's architecture, parameter counts, bytes by dtype, KV-cache size and
// tensors.
#include <cstdio>
#include <map>
#include <string>

#include "apps/dsv3/commands.h"
#include "base/error.h"
#include "base/file.h"
#include "base/strings.h"
#include "model/config.h"
#include "model/param_table.h"
#include "model/presets.h"
#include "model/weights.h"
#include "tensor/block_scale.h"
#include "tensor/safetensors_folder.h"

namespace dsv3::cli {
namespace {

constexpr const char* kUsage =
    R"(usage: dsv3 inspect (-m DIR | DIR | --config FILE | --preset NAME) [--tensors]

Shows a model's architecture, its parameters (total and activated per token, main model and MTP
module separately), bytes by dtype, KV-cache bytes per token and, with --tensors, every tensor.

  -m, --model DIR  a Hugging Face model folder (config.json + *.safetensors), as every command
                   takes it (or DIR alone); every tensor the config needs is checked (name,
                   shape, dtype, FP8 scales) before anything prints
  --config FILE    a config.json alone (sizes are computed; dtypes as the config says)
  --preset NAME    a built-in shape (see dsv3 init --help)
  --tensors        also list every tensor: name, dtype, shape, bytes

"N parameters + M MTP" is the count every dsv3 command prints for a model: the main model without
the Multi-Token Prediction module (as DeepSeek counts V3's 671B), then the MTP module's own
parameters, its copies of the embedding and the output head (SPEC §6) left out. Activated
parameters count what one token's forward pass multiplies with: every weight except the routed
experts it is not sent to and the embedding (a lookup).
)";

void print_architecture(const ModelConfig& c, const std::string& source) {
  std::printf("model        %s (%s)\n", std::string(arch_name(c.arch)).c_str(), source.c_str());
  int64_t moe_layers = 0;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) moe_layers += c.is_moe_layer(l);
  std::printf(
      "layers       %lld (%lld dense, %lld MoE)", static_cast<long long>(c.num_hidden_layers),
      static_cast<long long>(c.num_hidden_layers - moe_layers), static_cast<long long>(moe_layers));
  if (c.num_nextn_predict_layers > 0)
    std::printf(" + %lld MTP", static_cast<long long>(c.num_nextn_predict_layers));
  std::printf(", hidden %lld, vocab %lld, %s embeddings\n", static_cast<long long>(c.hidden_size),
              static_cast<long long>(c.vocab_size), c.tie_word_embeddings ? "tied" : "untied");
  if (c.is_mla()) {
    std::printf(
        "attention    MLA, %lld heads, q_lora_rank %lld, kv_lora_rank %lld, qk %lld+%lld, v %lld\n",
        static_cast<long long>(c.num_attention_heads), static_cast<long long>(c.q_lora_rank),
        static_cast<long long>(c.kv_lora_rank), static_cast<long long>(c.qk_nope_head_dim),
        static_cast<long long>(c.qk_rope_head_dim), static_cast<long long>(c.v_head_dim));
  } else {
    std::printf("attention    GQA, %lld query heads, %lld KV heads, head_dim %lld%s\n",
                static_cast<long long>(c.num_attention_heads),
                static_cast<long long>(c.num_key_value_heads), static_cast<long long>(c.head_dim),
                c.attention_bias ? ", q/k/v biases" : "");
  }
  std::printf("             softmax scale %.7f\n", c.softmax_scale());
  std::printf("rope         theta %g, max positions %lld", c.rope_theta,
              static_cast<long long>(c.max_position_embeddings));
  const RopeScaling& rs = c.rope_scaling;
  if (rs.type == "yarn")
    std::printf(", YaRN factor %g (original %lld, beta %g/%g, mscale %g/%g)", rs.factor,
                static_cast<long long>(rs.original_max_position_embeddings), rs.beta_fast,
                rs.beta_slow, rs.mscale, rs.mscale_all_dim);
  else if (rs.type == "llama3")
    std::printf(", llama3 factor %g (original %lld, low %g, high %g)", rs.factor,
                static_cast<long long>(rs.original_max_position_embeddings), rs.low_freq_factor,
                rs.high_freq_factor);
  else if (!rs.type.empty())
    std::printf(", %s factor %g", rs.type.c_str(), rs.factor);
  std::printf("\n");
  if (c.n_routed_experts > 0) {
    std::printf("moe          %lld routed experts (top-%lld",
                static_cast<long long>(c.n_routed_experts),
                static_cast<long long>(c.num_experts_per_tok));
    if (c.n_group > 1)
      std::printf(" within the best %lld of %lld groups", static_cast<long long>(c.topk_group),
                  static_cast<long long>(c.n_group));
    std::printf(", %s, %s%s, scale %g) + %lld shared, expert width %lld\n", c.scoring_func.c_str(),
                c.topk_method.c_str(), c.norm_topk_prob ? ", normalised" : "",
                c.routed_scaling_factor, static_cast<long long>(c.n_shared_experts),
                static_cast<long long>(c.moe_intermediate_size));
  }
  std::printf("ffn          dense width %lld, rms_norm_eps %g\n",
              static_cast<long long>(c.intermediate_size), c.rms_norm_eps);
}

void print_counts(const ModelConfig& c) {
  ParamCounts n = count_params(c);
  // The figure every command prints (parameter_summary), then its parts.
  std::printf("parameters   %s\n", parameter_summary(c).c_str());
  std::printf("             main %s total, %s activated per token\n",
              format_params(n.main_total).c_str(), format_params(n.main_activated).c_str());
  if (n.mtp_total > 0)
    std::printf(
        "             MTP  %s unique (%s stored with its copies of the embedding and head), "
        "%s activated\n",
        format_params(n.mtp_unique).c_str(), format_params(n.mtp_total).c_str(),
        format_params(n.mtp_activated).c_str());
  int64_t per_layer = c.kv_cache_elems_per_token_layer();
  int64_t per_token = per_layer * c.num_hidden_layers;
  std::printf(
      "kv cache     %lld elements per token per layer%s; %lld per token over %lld layers = %s "
      "per token in BF16\n",
      static_cast<long long>(per_layer), c.is_mla() ? " (c_kv + k_pe)" : " (K + V)",
      static_cast<long long>(per_token), static_cast<long long>(c.num_hidden_layers),
      human_bytes(static_cast<uint64_t>(per_token) * 2).c_str());
}

struct Row {
  std::string name, dtype;
  Shape shape;
  uint64_t bytes;
};

void print_bytes_and_tensors(const std::vector<Row>& rows, bool tensors, const char* note) {
  std::map<std::string, std::pair<uint64_t, uint64_t>> by_dtype;  // dtype -> (tensors, bytes)
  uint64_t total = 0;
  for (const Row& r : rows) {
    by_dtype[r.dtype].first++;
    by_dtype[r.dtype].second += r.bytes;
    total += r.bytes;
  }
  std::printf("bytes        %s in %zu tensors%s\n", human_bytes(total).c_str(), rows.size(), note);
  for (const auto& [dt, v] : by_dtype)
    std::printf("             %-8s %10s in %llu tensors\n", dt.c_str(),
                human_bytes(v.second).c_str(), static_cast<unsigned long long>(v.first));
  if (!tensors) return;
  std::printf("\n%-64s %-8s %-20s %s\n", "tensor", "dtype", "shape", "bytes");
  for (const Row& r : rows)
    std::printf("%-64s %-8s %-20s %llu\n", r.name.c_str(), r.dtype.c_str(),
                shape_str(r.shape).c_str(), static_cast<unsigned long long>(r.bytes));
}

// Without files: the dtypes the config implies (torch_dtype; E4M3 + scales when quantized).
std::vector<Row> rows_from_config(const ModelConfig& c) {
  DType base = c.torch_dtype == "float32"   ? DType::F32
               : c.torch_dtype == "float16" ? DType::F16
                                            : DType::BF16;
  std::vector<Row> rows;
  for (const ParamSpec& p : param_table(c)) {
    DType dt = p.keep_f32 ? DType::F32 : (c.fp8_weights && p.fp8_able) ? DType::F8_E4M3 : base;
    uint64_t n = static_cast<uint64_t>(shape_numel(p.shape));
    rows.push_back({p.name, std::string(dtype_name(dt)), p.shape, n * dtype_size(dt)});
    if (dt == DType::F8_E4M3) {
      Shape s = scale_shape_128x128(p.shape[0], p.shape[1]);
      rows.push_back({p.name + "_scale_inv", "F32", s, static_cast<uint64_t>(shape_numel(s)) * 4});
    }
  }
  return rows;
}

}  // namespace

int cmd_inspect(Args& a) {
  if (a.help()) {
    std::fputs(kUsage, stdout);
    std::printf("\npresets: ");
    for (const auto& n : preset_names()) std::printf("%s ", n.c_str());
    std::printf("\n");
    return 0;
  }
  auto model_dir = a.get({"-m", "--model"});
  auto config_file = a.get({"--config"});
  auto preset = a.get({"--preset"});
  bool tensors = a.flag({"--tensors"});
  auto pos = a.positionals();
  a.finish();
  int sources =
      (model_dir ? 1 : 0) + (config_file ? 1 : 0) + (preset ? 1 : 0) + static_cast<int>(pos.size());
  if (sources != 1)
    throw Error("give exactly one of -m DIR, --config FILE or --preset NAME",
                "see dsv3 inspect --help");
  if (!pos.empty()) model_dir = pos[0];

  if (model_dir) {
    const std::string& dir = *model_dir;
    // Validates every tensor the config needs before printing anything.
    ModelWeights w = ModelWeights::load(dir);
    TensorStore store = TensorStore::open(dir);
    print_architecture(w.config(), dir);
    print_counts(w.config());
    std::vector<Row> rows;
    for (const std::string& name : store.names()) {
      auto ref = store.find(name);
      rows.push_back(
          {name, std::string(dtype_name(ref->info->dtype)), ref->info->shape, ref->info->nbytes});
    }
    print_bytes_and_tensors(rows, tensors, " (from the files)");
    return 0;
  }
  ModelConfig c = preset ? preset_config(*preset) : load_config(*config_file);
  print_architecture(c, preset ? "preset " + *preset : *config_file);
  print_counts(c);
  print_bytes_and_tensors(rows_from_config(c), tensors, " (as the config's torch_dtype)");
  return 0;
}

}  // namespace dsv3::cli

// DeepSeek-V3 / V2 (MLA + DeepSeekMoE + MTP, SPEC §1): the config checks specific to MLA models;
// the stack itself is CausalLm.
#include "base/error.h"
#include "model/causal_lm.h"

namespace dsv3 {

std::unique_ptr<Model> make_deepseek_model(const ModelWeights& w, ComputeContext ctx) {
  const ModelConfig& c = w.config();
  DSV3_CHECK(c.kv_lora_rank > 0 && c.qk_rope_head_dim > 0 && c.qk_rope_head_dim % 2 == 0 &&
                 c.qk_nope_head_dim >= 0 && c.v_head_dim > 0,
             "config.json: " + c.model_type +
                 " needs kv_lora_rank > 0, an even qk_rope_head_dim > 0 and v_head_dim > 0");
  return std::make_unique<CausalLm>(w, ctx, LayerOptions{});
}

}  // namespace dsv3

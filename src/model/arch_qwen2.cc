// Qwen2 (R1-Distill-Qwen, SPEC §6-7): GQA with q/k/v biases (always present, no o_proj bias),
// rotate-half RoPE, dense SwiGLU, RMSNorm. The sliding window is unused by these models.
#include "base/error.h"
#include "model/causal_lm.h"

namespace dsv3 {

std::unique_ptr<Model> make_qwen2_model(const ModelWeights& w, ComputeContext ctx) {
  const ModelConfig& c = w.config();
  DSV3_CHECK(c.num_key_value_heads > 0 && c.num_attention_heads % c.num_key_value_heads == 0,
             "config.json: num_attention_heads must be a multiple of num_key_value_heads");
  const Json* sliding = c.raw.find("use_sliding_window");
  DSV3_CHECK(!sliding || sliding->is_null() || !sliding->as_bool("use_sliding_window"),
             "config.json: use_sliding_window is not supported", "set it to false");
  LayerOptions opt;
  opt.qkv_bias = true;
  return std::make_unique<CausalLm>(w, ctx, opt);
}

}  // namespace dsv3

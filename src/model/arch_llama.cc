// Llama (R1-Distill-Llama): GQA, rotate-half RoPE with llama3 frequency scaling, dense SwiGLU,
// RMSNorm; attention_bias adds biases to q/k/v and o_proj (HF LlamaAttention).
#include "base/error.h"
#include "model/causal_lm.h"

namespace dsv3 {

std::unique_ptr<Model> make_llama_model(const ModelWeights& w, ComputeContext ctx) {
  const ModelConfig& c = w.config();
  DSV3_CHECK(c.num_key_value_heads > 0 && c.num_attention_heads % c.num_key_value_heads == 0,
             "config.json: num_attention_heads must be a multiple of num_key_value_heads");
  LayerOptions opt;
  opt.qkv_bias = opt.o_bias = c.attention_bias;
  return std::make_unique<CausalLm>(w, ctx, opt);
}

}  // namespace dsv3

// Grouped-query attention with rotate-half RoPE, as in Qwen2 and Llama (SPEC §6, §7): H query heads
// share n_kv_heads K/V heads; optional q/k/v biases (Qwen2 always, Llama with attention_bias).
#pragma once
#include <string>
#include <vector>

#include "model/batch.h"
#include "model/linear.h"

namespace dsv3 {

// Activations of one batch of N rows, kept for a backward pass.
struct GqaActs {
  std::vector<float> q;    // [N, H, head_dim], rotated
  std::vector<float> kv;   // [N, 2, kv_heads, head_dim]: the cache rows [k (rotated); v]
  std::vector<float> o;    // [N, H, head_dim] before o_proj
  std::vector<float> lse;  // [N, H] log-sum-exp of each row's scaled scores (backward)
  std::vector<float> proj, cache_scratch;
};

class GqaAttention {
 public:
  // prefix: "model.layers.3.self_attn."; qkv_bias / o_bias: whether those biases exist.
  GqaAttention(const ModelConfig& c, const ParamStore& ps, const std::string& prefix,
               int64_t cache_layer, bool qkv_bias, bool o_bias);
  // x [N, d] (after the input norm) for the rows of `b`; cos/sin [N, head_dim / 2].
  void forward(ComputeContext ctx, const float* x, const Batch& b, const float* cos,
               const float* sin, GqaActs& a, float* out) const;

 private:
  int64_t d_, H_, kvh_, hd_, layer_;
  float scale_;
  Linear q_, k_, v_, o_;
};

}  // namespace dsv3

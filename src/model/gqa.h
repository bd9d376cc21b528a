// Grouped-query attention with rotate-half RoPE, as in Qwen2 and Llama (SPEC §6, §7): H query heads
// share n_kv_heads K/V heads; optional q/k/v biases (Qwen2 always, Llama with attention_bias).
#pragma once
#include <string>
#include <vector>

#include "model/model.h"

namespace dsv3 {

struct GqaActs {
  std::vector<float> q;   // [T, H, head_dim], rotated
  std::vector<float> kv;  // [T, 2, kv_heads, head_dim]: the cache rows [k (rotated); v]
  std::vector<float> o;   // [T, H, head_dim] before o_proj
  std::vector<float> cache_scratch;
};

class GqaAttention {
 public:
  // prefix: "model.layers.3.self_attn."; qkv_bias / o_bias: whether those biases exist.
  GqaAttention(const ModelConfig& c, const ModelWeights& w, const std::string& prefix,
               int64_t cache_layer, bool qkv_bias, bool o_bias);
  // x [T, d] (after the input norm) at positions cache.length() ..; cos/sin [T, head_dim / 2].
  void forward(ComputeContext ctx, const float* x, int64_t T, const float* cos, const float* sin,
               AttentionCache& cache, GqaActs& a, float* out) const;

 private:
  int64_t d_, H_, kvh_, hd_, layer_;
  float scale_;
  WeightRef q_, k_, v_, o_;
  std::vector<float> q_bias_, k_bias_, v_bias_, o_bias_;
};

}  // namespace dsv3

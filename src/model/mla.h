// Multi-head Latent Attention (SPEC §1.3) with its two computations over the same latent cache
// (SPEC §1.5): Naive materialises per-head K and V (the training path), Absorbed folds W_UK into
// the query and W_UV into the output so attention is MQA over [c_kv; k_pe] (decoding).
#pragma once
#include <string>
#include <vector>

#include "model/model.h"

namespace dsv3 {

// Activations of one call (S = cache positions after this call), kept for a backward pass.
struct MlaActs {
  std::vector<float> cq_raw;  // [T, q_lora] W_DQ x (q_lora only)
  std::vector<float> cq;      // [T, q_lora] RMSNorm_q(cq_raw)
  std::vector<float> q;       // [T, H, d_n + d_r] W_UQ c_q (or q_proj x), q_pe rotated
  std::vector<float> kv_a;    // [T, d_c + d_r] W_DKV' x
  std::vector<float> latent;  // [T, d_c + d_r] [RMSNorm_kv(c_kv); RoPE(k_pe)]: the cache rows
  std::vector<float> c_kv;    // Naive: [S, d_c] latents of every position
  std::vector<float> kv_up;   // Naive: [S, H, d_n + d_v] kv_b_proj(c_kv): k_nope and v
  std::vector<float> k;       // Naive: [S, H, d_n + d_r] k = [k_nope; k_pe]
  std::vector<float> q_abs;   // Absorbed: [T, H, d_c + d_r] [W_UK[h]ᵀ q_nope[h]; q_pe[h]]
  std::vector<float> o_lat;   // Absorbed: [H, T, d_c] sum_t P c_kv[t]
  std::vector<float> o_head;  // Absorbed: [H, T, d_v] W_UV[h] o_lat[h]
  std::vector<float> o;       // [T, H, d_v] attention output before o_proj
  std::vector<float> cache_scratch;
};

class Mla {
 public:
  // prefix: "model.layers.3.self_attn."; cache_layer: this layer's index in its cache.
  Mla(const ModelConfig& c, const ModelWeights& w, const std::string& prefix, int64_t cache_layer);
  // x [T, d] (after the input norm) at positions cache.length() ..; cos/sin [T, d_r / 2].
  // Stores the T latent rows in the cache (uncommitted) and writes out [T, d].
  void forward(ComputeContext ctx, AttentionPath path, const float* x, int64_t T, const float* cos,
               const float* sin, AttentionCache& cache, MlaActs& a, float* out) const;

 private:
  void attend_naive(ComputeContext ctx, const float* rows, int64_t T, int64_t S, MlaActs& a) const;
  void attend_absorbed(ComputeContext ctx, const float* rows, int64_t T, int64_t S,
                       MlaActs& a) const;

  int64_t d_, H_, q_lora_, d_c_, d_n_, d_r_, d_v_, layer_;
  float eps_, scale_;
  WeightRef q_a_, q_b_, q_, kv_a_, kv_b_, o_;
  std::vector<float> q_a_norm_, kv_a_norm_;
};

}  // namespace dsv3

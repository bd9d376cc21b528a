// One decoder layer (SPEC §1.2): h = x + Attn(RMSNorm_attn(x)); x' = h + FFN(RMSNorm_ffn(h)).
// Attention is MLA (DeepSeek) or GQA (Qwen2 / Llama); the FFN is dense SwiGLU or DeepSeekMoE.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "model/ffn.h"
#include "model/gqa.h"
#include "model/mla.h"
#include "model/moe.h"

namespace dsv3 {

struct DecoderActs {
  std::vector<float> x_attn;    // [T, d] RMSNorm_attn(x)
  std::vector<float> attn_out;  // [T, d]
  std::vector<float> h;         // [T, d] x + attn_out
  std::vector<float> x_ffn;     // [T, d] RMSNorm_ffn(h)
  std::vector<float> ffn_out;   // [T, d]
  MlaActs mla;
  GqaActs gqa;
  FfnActs ffn;
  MoeActs moe;
};

// Architecture choices the layer cannot read from the config alone.
struct LayerOptions {
  bool qkv_bias = false, o_bias = false;  // GQA only
};

class DecoderLayer {
 public:
  // prefix: "model.layers.<layer>."; `layer` decides dense or MoE (first_k_dense_replace);
  // cache_layer: this layer's index in its cache.
  DecoderLayer(const ModelConfig& c, const ModelWeights& w, int64_t layer, int64_t cache_layer,
               const LayerOptions& opt);
  // x [T, d] is the layer input, y [T, d] its output (y may equal x).
  void forward(ComputeContext ctx, AttentionPath path, const float* x, float* y, int64_t T,
               const float* cos, const float* sin, AttentionCache& cache, DecoderActs& a) const;

 private:
  int64_t d_;
  float eps_;
  std::vector<float> attn_norm_, ffn_norm_;
  std::optional<Mla> mla_;
  std::optional<GqaAttention> gqa_;
  std::optional<SwiGlu> dense_;
  std::optional<Moe> moe_;
};

}  // namespace dsv3

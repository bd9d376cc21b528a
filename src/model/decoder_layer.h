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

// Activations of one layer over a batch of N rows (the input itself is kept by the caller).
struct LayerActs {
  std::vector<float> x_attn;    // [N, d] RMSNorm_attn(x) (recomputable, SPEC §3.1)
  std::vector<float> attn_out;  // [N, d]
  std::vector<float> h;         // [N, d] x + attn_out
  std::vector<float> x_ffn;     // [N, d] RMSNorm_ffn(h) (recomputable)
  std::vector<float> ffn_out;   // [N, d]
  MlaActs mla;
  GqaActs gqa;
  FfnActs ffn;
  MoeActs moe;
};

// Scratch of a backward call, shared by the layers of a stack (one runs at a time).
struct LayerGrads {
  std::vector<float> dh;  // [N, d] dL/dh, h = x + attn_out
  std::vector<float> dn;  // [N, d] dL/d(a norm's output)
  MlaGrads mla;
  MoeGrads moe;  // its ffn scratch serves the dense FFN too
};

// Architecture choices the layer cannot read from the config alone.
struct LayerOptions {
  bool qkv_bias = false, o_bias = false;  // GQA only
};

class DecoderLayer {
 public:
  // prefix "model.layers.<layer>."; `layer` decides dense or MoE (first_k_dense_replace);
  // cache_layer: this layer's index in its cache.
  DecoderLayer(const ModelConfig& c, const ParamStore& ps, int64_t layer, int64_t cache_layer,
               const LayerOptions& opt);
  // x [N, d] is the layer input, y [N, d] its output (y may equal x).
  void forward(ComputeContext ctx, AttentionPath path, MoeDispatcher& dispatcher, const float* x,
               float* y, const Batch& b, const float* cos, const float* sin, LayerActs& a) const;
  // The backward of forward() (Naive MLA, cache-less sequences) over the same x, b and a: writes
  // dx [N, d] = dL/dx for dy [N, d] = dL/dy (dx != dy) and accumulates every parameter's
  // gradient. neg_sin: -sin. MLA (DeepSeek) layers only.
  void backward(ComputeContext ctx, MoeDispatcher& dispatcher, const float* x, const Batch& b,
                const float* cos, const float* neg_sin, const LayerActs& a, const float* dy,
                LayerGrads& g, float* dx) const;
  // Recomputation (SPEC §3.1, ForwardActs::recompute): frees the RMSNorm outputs and MLA's
  // up-projections after the forward; recompute() rebuilds them bit for bit before backward().
  static void release_recomputable(LayerActs& a);
  // Frees the Linear inputs the FP8 recipe keeps as E4M3 tiles instead (SwiGlu::release_cached,
  // Mla::keeps_inputs), after each layer's forward when every layer's activations are kept;
  // recompute: what recompute() reads stays.
  static void release_cached(LayerActs& a, bool recompute);
  void recompute(ComputeContext ctx, const float* x, const Batch& b, const float* cos,
                 const float* sin, LayerActs& a) const;
  const Moe* moe() const { return moe_ ? &*moe_ : nullptr; }

 private:
  int64_t d_;
  float eps_;
  const Param& attn_norm_;
  const Param& ffn_norm_;
  std::optional<Mla> mla_;
  std::optional<GqaAttention> gqa_;
  std::optional<SwiGlu> dense_;
  std::optional<Moe> moe_;
};

}  // namespace dsv3

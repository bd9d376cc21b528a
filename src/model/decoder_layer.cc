// Decoder layer forward (SPEC §1.2).
#include "model/decoder_layer.h"

#include <algorithm>

namespace dsv3 {

DecoderLayer::DecoderLayer(const ModelConfig& c, const ModelWeights& w, int64_t layer,
                           int64_t cache_layer, const LayerOptions& opt)
    : d_(c.hidden_size), eps_(static_cast<float>(c.rms_norm_eps)) {
  const std::string p = "model.layers." + std::to_string(layer) + ".";
  attn_norm_ = weight_f32(w, p + "input_layernorm.weight", d_);
  ffn_norm_ = weight_f32(w, p + "post_attention_layernorm.weight", d_);
  if (c.is_mla()) {
    mla_.emplace(c, w, p + "self_attn.", cache_layer);
  } else {
    gqa_.emplace(c, w, p + "self_attn.", cache_layer, opt.qkv_bias, opt.o_bias);
  }
  if (c.is_moe_layer(layer)) {
    moe_.emplace(c, w, p + "mlp.");
  } else {
    dense_.emplace(w, p + "mlp.", d_, c.intermediate_size);
  }
}

void DecoderLayer::forward(ComputeContext ctx, AttentionPath path, const float* x, float* y,
                           int64_t T, const float* cos, const float* sin, AttentionCache& cache,
                           DecoderActs& a) const {
  const Kernels& k = ctx.kernels;
  const int64_t n = T * d_;
  a.x_attn.resize(n);
  a.attn_out.resize(n);
  a.h.resize(n);
  a.x_ffn.resize(n);
  a.ffn_out.resize(n);
  k.rmsnorm(a.x_attn.data(), d_, x, d_, attn_norm_.data(), T, d_, eps_);
  if (mla_) {
    mla_->forward(ctx, path, a.x_attn.data(), T, cos, sin, cache, a.mla, a.attn_out.data());
  } else {
    gqa_->forward(ctx, a.x_attn.data(), T, cos, sin, cache, a.gqa, a.attn_out.data());
  }
  std::copy_n(x, n, a.h.data());
  k.axpy(a.h.data(), 1.0f, a.attn_out.data(), n);
  k.rmsnorm(a.x_ffn.data(), d_, a.h.data(), d_, ffn_norm_.data(), T, d_, eps_);
  if (moe_) {
    moe_->forward(ctx, a.x_ffn.data(), T, a.moe, a.ffn_out.data());
  } else {
    dense_->forward(ctx, a.x_ffn.data(), T, a.ffn, a.ffn_out.data());
  }
  std::copy_n(a.h.data(), n, y);
  k.axpy(y, 1.0f, a.ffn_out.data(), n);
}

}  // namespace dsv3

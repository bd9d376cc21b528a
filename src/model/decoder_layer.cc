// Decoder layer forward (SPEC §1.2).
#include "model/decoder_layer.h"

#include <algorithm>

#include "base/error.h"

namespace dsv3 {

namespace {
std::string layer_prefix(int64_t layer) {
  return "model.layers." + std::to_string(layer) + ".";
}
}  // namespace

DecoderLayer::DecoderLayer(const ModelConfig& c, const ParamStore& ps, int64_t layer,
                           int64_t cache_layer, const LayerOptions& opt)
    : d_(c.hidden_size),
      eps_(static_cast<float>(c.rms_norm_eps)),
      attn_norm_(ps.vector(layer_prefix(layer) + "input_layernorm.weight", d_)),
      ffn_norm_(ps.vector(layer_prefix(layer) + "post_attention_layernorm.weight", d_)) {
  const std::string p = layer_prefix(layer);
  if (c.is_mla()) {
    mla_.emplace(c, ps, p + "self_attn.", cache_layer);
  } else {
    gqa_.emplace(c, ps, p + "self_attn.", cache_layer, opt.qkv_bias, opt.o_bias);
  }
  if (c.is_moe_layer(layer)) {
    moe_.emplace(c, ps, p + "mlp.");
  } else {
    dense_.emplace(ps, p + "mlp.", d_, c.intermediate_size);
  }
}

void DecoderLayer::forward(ComputeContext ctx, AttentionPath path, MoeDispatcher& dispatcher,
                           const float* x, float* y, const Batch& b, const float* cos,
                           const float* sin, LayerActs& a) const {
  const Kernels& k = ctx.kernels;
  const int64_t N = b.rows(), n = N * d_;
  a.x_attn.resize(n);
  a.attn_out.resize(n);
  a.h.resize(n);
  a.x_ffn.resize(n);
  a.ffn_out.resize(n);
  k.rmsnorm(a.x_attn.data(), d_, x, d_, attn_norm_.f32, N, d_, eps_);
  if (mla_) {
    mla_->forward(ctx, path, a.x_attn.data(), b, cos, sin, a.mla, a.attn_out.data());
  } else {
    gqa_->forward(ctx, a.x_attn.data(), b, cos, sin, a.gqa, a.attn_out.data());
  }
  std::copy_n(x, n, a.h.data());
  k.axpy(a.h.data(), 1.0f, a.attn_out.data(), n);
  k.rmsnorm(a.x_ffn.data(), d_, a.h.data(), d_, ffn_norm_.f32, N, d_, eps_);
  if (moe_) {
    moe_->forward(ctx, dispatcher, a.x_ffn.data(), N, a.moe, a.ffn_out.data());
  } else {
    dense_->reserve(a.ffn, N);
    dense_->forward(ctx, a.x_ffn.data(), N, a.ffn, 0, a.ffn_out.data());
  }
  std::copy_n(a.h.data(), n, y);
  k.axpy(y, 1.0f, a.ffn_out.data(), n);
}

void DecoderLayer::backward(ComputeContext ctx, MoeDispatcher& dispatcher, const float* x,
                            const Batch& b, const float* cos, const float* neg_sin,
                            const LayerActs& a, const float* dy, LayerGrads& g, float* dx) const {
  const Kernels& k = ctx.kernels;
  DSV3_CHECK(mla_.has_value(), "model: training supports MLA (DeepSeek) layers only",
             "train a deepseek_v3 or deepseek_v2 model");
  const int64_t N = b.rows(), n = N * d_;
  g.dh.assign(dy, dy + n);
  g.dn.resize(n);
  // y = h + FFN(RMSNorm_ffn(h))
  if (moe_) {
    moe_->backward(ctx, dispatcher, a.x_ffn.data(), N, a.moe, dy, g.moe, g.dn.data());
  } else {
    dense_->backward(ctx, a.x_ffn.data(), N, a.ffn, 0, dy, g.moe.ffn, g.dn.data());
  }
  k.rmsnorm_backward(g.dh.data(), d_, ffn_norm_.grad, g.dn.data(), d_, a.h.data(), d_,
                     ffn_norm_.f32, N, d_, eps_);
  // h = x + Attn(RMSNorm_attn(x))
  mla_->backward(ctx, a.x_attn.data(), b, cos, neg_sin, a.mla, g.dh.data(), g.mla, g.dn.data());
  std::copy_n(g.dh.data(), n, dx);
  k.rmsnorm_backward(dx, d_, attn_norm_.grad, g.dn.data(), d_, x, d_, attn_norm_.f32, N, d_, eps_);
}

void DecoderLayer::release_recomputable(LayerActs& a) {
  std::vector<float>().swap(a.x_attn);
  std::vector<float>().swap(a.x_ffn);
  Mla::release_recomputable(a.mla);
}

void DecoderLayer::release_cached(LayerActs& a, bool recompute) {
  if (Mla::keeps_inputs(a.mla)) {
    std::vector<float>().swap(a.x_attn);
    if (!recompute) {  // recompute() rebuilds the up-projections from these
      std::vector<float>().swap(a.mla.cq);
      std::vector<float>().swap(a.mla.c_kv);
    }
  }
  SwiGlu::release_cached(a.ffn);
  SwiGlu::release_cached(a.moe.routed);
  SwiGlu::release_cached(a.moe.shared);
  // A dense FFN's input has no other reader; a MoE layer's is also the router's (FP32, SPEC
  // §3.1), but its experts' grouped rows have none.
  if (SwiGlu::keeps_input(a.ffn)) std::vector<float>().swap(a.x_ffn);
  if (SwiGlu::keeps_input(a.moe.routed)) std::vector<float>().swap(a.moe.grouped);
}

void DecoderLayer::recompute(ComputeContext ctx, const float* x, const Batch& b, const float* cos,
                             const float* sin, LayerActs& a) const {
  DSV3_CHECK(mla_.has_value(), "model: recomputation supports MLA (DeepSeek) layers only");
  const int64_t N = b.rows();
  a.x_attn.resize(N * d_);
  a.x_ffn.resize(N * d_);
  ctx.kernels.rmsnorm(a.x_attn.data(), d_, x, d_, attn_norm_.f32, N, d_, eps_);
  ctx.kernels.rmsnorm(a.x_ffn.data(), d_, a.h.data(), d_, ffn_norm_.f32, N, d_, eps_);
  mla_->recompute(ctx, a.x_attn.data(), N, cos, sin, a.mla);
}

}  // namespace dsv3

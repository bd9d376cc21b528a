// MTP forward (SPEC §1.7, §6 "MTP, model.layers.61.").
#include "model/mtp.h"

#include <algorithm>

#include "base/error.h"

namespace dsv3 {

namespace {
std::string mtp_prefix(const ModelConfig& c) {
  return "model.layers." + std::to_string(c.num_hidden_layers) + ".";
}
// The MTP copies of the embedding and head may be aliased to the main ones (SPEC §6).
WeightRef own_or_main(const ModelWeights& w, const std::string& own, const std::string& main,
                      int64_t rows, int64_t cols) {
  return weight_ref(w, w.has(own) ? own : main, rows, cols);
}
}  // namespace

Mtp::Mtp(const ModelConfig& c, const ModelWeights& w, const RopeParams& rope)
    : c_(c),
      rope_(rope),
      eps_(static_cast<float>(c.rms_norm_eps)),
      layer_(c, w, c.num_hidden_layers, 0, LayerOptions{}) {
  const std::string p = mtp_prefix(c);
  const int64_t V = c.vocab_size, d = c.hidden_size;
  embed_ = own_or_main(w, p + "embed_tokens.weight", "model.embed_tokens.weight", V, d);
  head_ = own_or_main(w, p + "shared_head.head.weight", "lm_head.weight", V, d);
  eh_proj_ = weight_ref(w, p + "eh_proj.weight", d, 2 * d);
  enorm_ = weight_f32(w, p + "enorm.weight", d);
  hnorm_ = weight_f32(w, p + "hnorm.weight", d);
  head_norm_ = weight_f32(w, p + "shared_head.norm.weight", d);
}

CacheLayout Mtp::cache_layout() const {
  return {1, c_.kv_cache_elems_per_token_layer()};
}

void Mtp::forward(ComputeContext ctx, AttentionPath path, const float* hidden,
                  const int32_t* next_ids, int64_t T, AttentionCache& cache, MtpActs& a,
                  float* logits) const {
  const Kernels& k = ctx.kernels;
  const int64_t d = c_.hidden_size, half = rope_.dim / 2, pos0 = cache.length();
  check_tokens(c_, next_ids, T, pos0);
  a.emb.resize(T * d);
  a.cat.resize(T * 2 * d);
  a.x.resize(T * d);
  a.normed.resize(T * d);
  a.cos.resize(T * half);
  a.sin.resize(T * half);
  k.embedding(a.emb.data(), next_ids, T, embed_);
  k.rmsnorm(a.cat.data(), 2 * d, a.emb.data(), d, enorm_.data(), T, d, eps_);
  k.rmsnorm(a.cat.data() + d, 2 * d, hidden, d, hnorm_.data(), T, d, eps_);
  k.matmul(a.x.data(), a.cat.data(), eh_proj_, T, ctx.pool);
  rope_tables(rope_, pos0, T, a.cos.data(), a.sin.data());
  layer_.forward(ctx, path, a.x.data(), a.x.data(), T, a.cos.data(), a.sin.data(), cache, a.layer);
  k.rmsnorm(a.normed.data(), d, a.x.data(), d, head_norm_.data(), T, d, eps_);
  k.matmul(logits, a.normed.data(), head_, T, ctx.pool);
  cache.commit(T);
}

}  // namespace dsv3

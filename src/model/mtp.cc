// MTP forward over a batch (SPEC §1.7, §6 "MTP, model.layers.61.").
#include "model/mtp.h"

#include <algorithm>

#include "base/error.h"

namespace dsv3 {

namespace {
std::string mtp_prefix(const ModelConfig& c) {
  return "model.layers." + std::to_string(c.num_hidden_layers) + ".";
}
}  // namespace

Mtp::Mtp(const ModelConfig& c, const ParamStore& ps, const RopeParams& rope)
    : c_(c),
      rope_(rope),
      eps_(static_cast<float>(c.rms_norm_eps)),
      eh_proj_(ps.matrix(mtp_prefix(c) + "eh_proj.weight", c.hidden_size, 2 * c.hidden_size),
               nullptr, LinearKind::KeepBf16),
      head_(ps.matrix(mtp_prefix(c) + "shared_head.head.weight", c.vocab_size, c.hidden_size),
            nullptr, LinearKind::KeepBf16),
      embed_(ps.matrix(mtp_prefix(c) + "embed_tokens.weight", c.vocab_size, c.hidden_size)),
      enorm_(ps.vector(mtp_prefix(c) + "enorm.weight", c.hidden_size)),
      hnorm_(ps.vector(mtp_prefix(c) + "hnorm.weight", c.hidden_size)),
      head_norm_(ps.vector(mtp_prefix(c) + "shared_head.norm.weight", c.hidden_size)),
      layer_(c, ps, c.num_hidden_layers, 0, LayerOptions{}) {}

CacheLayout Mtp::cache_layout() const {
  return {1, c_.kv_cache_elems_per_token_layer()};
}

void Mtp::forward(ComputeContext ctx, AttentionPath path, MoeDispatcher& dispatcher,
                  const float* hidden, const Batch& b, MtpActs& a, float* logits) const {
  const Kernels& k = ctx.kernels;
  const int64_t d = c_.hidden_size, half = rope_.dim / 2, N = b.rows();
  a.emb.resize(N * d);
  a.cat.resize(N * 2 * d);
  a.x.resize(N * d);
  a.y.resize(N * d);
  a.normed.resize(N * d);
  a.cos.resize(N * half);
  a.sin.resize(N * half);
  k.embedding(a.emb.data(), b.ids().data(), N, embed_.value);
  k.rmsnorm(a.cat.data(), 2 * d, a.emb.data(), d, enorm_.f32, N, d, eps_);
  k.rmsnorm(a.cat.data() + d, 2 * d, hidden, d, hnorm_.f32, N, d, eps_);
  eh_proj_.forward(ctx, a.cat.data(), N, a.x.data());
  for (const BatchSeq& s : b.seqs())
    rope_tables(rope_, s.pos0, s.count, a.cos.data() + s.begin * half,
                a.sin.data() + s.begin * half);
  layer_.forward(ctx, path, dispatcher, a.x.data(), a.y.data(), b, a.cos.data(), a.sin.data(),
                 a.layer);
  DecoderLayer::release_cached(a.layer, false);  // under FP8 training (never recomputed here)
  k.rmsnorm(a.normed.data(), d, a.y.data(), d, head_norm_.f32, N, d, eps_);
  const std::vector<int64_t>& rows = b.logit_rows();
  const auto n = static_cast<int64_t>(rows.size());
  a.head_in.resize(n * d);
  for (int64_t i = 0; i < n; ++i)
    std::copy_n(a.normed.data() + rows[i] * d, d, a.head_in.data() + i * d);
  if (n > 0) head_.forward(ctx, a.head_in.data(), n, logits);
}

void Mtp::backward(ComputeContext ctx, MoeDispatcher& dispatcher, const float* hidden,
                   const Batch& b, MtpActs& a, const float* dlogits, LayerGrads& g, float* dhidden,
                   bool embedding_grad) const {
  const Kernels& k = ctx.kernels;
  const int64_t d = c_.hidden_size, N = b.rows();
  const std::vector<int64_t>& rows = b.logit_rows();
  const auto n = static_cast<int64_t>(rows.size());
  // logits = head(shared_head.norm(y)) on the rows that want them.
  a.dnormed.assign(N * d, 0.0f);
  if (n > 0) {
    a.dhead_in.resize(n * d);
    head_.backward_weight(ctx, dlogits, a.head_in.data(), n);
    head_.backward_input(ctx, dlogits, n, a.dhead_in.data());
    for (int64_t i = 0; i < n; ++i)
      k.axpy(a.dnormed.data() + rows[i] * d, 1.0f, a.dhead_in.data() + i * d, d);
  }
  a.dy.assign(N * d, 0.0f);
  k.rmsnorm_backward(a.dy.data(), d, head_norm_.grad, a.dnormed.data(), d, a.y.data(), d,
                     head_norm_.f32, N, d, eps_);
  // y = DecoderLayer(x), x = eh_proj(cat[enorm(emb); hnorm(h)]).
  a.neg_sin.resize(a.sin.size());
  for (size_t i = 0; i < a.sin.size(); ++i) a.neg_sin[i] = -a.sin[i];
  a.dx.resize(N * d);
  layer_.backward(ctx, dispatcher, a.x.data(), b, a.cos.data(), a.neg_sin.data(), a.layer,
                  a.dy.data(), g, a.dx.data());
  a.dcat.resize(N * 2 * d);
  eh_proj_.backward_weight(ctx, a.dx.data(), a.cat.data(), N);
  eh_proj_.backward_input(ctx, a.dx.data(), N, a.dcat.data());
  a.demb.assign(N * d, 0.0f);
  k.rmsnorm_backward(a.demb.data(), d, enorm_.grad, a.dcat.data(), 2 * d, a.emb.data(), d,
                     enorm_.f32, N, d, eps_);
  std::fill_n(dhidden, N * d, 0.0f);
  k.rmsnorm_backward(dhidden, d, hnorm_.grad, a.dcat.data() + d, 2 * d, hidden, d, hnorm_.f32, N, d,
                     eps_);
  if (embedding_grad) k.embedding_backward(embed_.grad, b.ids().data(), a.demb.data(), N, d);
}

}  // namespace dsv3

// The shared decoder stack over a batch.
#include "model/causal_lm.h"

#include <algorithm>

#include "base/error.h"
#include "model/batch.h"

namespace dsv3 {

CausalLm::CausalLm(const ModelWeights& w, ComputeContext ctx, const LayerOptions& opt)
    : params_(w),
      c_(params_.config()),
      ctx_(ctx),
      rope_(rope_params(c_)),
      head_(params_.matrix(c_.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight",
                           c_.vocab_size, c_.hidden_size),
            nullptr, LinearKind::KeepBf16),
      embed_(params_.matrix("model.embed_tokens.weight", c_.vocab_size, c_.hidden_size)),
      final_norm_(params_.vector("model.norm.weight", c_.hidden_size)),
      local_(ctx.kernels) {
  layers_.reserve(c_.num_hidden_layers);
  for (int64_t l = 0; l < c_.num_hidden_layers; ++l) layers_.emplace_back(c_, params_, l, l, opt);
  if (c_.is_mla() && c_.num_nextn_predict_layers > 0) mtp_.emplace(c_, params_, rope_);
}

CacheLayout CausalLm::cache_layout() const {
  return {c_.num_hidden_layers, c_.kv_cache_elems_per_token_layer()};
}

CacheLayout CausalLm::mtp_cache_layout() const {
  return mtp_ ? mtp_->cache_layout() : CacheLayout{};
}

void CausalLm::check_batch(const Batch& b, const CacheLayout& want) const {
  for (const BatchSeq& s : b.seqs()) {
    check_tokens(c_, b.ids().data() + s.begin, s.count, s.pos0);
    if (!s.cache) continue;
    const AttentionCache& cache = *s.cache;
    DSV3_CHECK(cache.n_layers() == want.n_layers && cache.row_elems() == want.row_elems,
               "model: the cache has " + std::to_string(cache.n_layers()) + " layers x " +
                   std::to_string(cache.row_elems()) + " values, this model needs " +
                   std::to_string(want.n_layers) + " x " + std::to_string(want.row_elems),
               "create the cache from the model's cache_layout()");
    DSV3_CHECK(cache.length() == s.pos0,
               "model: a sequence was added to the batch at position " + std::to_string(s.pos0) +
                   " but its cache now holds " + std::to_string(cache.length()),
               "build the batch after the cache's last change");
  }
}

ComputeContext CausalLm::context(const ForwardActs& a, bool backward) const {
  return {ctx_.kernels,         a.pool ? *a.pool : ctx_.pool,    ctx_.precision,
          ctx_.fp8_native_gemm, backward ? a.wgrad : ctx_.wgrad, ctx_.fp8};
}

MoeDispatcher& CausalLm::dispatcher(const ForwardActs& a) const {
  return a.dispatcher ? *a.dispatcher : *dispatcher_;
}

void CausalLm::forward(const Batch& b, ForwardActs& a, float* logits, float* hidden) {
  check_batch(b, cache_layout());
  forward_layers(b, a, 0, c_.num_hidden_layers, logits, hidden);
  for (const BatchSeq& s : b.seqs())
    if (s.cache) s.cache->commit(s.count);
}

void CausalLm::forward_layers(const Batch& b, ForwardActs& a, int64_t begin, int64_t end,
                              float* logits, float* hidden) {
  const ComputeContext ctx = context(a, false);
  const Kernels& k = ctx.kernels;
  const int64_t N = b.rows(), d = c_.hidden_size, half = rope_.dim / 2, L = c_.num_hidden_layers;
  DSV3_CHECK(0 <= begin && begin < end && end <= L,
             "model: layers [" + std::to_string(begin) + ", " + std::to_string(end) +
                 ") are not a range of the " + std::to_string(L) + " layers");
  const bool whole = begin == 0 && end == L;
  if (!whole) {
    check_batch(b, cache_layout());
    for (const BatchSeq& s : b.seqs())
      DSV3_CHECK(!s.cache, "model: a pipeline stage takes cache-less (training) sequences only");
    DSV3_CHECK(a.keep_layers, "model: a pipeline stage needs keep_layers activations");
  }
  a.cos.resize(N * half);
  a.sin.resize(N * half);
  for (const BatchSeq& s : b.seqs())
    rope_tables(rope_, s.pos0, s.count, a.cos.data() + s.begin * half,
                a.sin.data() + s.begin * half);
  a.resid.resize(a.keep_layers ? L + 1 : 1);
  a.layers.resize(a.keep_layers ? L : 1);
  // A stage's input (resid[begin] when begin > 0) is the caller's; the rest is this call's.
  for (int64_t l = a.keep_layers ? begin : 0; l < (a.keep_layers ? end + 1 : 1); ++l) {
    if (l == begin && begin > 0)
      DSV3_CHECK(static_cast<int64_t>(a.resid[l].size()) == N * d,
                 "model: a stage's input activations must be [rows, hidden_size]");
    a.resid[l].resize(N * d);
  }
  a.expert_load.resize(L);
  if (begin == 0) k.embedding(a.resid[0].data(), b.ids().data(), N, embed_.value);
  for (int64_t l = begin; l < end; ++l) {
    const int64_t in = a.keep_layers ? l : 0, out = a.keep_layers ? l + 1 : 0;
    LayerActs& la = a.layers[a.keep_layers ? l : 0];
    layers_[l].forward(ctx, path_, dispatcher(a), a.resid[in].data(), a.resid[out].data(), b,
                       a.cos.data(), a.sin.data(), la);
    if (a.keep_layers && a.recompute) DecoderLayer::release_recomputable(la);
    if (a.keep_layers) DecoderLayer::release_cached(la, a.recompute);
    if (layers_[l].moe())
      a.expert_load[l] = la.moe.plan.counts;
    else
      a.expert_load[l].clear();
  }
  if (end < L) return;
  a.normed.resize(N * d);
  k.rmsnorm(a.normed.data(), d, a.resid[a.keep_layers ? L : 0].data(), d, final_norm_.f32, N, d,
            static_cast<float>(c_.rms_norm_eps));
  if (hidden) std::copy_n(a.normed.data(), N * d, hidden);
  const std::vector<int64_t>& rows = b.logit_rows();
  const auto n = static_cast<int64_t>(rows.size());
  if (logits && n > 0) {
    a.head_in.resize(n * d);
    for (int64_t i = 0; i < n; ++i)
      std::copy_n(a.normed.data() + rows[i] * d, d, a.head_in.data() + i * d);
    head_.forward(ctx, a.head_in.data(), n, logits);
  }
}

void CausalLm::forward_mtp(const Batch& b, const float* hidden, ForwardActs& a, float* logits) {
  DSV3_CHECK(mtp_.has_value(), "model: " + c_.model_type + " has no MTP module",
             "num_nextn_predict_layers is 0 in config.json");
  check_batch(b, mtp_cache_layout());
  mtp_->forward(context(a, false), path_, dispatcher(a), hidden, b, a.mtp, logits);
  for (const BatchSeq& s : b.seqs())
    if (s.cache) s.cache->commit(s.count);
}

void CausalLm::check_backward(const Batch& b) const {
  DSV3_CHECK(params_.training(), "model: backward needs training enabled",
             "call params().enable_training() first");
  DSV3_CHECK(path_ == AttentionPath::Naive, "model: backward needs the Naive attention path",
             "set_attention_path(AttentionPath::Naive) before the forward pass");
  for (const BatchSeq& s : b.seqs())
    DSV3_CHECK(!s.cache, "model: backward takes cache-less (training) sequences only");
}

void CausalLm::backward(const Batch& b, ForwardActs& a, const float* dlogits,
                        const float* dhidden) {
  backward_layers(b, a, 0, c_.num_hidden_layers, dlogits, dhidden, nullptr);
}

void CausalLm::backward_layers(const Batch& b, ForwardActs& a, int64_t begin, int64_t end,
                               const float* dlogits, const float* dhidden, const float* dout) {
  check_backward(b);
  const ComputeContext ctx = context(a, true);
  const Kernels& k = ctx.kernels;
  const int64_t N = b.rows(), d = c_.hidden_size, L = c_.num_hidden_layers;
  DSV3_CHECK(0 <= begin && begin < end && end <= L && (end < L || !dout) && (end == L || dout),
             "model: backward of layers [" + std::to_string(begin) + ", " + std::to_string(end) +
                 ") needs dout exactly when it ends before the last layer");
  DSV3_CHECK(a.keep_layers && static_cast<int64_t>(a.resid.size()) == L + 1 &&
                 static_cast<int64_t>(a.resid[begin].size()) == N * d,
             "model: backward needs the activations of a keep_layers forward of this batch");
  float* dcur = (a.dresid[0].resize(N * d), a.dresid[0].data());
  float* dprev = (a.dresid[1].resize(N * d), a.dresid[1].data());
  if (end == L) {
    // logits = head(normed[rows]); hidden = normed.
    a.dnormed.assign(N * d, 0.0f);
    if (dhidden) std::copy_n(dhidden, N * d, a.dnormed.data());
    const std::vector<int64_t>& rows = b.logit_rows();
    const auto n = static_cast<int64_t>(rows.size());
    if (dlogits && n > 0) {
      a.dhead_in.resize(n * d);
      head_.backward_weight(ctx, dlogits, a.head_in.data(), n);
      head_.backward_input(ctx, dlogits, n, a.dhead_in.data());
      for (int64_t i = 0; i < n; ++i)
        k.axpy(a.dnormed.data() + rows[i] * d, 1.0f, a.dhead_in.data() + i * d, d);
    }
    std::fill_n(dcur, N * d, 0.0f);
    k.rmsnorm_backward(dcur, d, final_norm_.grad, a.dnormed.data(), d, a.resid[L].data(), d,
                       final_norm_.f32, N, d, static_cast<float>(c_.rms_norm_eps));
    if (a.grads_ready) a.grads_ready(L);
  } else {
    std::copy_n(dout, N * d, dcur);
  }
  a.neg_sin.resize(a.sin.size());
  for (size_t i = 0; i < a.sin.size(); ++i) a.neg_sin[i] = -a.sin[i];
  for (int64_t l = end - 1; l >= begin; --l) {
    if (a.recompute)
      layers_[l].recompute(ctx, a.resid[l].data(), b, a.cos.data(), a.sin.data(), a.layers[l]);
    layers_[l].backward(ctx, dispatcher(a), a.resid[l].data(), b, a.cos.data(), a.neg_sin.data(),
                        a.layers[l], dcur, a.grads, dprev);
    if (a.recompute) DecoderLayer::release_recomputable(a.layers[l]);
    if (a.grads_ready) a.grads_ready(l);
    std::swap(dcur, dprev);
  }
  if (begin > 0 || a.defer_embedding_grad)
    a.dinput.assign(dcur, dcur + N * d);
  else
    embedding_backward(b.ids().data(), dcur, N);
}

void CausalLm::embedding_backward(const int32_t* ids, const float* dx, int64_t n) {
  ctx_.kernels.embedding_backward(embed_.grad, ids, dx, n, c_.hidden_size);
}

void CausalLm::backward_mtp(const Batch& b, const float* hidden, ForwardActs& a,
                            const float* dlogits, float* dhidden) {
  DSV3_CHECK(mtp_.has_value(), "model: " + c_.model_type + " has no MTP module",
             "num_nextn_predict_layers is 0 in config.json");
  check_backward(b);
  mtp_->backward(context(a, true), dispatcher(a), hidden, b, a.mtp, dlogits, a.grads, dhidden,
                 !a.defer_embedding_grad);
}

}  // namespace dsv3

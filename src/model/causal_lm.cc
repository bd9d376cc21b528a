// The shared decoder stack. A long prompt runs in chunks through the whole stack, so activation
// memory is bounded by the chunk whatever the prompt length; results equal one pass because every
// row depends on the other rows only through the cache.
#include "model/causal_lm.h"

#include <algorithm>

#include "base/error.h"

namespace dsv3 {

namespace {
constexpr int64_t kChunk = 256;  // tokens per pass through the stack
}

CausalLm::CausalLm(const ModelWeights& w, ComputeContext ctx, const LayerOptions& opt)
    : c_(w.config()), ctx_(ctx), rope_(rope_params(w.config())) {
  const int64_t V = c_.vocab_size, d = c_.hidden_size;
  embed_ = weight_ref(w, "model.embed_tokens.weight", V, d);
  head_ = c_.tie_word_embeddings ? embed_ : weight_ref(w, "lm_head.weight", V, d);
  final_norm_ = weight_f32(w, "model.norm.weight", d);
  layers_.reserve(c_.num_hidden_layers);
  for (int64_t l = 0; l < c_.num_hidden_layers; ++l) layers_.emplace_back(c_, w, l, l, opt);
  if (c_.is_mla() && c_.num_nextn_predict_layers > 0) mtp_.emplace(c_, w, rope_);
}

CacheLayout CausalLm::cache_layout() const {
  return {c_.num_hidden_layers, c_.kv_cache_elems_per_token_layer()};
}

CacheLayout CausalLm::mtp_cache_layout() const {
  return mtp_ ? mtp_->cache_layout() : CacheLayout{};
}

void CausalLm::check_cache(const AttentionCache& cache, const CacheLayout& want) const {
  DSV3_CHECK(cache.n_layers() == want.n_layers && cache.row_elems() == want.row_elems,
             "model: the cache has " + std::to_string(cache.n_layers()) + " layers x " +
                 std::to_string(cache.row_elems()) + " values, this model needs " +
                 std::to_string(want.n_layers) + " x " + std::to_string(want.row_elems),
             "create the cache from the model's cache_layout()");
}

void CausalLm::forward(const int32_t* ids, int64_t T, AttentionCache& cache, float* logits,
                       float* hidden, LogitsRows rows) {
  check_cache(cache, cache_layout());
  check_tokens(c_, ids, T, cache.length());
  const int64_t V = c_.vocab_size, d = c_.hidden_size;
  const bool last_only = rows == LogitsRows::Last;
  for (int64_t t0 = 0; t0 < T; t0 += kChunk) {
    const int64_t n = std::min(kChunk, T - t0);
    float* chunk_logits = nullptr;
    if (logits && !last_only) chunk_logits = logits + t0 * V;
    if (logits && last_only && t0 + n == T) chunk_logits = logits;
    forward_chunk(ids + t0, n, cache, chunk_logits, last_only, hidden ? hidden + t0 * d : nullptr);
  }
}

void CausalLm::forward_chunk(const int32_t* ids, int64_t T, AttentionCache& cache, float* logits,
                             bool last_row_only, float* hidden) {
  const Kernels& k = ctx_.kernels;
  const int64_t d = c_.hidden_size, half = rope_.dim / 2;
  StackActs& a = acts_;
  a.x.resize(T * d);
  a.normed.resize(T * d);
  a.cos.resize(T * half);
  a.sin.resize(T * half);
  rope_tables(rope_, cache.length(), T, a.cos.data(), a.sin.data());
  k.embedding(a.x.data(), ids, T, embed_);
  for (const DecoderLayer& layer : layers_)
    layer.forward(ctx_, path_, a.x.data(), a.x.data(), T, a.cos.data(), a.sin.data(), cache,
                  a.layer);
  k.rmsnorm(a.normed.data(), d, a.x.data(), d, final_norm_.data(), T, d,
            static_cast<float>(c_.rms_norm_eps));
  if (hidden) std::copy_n(a.normed.data(), T * d, hidden);
  if (logits && last_row_only)
    k.matmul(logits, a.normed.data() + (T - 1) * d, head_, 1, ctx_.pool);
  else if (logits)
    k.matmul(logits, a.normed.data(), head_, T, ctx_.pool);
  cache.commit(T);
}

void CausalLm::forward_mtp(const float* hidden, const int32_t* next_ids, int64_t T,
                           AttentionCache& cache, float* logits) {
  DSV3_CHECK(mtp_.has_value(), "model: " + c_.model_type + " has no MTP module",
             "num_nextn_predict_layers is 0 in config.json");
  check_cache(cache, mtp_cache_layout());
  const int64_t V = c_.vocab_size, d = c_.hidden_size;
  for (int64_t t0 = 0; t0 < T; t0 += kChunk) {
    const int64_t n = std::min(kChunk, T - t0);
    mtp_->forward(ctx_, path_, hidden + t0 * d, next_ids + t0, n, cache, mtp_acts_,
                  logits + t0 * V);
  }
}

}  // namespace dsv3

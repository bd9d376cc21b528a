// GQA forward (Qwen2 / Llama attention).
#include "model/gqa.h"

#include <algorithm>
#include <cmath>

namespace dsv3 {

GqaAttention::GqaAttention(const ModelConfig& c, const ModelWeights& w, const std::string& p,
                           int64_t cache_layer, bool qkv_bias, bool o_bias)
    : d_(c.hidden_size),
      H_(c.num_attention_heads),
      kvh_(c.num_key_value_heads),
      hd_(c.head_dim),
      layer_(cache_layer),
      scale_(static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.head_dim)))) {
  q_ = weight_ref(w, p + "q_proj.weight", H_ * hd_, d_);
  k_ = weight_ref(w, p + "k_proj.weight", kvh_ * hd_, d_);
  v_ = weight_ref(w, p + "v_proj.weight", kvh_ * hd_, d_);
  o_ = weight_ref(w, p + "o_proj.weight", d_, H_ * hd_);
  if (qkv_bias) {
    q_bias_ = weight_f32(w, p + "q_proj.bias", H_ * hd_);
    k_bias_ = weight_f32(w, p + "k_proj.bias", kvh_ * hd_);
    v_bias_ = weight_f32(w, p + "v_proj.bias", kvh_ * hd_);
  }
  if (o_bias) o_bias_ = weight_f32(w, p + "o_proj.bias", d_);
}

void GqaAttention::forward(ComputeContext ctx, const float* x, int64_t T, const float* cos,
                           const float* sin, AttentionCache& cache, GqaActs& a, float* out) const {
  const Kernels& k = ctx.kernels;
  const int64_t nk = kvh_ * hd_, row = 2 * nk;
  a.q.resize(T * H_ * hd_);
  a.kv.resize(T * row);
  a.o.resize(T * H_ * hd_);
  k.matmul(a.q.data(), x, q_, T, ctx.pool);
  if (!q_bias_.empty()) k.add_bias(a.q.data(), q_bias_.data(), T, H_ * hd_);
  // k and v straight into the cache-row layout [k; v].
  std::vector<float> tmp(T * nk);
  for (int which = 0; which < 2; ++which) {
    k.matmul(tmp.data(), x, which == 0 ? k_ : v_, T, ctx.pool);
    const auto& b = which == 0 ? k_bias_ : v_bias_;
    if (!b.empty()) k.add_bias(tmp.data(), b.data(), T, nk);
    for (int64_t t = 0; t < T; ++t)
      std::copy_n(tmp.data() + t * nk, nk, a.kv.data() + t * row + which * nk);
  }
  k.rope_half(a.q.data(), T, H_, H_ * hd_, hd_, hd_, cos, sin);
  k.rope_half(a.kv.data(), T, kvh_, row, hd_, hd_, cos, sin);
  cache.put(layer_, a.kv.data(), T);
  const int64_t S = cache.length() + T;
  const float* rows = cache.rows_f32(layer_, S, a.cache_scratch);
  AttentionArgs at;
  at.T = T;
  at.S = S;
  at.n_heads = H_;
  at.n_kv_heads = kvh_;
  at.dk = at.dv = hd_;
  at.scale = scale_;
  at.q = a.q.data();
  at.q_row_stride = H_ * hd_;
  at.q_head_stride = hd_;
  at.k = rows;
  at.k_row_stride = row;
  at.k_head_stride = hd_;
  at.v = rows + nk;
  at.v_row_stride = row;
  at.v_head_stride = hd_;
  at.out = a.o.data();
  at.out_row_stride = H_ * hd_;
  at.out_head_stride = hd_;
  k.attention(at, ctx.pool);
  k.matmul(out, a.o.data(), o_, T, ctx.pool);
  if (!o_bias_.empty()) k.add_bias(out, o_bias_.data(), T, d_);
}

}  // namespace dsv3

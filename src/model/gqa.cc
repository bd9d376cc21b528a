// GQA forward over a batch (Qwen2 / Llama attention).
#include "model/gqa.h"

#include <algorithm>
#include <cmath>

namespace dsv3 {

namespace {
const Param* bias_or_null(const ParamStore& ps, bool present, const std::string& name, int64_t n) {
  return present ? &ps.vector(name, n) : nullptr;
}
}  // namespace

GqaAttention::GqaAttention(const ModelConfig& c, const ParamStore& ps, const std::string& p,
                           int64_t cache_layer, bool qkv_bias, bool o_bias)
    : d_(c.hidden_size),
      H_(c.num_attention_heads),
      kvh_(c.num_key_value_heads),
      hd_(c.head_dim),
      layer_(cache_layer),
      scale_(static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.head_dim)))),
      q_(ps.matrix(p + "q_proj.weight", H_ * hd_, d_),
         bias_or_null(ps, qkv_bias, p + "q_proj.bias", H_ * hd_)),
      k_(ps.matrix(p + "k_proj.weight", kvh_ * hd_, d_),
         bias_or_null(ps, qkv_bias, p + "k_proj.bias", kvh_ * hd_)),
      v_(ps.matrix(p + "v_proj.weight", kvh_ * hd_, d_),
         bias_or_null(ps, qkv_bias, p + "v_proj.bias", kvh_ * hd_)),
      o_(ps.matrix(p + "o_proj.weight", d_, H_ * hd_),
         bias_or_null(ps, o_bias, p + "o_proj.bias", d_), LinearKind::AttnOut) {}

void GqaAttention::forward(ComputeContext ctx, const float* x, const Batch& b, const float* cos,
                           const float* sin, GqaActs& a, float* out) const {
  const Kernels& k = ctx.kernels;
  const int64_t N = b.rows(), nk = kvh_ * hd_, row = 2 * nk;
  a.q.resize(N * H_ * hd_);
  a.kv.resize(N * row);
  a.o.resize(N * H_ * hd_);
  a.proj.resize(2 * N * nk);
  a.lse.resize(N * H_);
  // q, k and v of the same x in one batch; k and v then into the cache-row layout [k; v].
  Linear::forward_batch(
      ctx,
      {{&q_, x, N, a.q.data()}, {&k_, x, N, a.proj.data()}, {&v_, x, N, a.proj.data() + N * nk}});
  for (int which = 0; which < 2; ++which)
    for (int64_t t = 0; t < N; ++t)
      std::copy_n(a.proj.data() + (which * N + t) * nk, nk, a.kv.data() + t * row + which * nk);
  k.rope_half(a.q.data(), N, H_, H_ * hd_, hd_, hd_, cos, sin);
  k.rope_half(a.kv.data(), N, kvh_, row, hd_, hd_, cos, sin);
  for (const BatchSeq& s : b.seqs()) {
    if (s.cache) s.cache->put(layer_, a.kv.data() + s.begin * row, s.count);
    int64_t S = 0;
    const float* rows = seq_keys(s, layer_, a.kv.data(), row, a.cache_scratch, S);
    AttentionArgs at = seq_attention_args(s, S, H_, kvh_, scale_);
    at.dk = at.dv = hd_;
    at.q = a.q.data() + s.begin * H_ * hd_;
    at.q_row_stride = H_ * hd_;
    at.q_head_stride = hd_;
    at.k = rows;
    at.k_row_stride = row;
    at.k_head_stride = hd_;
    at.v = rows + nk;
    at.v_row_stride = row;
    at.v_head_stride = hd_;
    at.out = a.o.data() + s.begin * H_ * hd_;
    at.out_row_stride = H_ * hd_;
    at.out_head_stride = hd_;
    at.lse = a.lse.data() + s.begin * H_;
    k.attention(at, ctx.pool);
  }
  o_.forward(ctx, a.o.data(), N, out);
}

}  // namespace dsv3

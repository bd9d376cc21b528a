// MLA forward (SPEC §1.3 steps 1-6, §1.5 absorption).
#include "model/mla.h"

#include <algorithm>

#include "model/yarn_rope.h"

namespace dsv3 {

Mla::Mla(const ModelConfig& c, const ModelWeights& w, const std::string& p, int64_t cache_layer)
    : d_(c.hidden_size),
      H_(c.num_attention_heads),
      q_lora_(c.q_lora_rank),
      d_c_(c.kv_lora_rank),
      d_n_(c.qk_nope_head_dim),
      d_r_(c.qk_rope_head_dim),
      d_v_(c.v_head_dim),
      layer_(cache_layer),
      eps_(static_cast<float>(c.rms_norm_eps)),
      scale_(static_cast<float>(attention_softmax_scale(c))) {
  const int64_t dq = d_n_ + d_r_;
  if (q_lora_ > 0) {
    q_a_ = weight_ref(w, p + "q_a_proj.weight", q_lora_, d_);
    q_a_norm_ = weight_f32(w, p + "q_a_layernorm.weight", q_lora_);
    q_b_ = weight_ref(w, p + "q_b_proj.weight", H_ * dq, q_lora_);
  } else {
    q_ = weight_ref(w, p + "q_proj.weight", H_ * dq, d_);
  }
  kv_a_ = weight_ref(w, p + "kv_a_proj_with_mqa.weight", d_c_ + d_r_, d_);
  kv_a_norm_ = weight_f32(w, p + "kv_a_layernorm.weight", d_c_);
  kv_b_ = weight_ref(w, p + "kv_b_proj.weight", H_ * (d_n_ + d_v_), d_c_);
  o_ = weight_ref(w, p + "o_proj.weight", d_, H_ * d_v_);
}

void Mla::forward(ComputeContext ctx, AttentionPath path, const float* x, int64_t T,
                  const float* cos, const float* sin, AttentionCache& cache, MlaActs& a,
                  float* out) const {
  const Kernels& k = ctx.kernels;
  const int64_t dq = d_n_ + d_r_, dl = d_c_ + d_r_;
  // Steps 1-2: queries; q_pe rotated per head.
  a.q.resize(T * H_ * dq);
  if (q_lora_ > 0) {
    a.cq_raw.resize(T * q_lora_);
    a.cq.resize(T * q_lora_);
    k.matmul(a.cq_raw.data(), x, q_a_, T, ctx.pool);
    k.rmsnorm(a.cq.data(), q_lora_, a.cq_raw.data(), q_lora_, q_a_norm_.data(), T, q_lora_, eps_);
    k.matmul(a.q.data(), a.cq.data(), q_b_, T, ctx.pool);
  } else {
    k.matmul(a.q.data(), x, q_, T, ctx.pool);
  }
  k.rope_interleaved(a.q.data() + d_n_, T, H_, H_ * dq, dq, d_r_, cos, sin);
  // Step 3: the latent row [RMSNorm_kv(c_kv); RoPE(k_pe)], one shared k_pe for all heads.
  a.kv_a.resize(T * dl);
  a.latent.resize(T * dl);
  k.matmul(a.kv_a.data(), x, kv_a_, T, ctx.pool);
  k.rmsnorm(a.latent.data(), dl, a.kv_a.data(), dl, kv_a_norm_.data(), T, d_c_, eps_);
  for (int64_t t = 0; t < T; ++t)
    std::copy_n(a.kv_a.data() + t * dl + d_c_, d_r_, a.latent.data() + t * dl + d_c_);
  k.rope_interleaved(a.latent.data() + d_c_, T, 1, dl, 0, d_r_, cos, sin);
  cache.put(layer_, a.latent.data(), T);
  const int64_t S = cache.length() + T;
  const float* rows = cache.rows_f32(layer_, S, a.cache_scratch);
  // Steps 4-5.
  a.o.resize(T * H_ * d_v_);
  if (path == AttentionPath::Naive) {
    attend_naive(ctx, rows, T, S, a);
  } else {
    attend_absorbed(ctx, rows, T, S, a);
  }
  // Step 6.
  k.matmul(out, a.o.data(), o_, T, ctx.pool);
}

void Mla::attend_naive(ComputeContext ctx, const float* rows, int64_t T, int64_t S,
                       MlaActs& a) const {
  const int64_t dq = d_n_ + d_r_, dl = d_c_ + d_r_, dkv = d_n_ + d_v_;
  a.c_kv.resize(S * d_c_);
  a.kv_up.resize(S * H_ * dkv);
  a.k.resize(S * H_ * dq);
  for (int64_t s = 0; s < S; ++s) std::copy_n(rows + s * dl, d_c_, a.c_kv.data() + s * d_c_);
  ctx.kernels.matmul(a.kv_up.data(), a.c_kv.data(), kv_b_, S, ctx.pool);  // step 4
  for (int64_t s = 0; s < S; ++s)
    for (int64_t h = 0; h < H_; ++h) {
      float* kh = a.k.data() + (s * H_ + h) * dq;
      std::copy_n(a.kv_up.data() + (s * H_ + h) * dkv, d_n_, kh);
      std::copy_n(rows + s * dl + d_c_, d_r_, kh + d_n_);
    }
  AttentionArgs at;
  at.T = T;
  at.S = S;
  at.n_heads = at.n_kv_heads = H_;
  at.dk = dq;
  at.dv = d_v_;
  at.scale = scale_;
  at.q = a.q.data();
  at.q_row_stride = H_ * dq;
  at.q_head_stride = dq;
  at.k = a.k.data();
  at.k_row_stride = H_ * dq;
  at.k_head_stride = dq;
  at.v = a.kv_up.data() + d_n_;
  at.v_row_stride = H_ * dkv;
  at.v_head_stride = dkv;
  at.out = a.o.data();
  at.out_row_stride = H_ * d_v_;
  at.out_head_stride = d_v_;
  ctx.kernels.attention(at, ctx.pool);
}

void Mla::attend_absorbed(ComputeContext ctx, const float* rows, int64_t T, int64_t S,
                          MlaActs& a) const {
  const Kernels& k = ctx.kernels;
  const int64_t dq = d_n_ + d_r_, dl = d_c_ + d_r_, dkv = d_n_ + d_v_;
  a.q_abs.resize(T * H_ * dl);
  a.o_lat.resize(H_ * T * d_c_);
  a.o_head.resize(H_ * T * d_v_);
  for (int64_t h = 0; h < H_; ++h) {
    // q_abs[h] = W_UK[h]ᵀ q_nope[h], W_UK[h] = kv_b rows h*(d_n+d_v) .. + d_n (SPEC §1.3 step 4).
    k.matmul_xw(a.q_abs.data() + h * dl, H_ * dl, a.q.data() + h * dq, H_ * dq,
                slice_rows(kv_b_, h * dkv, d_n_), T, ctx.pool);
    for (int64_t t = 0; t < T; ++t)
      std::copy_n(a.q.data() + (t * H_ + h) * dq + d_n_, d_r_,
                  a.q_abs.data() + (t * H_ + h) * dl + d_c_);
  }
  // MQA: one key head [c_kv; k_pe] (d_c + d_r) and one value head c_kv (d_c) for all H heads.
  AttentionArgs at;
  at.T = T;
  at.S = S;
  at.n_heads = H_;
  at.n_kv_heads = 1;
  at.dk = dl;
  at.dv = d_c_;
  at.scale = scale_;
  at.q = a.q_abs.data();
  at.q_row_stride = H_ * dl;
  at.q_head_stride = dl;
  at.k = rows;
  at.k_row_stride = dl;
  at.v = rows;
  at.v_row_stride = dl;
  at.out = a.o_lat.data();
  at.out_row_stride = d_c_;
  at.out_head_stride = T * d_c_;
  k.attention(at, ctx.pool);
  // o[h] = W_UV[h] o_lat[h], W_UV[h] = kv_b rows h*(d_n+d_v) + d_n .. + d_v.
  for (int64_t h = 0; h < H_; ++h)
    k.matmul(a.o_head.data() + h * T * d_v_, a.o_lat.data() + h * T * d_c_,
             slice_rows(kv_b_, h * dkv + d_n_, d_v_), T, ctx.pool);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H_; ++h)
      std::copy_n(a.o_head.data() + (h * T + t) * d_v_, d_v_, a.o.data() + (t * H_ + h) * d_v_);
}

}  // namespace dsv3

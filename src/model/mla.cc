// MLA forward over a batch (SPEC §1.3 steps 1-6, §1.5 absorption).
#include "model/mla.h"

#include <algorithm>

#include "model/yarn_rope.h"

namespace dsv3 {

Mla::Mla(const ModelConfig& c, const ParamStore& ps, const std::string& p, int64_t cache_layer)
    : d_(c.hidden_size),
      H_(c.num_attention_heads),
      q_lora_(c.q_lora_rank),
      d_c_(c.kv_lora_rank),
      d_n_(c.qk_nope_head_dim),
      d_r_(c.qk_rope_head_dim),
      d_v_(c.v_head_dim),
      layer_(cache_layer),
      eps_(static_cast<float>(c.rms_norm_eps)),
      scale_(static_cast<float>(attention_softmax_scale(c))),
      kv_a_(ps.matrix(p + "kv_a_proj_with_mqa.weight", d_c_ + d_r_, d_)),
      kv_b_(ps.matrix(p + "kv_b_proj.weight", H_ * (d_n_ + d_v_), d_c_)),
      o_(ps.matrix(p + "o_proj.weight", d_, H_ * d_v_), nullptr, LinearKind::AttnOut),
      kv_a_norm_(ps.vector(p + "kv_a_layernorm.weight", d_c_)) {
  const int64_t dq = d_n_ + d_r_;
  if (q_lora_ > 0) {
    q_a_ = Linear(ps.matrix(p + "q_a_proj.weight", q_lora_, d_));
    q_a_norm_ = &ps.vector(p + "q_a_layernorm.weight", q_lora_);
    q_b_ = Linear(ps.matrix(p + "q_b_proj.weight", H_ * dq, q_lora_));
  } else {
    q_ = Linear(ps.matrix(p + "q_proj.weight", H_ * dq, d_));
  }
}

void Mla::forward(ComputeContext ctx, AttentionPath path, const float* x, const Batch& b,
                  const float* cos, const float* sin, MlaActs& a, float* out) const {
  const Kernels& k = ctx.kernels;
  const int64_t N = b.rows(), dq = d_n_ + d_r_, dl = d_c_ + d_r_;
  // The FP8 recipe's input tiles for the Wgrads (x's serve kv_a and the query's first Linear).
  const bool keep = kv_a_.caches_input(ctx);
  if (!keep && keeps_inputs(a)) a.x_fp8 = a.cq_fp8 = a.c_kv_fp8 = Fp8Tiles{};  // stale
  const auto cache = [keep, N](Fp8Tiles& t) {
    return keep ? Fp8InputCache{&t, N, 0} : Fp8InputCache{};
  };
  // Steps 1-2: queries; q_pe rotated per head at each row's position.
  a.q.resize(N * H_ * dq);
  a.kv_a.resize(N * dl);
  a.latent.resize(N * dl);
  // The projections of x (q or q_a, and kv_a of step 3) in one batch, unless kv_a keeps x.
  if (q_lora_ > 0) {
    a.cq_raw.resize(N * q_lora_);
    a.cq.resize(N * q_lora_);
  }
  const LinearCall q_call =
      q_lora_ > 0 ? LinearCall{&q_a_, x, N, a.cq_raw.data()} : LinearCall{&q_, x, N, a.q.data()};
  if (keep) {
    q_call.l->forward(ctx, x, N, q_call.y);
    kv_a_.forward(ctx, x, N, a.kv_a.data(), cache(a.x_fp8));
  } else {
    Linear::forward_batch(ctx, {q_call, {&kv_a_, x, N, a.kv_a.data()}});
  }
  if (q_lora_ > 0) {
    k.rmsnorm(a.cq.data(), q_lora_, a.cq_raw.data(), q_lora_, q_a_norm_->f32, N, q_lora_, eps_);
    q_b_.forward(ctx, a.cq.data(), N, a.q.data(), cache(a.cq_fp8));
  }
  k.rope_interleaved(a.q.data() + d_n_, N, H_, H_ * dq, dq, d_r_, cos, sin);
  // Step 3: the latent row [RMSNorm_kv(c_kv); RoPE(k_pe)], one shared k_pe for all heads.
  k.rmsnorm(a.latent.data(), dl, a.kv_a.data(), dl, kv_a_norm_.f32, N, d_c_, eps_);
  for (int64_t t = 0; t < N; ++t)
    std::copy_n(a.kv_a.data() + t * dl + d_c_, d_r_, a.latent.data() + t * dl + d_c_);
  k.rope_interleaved(a.latent.data() + d_c_, N, 1, dl, 0, d_r_, cos, sin);
  for (const BatchSeq& s : b.seqs())
    if (s.cache) s.cache->put(layer_, a.latent.data() + s.begin * dl, s.count);
  // Steps 4-5.
  a.o.resize(N * H_ * d_v_);
  if (path == AttentionPath::Naive) {
    attend_naive(ctx, b, a, keep);
  } else {
    attend_absorbed(ctx, b, a);
  }
  // Step 6. Under the FP8 recipe o is then kept as its E5M6 cache holds it: attention's backward
  // (D = dout·o) and o_proj's Wgrad read those values (TR §3.3.3).
  o_.forward(ctx, a.o.data(), N, out);
  o_.round_to_e5m6_cache(ctx, a.o.data(), N);
}

void Mla::attend_naive(ComputeContext ctx, const Batch& b, MlaActs& a, bool keep) const {
  const int64_t dq = d_n_ + d_r_, dl = d_c_ + d_r_, dkv = d_n_ + d_v_;
  // Gather every sequence's keys, then one kv_b GEMM over all of them (step 4).
  a.lse.resize(b.rows() * H_);
  a.kv_row0.assign(b.seqs().size() + 1, 0);
  for (size_t i = 0; i < b.seqs().size(); ++i) {
    const BatchSeq& s = b.seqs()[i];
    a.kv_row0[i + 1] = a.kv_row0[i] + (s.cache ? s.cache->length() + s.count : s.count);
  }
  const int64_t total = a.kv_row0.back();
  a.c_kv.resize(total * d_c_);
  a.k_pe.resize(total * d_r_);
  for (size_t i = 0; i < b.seqs().size(); ++i) {
    int64_t S = 0;
    const float* rows = seq_keys(b.seqs()[i], layer_, a.latent.data(), dl, a.cache_scratch, S);
    for (int64_t s = 0; s < S; ++s) {
      const int64_t r = a.kv_row0[i] + s;
      std::copy_n(rows + s * dl, d_c_, a.c_kv.data() + r * d_c_);
      std::copy_n(rows + s * dl + d_c_, d_r_, a.k_pe.data() + r * d_r_);
    }
  }
  up_project_keys(ctx, a, keep);
  for (size_t i = 0; i < b.seqs().size(); ++i) {
    const BatchSeq& s = b.seqs()[i];
    const int64_t r0 = a.kv_row0[i];
    AttentionArgs at = seq_attention_args(s, a.kv_row0[i + 1] - r0, H_, H_, scale_);
    at.dk = dq;
    at.dv = d_v_;
    at.q = a.q.data() + s.begin * H_ * dq;
    at.q_row_stride = H_ * dq;
    at.q_head_stride = dq;
    at.k = a.k.data() + r0 * H_ * dq;
    at.k_row_stride = H_ * dq;
    at.k_head_stride = dq;
    at.v = a.kv_up.data() + r0 * H_ * dkv + d_n_;
    at.v_row_stride = H_ * dkv;
    at.v_head_stride = dkv;
    at.out = a.o.data() + s.begin * H_ * d_v_;
    at.out_row_stride = H_ * d_v_;
    at.out_head_stride = d_v_;
    at.lse = a.lse.data() + s.begin * H_;
    ctx.kernels.attention(at, ctx.pool);
  }
}

void Mla::up_project_keys(ComputeContext ctx, MlaActs& a, bool keep) const {
  const int64_t dq = d_n_ + d_r_, dkv = d_n_ + d_v_, total = a.kv_row0.back();
  a.kv_up.resize(total * H_ * dkv);
  a.k.resize(total * H_ * dq);
  kv_b_.forward(ctx, a.c_kv.data(), total, a.kv_up.data(),
                keep ? Fp8InputCache{&a.c_kv_fp8, total, 0} : Fp8InputCache{});
  for (int64_t r = 0; r < total; ++r)
    for (int64_t h = 0; h < H_; ++h) {
      float* kh = a.k.data() + (r * H_ + h) * dq;
      std::copy_n(a.kv_up.data() + (r * H_ + h) * dkv, d_n_, kh);
      std::copy_n(a.k_pe.data() + r * d_r_, d_r_, kh + d_n_);
    }
}

void Mla::recompute(ComputeContext ctx, const float* x, int64_t N, const float* cos,
                    const float* sin, MlaActs& a) const {
  const Kernels& k = ctx.kernels;
  const int64_t dq = d_n_ + d_r_;
  a.q.resize(N * H_ * dq);
  if (q_lora_ > 0) {
    a.cq.resize(N * q_lora_);
    k.rmsnorm(a.cq.data(), q_lora_, a.cq_raw.data(), q_lora_, q_a_norm_->f32, N, q_lora_, eps_);
    q_b_.forward(ctx, a.cq.data(), N, a.q.data());
  } else {
    q_.forward(ctx, x, N, a.q.data());
  }
  k.rope_interleaved(a.q.data() + d_n_, N, H_, H_ * dq, dq, d_r_, cos, sin);
  up_project_keys(ctx, a, false);
}

void Mla::release_recomputable(MlaActs& a) {
  std::vector<float>().swap(a.cq);
  std::vector<float>().swap(a.q);
  std::vector<float>().swap(a.kv_up);
  std::vector<float>().swap(a.k);
}

void Mla::attend_absorbed(ComputeContext ctx, const Batch& b, MlaActs& a) const {
  const Kernels& k = ctx.kernels;
  const int64_t N = b.rows(), dq = d_n_ + d_r_, dl = d_c_ + d_r_, dkv = d_n_ + d_v_;
  const WeightRef& kv_b = kv_b_.weight().value;
  a.q_abs.resize(N * H_ * dl);
  a.o_lat.resize(H_ * N * d_c_);
  a.lse.resize(N * H_);
  // q_abs[h] = W_UK[h]ᵀ q_nope[h], W_UK[h] = kv_b rows h*(d_n+d_v) .. + d_n (SPEC §1.3 step 4):
  // all heads in one pass, so every thread reads kv_b even for one decode row.
  HeadMatmulArgs uk;
  uk.w = &kv_b;
  uk.n_heads = H_;
  uk.w_head_stride = dkv;
  uk.w_rows = d_n_;
  uk.T = N;
  uk.x = a.q.data();
  uk.x_row_stride = H_ * dq;
  uk.x_head_stride = dq;
  uk.y = a.q_abs.data();
  uk.y_row_stride = H_ * dl;
  uk.y_head_stride = dl;
  k.matmul_xw_heads(uk, ctx.pool);
  for (int64_t t = 0; t < N; ++t)
    for (int64_t h = 0; h < H_; ++h)
      std::copy_n(a.q.data() + (t * H_ + h) * dq + d_n_, d_r_,
                  a.q_abs.data() + (t * H_ + h) * dl + d_c_);
  // MQA per sequence: one key head [c_kv; k_pe] (d_c + d_r) and one value head c_kv (d_c) for all
  // H heads.
  for (const BatchSeq& s : b.seqs()) {
    int64_t S = 0;
    const float* rows = seq_keys(s, layer_, a.latent.data(), dl, a.cache_scratch, S);
    AttentionArgs at = seq_attention_args(s, S, H_, 1, scale_);
    at.dk = dl;
    at.dv = d_c_;
    at.q = a.q_abs.data() + s.begin * H_ * dl;
    at.q_row_stride = H_ * dl;
    at.q_head_stride = dl;
    at.k = rows;
    at.k_row_stride = dl;
    at.v = rows;
    at.v_row_stride = dl;
    at.out = a.o_lat.data() + s.begin * d_c_;
    at.out_row_stride = d_c_;
    at.out_head_stride = N * d_c_;
    at.lse = a.lse.data() + s.begin * H_;
    k.attention(at, ctx.pool);
  }
  // o[h] = W_UV[h] o_lat[h], W_UV[h] = kv_b rows h*(d_n+d_v) + d_n .. + d_v, all heads at once,
  // written straight into o's [N, H, d_v] layout.
  HeadMatmulArgs uv;
  uv.w = &kv_b;
  uv.n_heads = H_;
  uv.w_row0 = d_n_;
  uv.w_head_stride = dkv;
  uv.w_rows = d_v_;
  uv.T = N;
  uv.x = a.o_lat.data();
  uv.x_row_stride = d_c_;
  uv.x_head_stride = N * d_c_;
  uv.y = a.o.data();
  uv.y_row_stride = H_ * d_v_;
  uv.y_head_stride = d_v_;
  k.matmul_heads(uv, ctx.pool);
}

}  // namespace dsv3

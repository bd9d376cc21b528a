// MLA backward, naive path (SPEC §1.3 steps 6 -> 1), for cache-less (training) sequences: every
// sequence's keys are its own rows, so the key rows are the batch rows in order.
#include <algorithm>

#include "base/error.h"
#include "model/mla.h"

namespace dsv3 {

void Mla::backward(ComputeContext ctx, const float* x, const Batch& b, const float* cos,
                   const float* neg_sin, const MlaActs& a, const float* dout, MlaGrads& g,
                   float* dx) const {
  const Kernels& k = ctx.kernels;
  const int64_t N = b.rows(), dq = d_n_ + d_r_, dl = d_c_ + d_r_, dkv = d_n_ + d_v_;
  for (const BatchSeq& s : b.seqs())
    DSV3_CHECK(!s.cache, "mla: the backward pass takes cache-less (training) sequences only");
  DSV3_CHECK(a.kv_row0.size() == b.seqs().size() + 1 && a.kv_row0.back() == N &&
                 static_cast<int64_t>(a.k.size()) == N * H_ * dq,
             "mla: backward needs the activations of a naive forward of this batch",
             "set AttentionPath::Naive and keep the forward's activations");
  g.d_o.resize(N * H_ * d_v_);
  g.dq.resize(N * H_ * dq);
  g.dk.assign(N * H_ * dq, 0.0f);
  g.dkv_up.assign(N * H_ * dkv, 0.0f);
  g.dc_kv.resize(N * d_c_);
  g.dk_pe.assign(N * d_r_, 0.0f);
  g.dkv_a.assign(N * dl, 0.0f);
  // Step 6: o_proj.
  o_.backward_weight(ctx, dout, a.o.data(), N);
  o_.backward_input(ctx, dout, N, g.d_o.data());
  // Step 5: attention per sequence; dv lands in kv_up's value columns.
  for (size_t i = 0; i < b.seqs().size(); ++i) {
    const BatchSeq& s = b.seqs()[i];
    const int64_t r0 = a.kv_row0[i];
    AttentionBackwardArgs at;
    at.fwd = seq_attention_args(s, a.kv_row0[i + 1] - r0, H_, H_, scale_);
    at.fwd.dk = dq;
    at.fwd.dv = d_v_;
    at.fwd.q = a.q.data() + s.begin * H_ * dq;
    at.fwd.q_row_stride = H_ * dq;
    at.fwd.q_head_stride = dq;
    at.fwd.k = a.k.data() + r0 * H_ * dq;
    at.fwd.k_row_stride = H_ * dq;
    at.fwd.k_head_stride = dq;
    at.fwd.v = a.kv_up.data() + r0 * H_ * dkv + d_n_;
    at.fwd.v_row_stride = H_ * dkv;
    at.fwd.v_head_stride = dkv;
    at.fwd.out = const_cast<float*>(a.o.data()) + s.begin * H_ * d_v_;
    at.fwd.out_row_stride = H_ * d_v_;
    at.fwd.out_head_stride = d_v_;
    at.fwd.lse = const_cast<float*>(a.lse.data()) + s.begin * H_;
    at.dout = g.d_o.data() + s.begin * H_ * d_v_;
    at.dout_row_stride = H_ * d_v_;
    at.dout_head_stride = d_v_;
    at.dq = g.dq.data() + s.begin * H_ * dq;
    at.dq_row_stride = H_ * dq;
    at.dq_head_stride = dq;
    at.dk = g.dk.data() + r0 * H_ * dq;
    at.dk_row_stride = H_ * dq;
    at.dk_head_stride = dq;
    at.dv = g.dkv_up.data() + r0 * H_ * dkv + d_n_;
    at.dv_row_stride = H_ * dkv;
    at.dv_head_stride = dkv;
    k.attention_backward(at, ctx.pool);
  }
  // Step 4: k = [k_nope (from kv_up); k_pe shared by every head].
  for (int64_t r = 0; r < N; ++r)
    for (int64_t h = 0; h < H_; ++h) {
      const float* dkh = g.dk.data() + (r * H_ + h) * dq;
      std::copy_n(dkh, d_n_, g.dkv_up.data() + (r * H_ + h) * dkv);
      k.axpy(g.dk_pe.data() + r * d_r_, 1.0f, dkh + d_n_, d_r_);
    }
  // The FP8 recipe's Wgrads read the inputs' tiles the forward kept (mla.h).
  const bool cached = keeps_inputs(a);
  if (cached)
    kv_b_.backward_weight(ctx, g.dkv_up.data(), a.c_kv_fp8, 0, N);
  else
    kv_b_.backward_weight(ctx, g.dkv_up.data(), a.c_kv.data(), N);
  kv_b_.backward_input(ctx, g.dkv_up.data(), N, g.dc_kv.data());
  // Step 3: latent = [RMSNorm_kv(c_kv); RoPE(k_pe)] from kv_a.
  k.rmsnorm_backward(g.dkv_a.data(), dl, kv_a_norm_.grad, g.dc_kv.data(), d_c_, a.kv_a.data(), dl,
                     kv_a_norm_.f32, N, d_c_, eps_);
  k.rope_interleaved(g.dk_pe.data(), N, 1, d_r_, 0, d_r_, cos, neg_sin);
  for (int64_t r = 0; r < N; ++r)
    std::copy_n(g.dk_pe.data() + r * d_r_, d_r_, g.dkv_a.data() + r * dl + d_c_);
  if (cached)
    kv_a_.backward_weight(ctx, g.dkv_a.data(), a.x_fp8, 0, N);
  else
    kv_a_.backward_weight(ctx, g.dkv_a.data(), x, N);
  kv_a_.backward_input(ctx, g.dkv_a.data(), N, dx);
  // Steps 1-2: queries.
  k.rope_interleaved(g.dq.data() + d_n_, N, H_, H_ * dq, dq, d_r_, cos, neg_sin);
  g.dx_q.resize(N * d_);
  if (q_lora_ > 0) {
    g.dcq.resize(N * q_lora_);
    g.dcq_raw.assign(N * q_lora_, 0.0f);
    if (cached)
      q_b_.backward_weight(ctx, g.dq.data(), a.cq_fp8, 0, N);
    else
      q_b_.backward_weight(ctx, g.dq.data(), a.cq.data(), N);
    q_b_.backward_input(ctx, g.dq.data(), N, g.dcq.data());
    k.rmsnorm_backward(g.dcq_raw.data(), q_lora_, q_a_norm_->grad, g.dcq.data(), q_lora_,
                       a.cq_raw.data(), q_lora_, q_a_norm_->f32, N, q_lora_, eps_);
    if (cached)
      q_a_.backward_weight(ctx, g.dcq_raw.data(), a.x_fp8, 0, N);
    else
      q_a_.backward_weight(ctx, g.dcq_raw.data(), x, N);
    q_a_.backward_input(ctx, g.dcq_raw.data(), N, g.dx_q.data());
  } else {
    if (cached)
      q_.backward_weight(ctx, g.dq.data(), a.x_fp8, 0, N);
    else
      q_.backward_weight(ctx, g.dq.data(), x, N);
    q_.backward_input(ctx, g.dq.data(), N, g.dx_q.data());
  }
  k.axpy(dx, 1.0f, g.dx_q.data(), N * d_);
}

}  // namespace dsv3

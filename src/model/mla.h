// Multi-head Latent Attention (SPEC §1.3) with its two computations over the same latent rows
// (SPEC §1.5): Naive materialises per-head K and V (the training path); Absorbed folds W_UK into
// the query and W_UV into the output so attention is MQA over [c_kv; k_pe] (decoding).
#pragma once
#include <string>
#include <vector>

#include "model/batch.h"
#include "model/linear.h"

namespace dsv3 {

// Activations of one batch of N rows, kept for a backward pass. (R): a recomputation point of
// SPEC §3.1 (RMSNorm outputs, up-projections), cheap to recompute instead of keeping.
struct MlaActs {
  std::vector<float> cq_raw;  // [N, q_lora] W_DQ x (q_lora only)
  std::vector<float> cq;      // [N, q_lora] RMSNorm_q(cq_raw) (R)
  std::vector<float> q;       // [N, H, d_n + d_r] W_UQ c_q (or q_proj x), q_pe rotated (R)
  std::vector<float> kv_a;    // [N, d_c + d_r] W_DKV' x
  std::vector<float> latent;  // [N, d_c + d_r] [RMSNorm_kv(c_kv); RoPE(k_pe)]: the cache rows
  // Naive: each sequence's S keys (its cache, or its own rows) one after another, sequence s from
  // row kv_row0[s]: c_kv [ΣS, d_c], kv_up [ΣS, H, d_n + d_v] = kv_b_proj(c_kv) (R), k [ΣS, H, dq].
  std::vector<int64_t> kv_row0;
  std::vector<float> c_kv, k_pe, kv_up, k;
  std::vector<float> q_abs;  // Absorbed: [N, H, d_c + d_r] [W_UK[h]ᵀ q_nope[h]; q_pe[h]]
  std::vector<float> o_lat;  // Absorbed: [H, N, d_c] Σ_s P c_kv[s]
  std::vector<float> o;      // [N, H, d_v] attention output, o_proj's input (FP8: as E5M6 keeps it)
  std::vector<float> lse;    // [N, H] log-sum-exp of each row's scaled scores (backward)
  std::vector<float> cache_scratch;
  // Under the FP8 recipe (training), the Linears' inputs as their Fprops quantized them (1x128
  // E4M3 tiles, TR §3.3.3), which the Wgrads read: x (kv_a_proj's, also q_a_proj's or q_proj's),
  // cq (q_b_proj's) and c_kv (kv_b_proj's).
  Fp8Tiles x_fp8, cq_fp8, c_kv_fp8;
};

// Scratch of a backward call (naive path), reused across calls.
struct MlaGrads {
  std::vector<float> d_o;     // [N, H, d_v] dL/d(o_proj input)
  std::vector<float> dq;      // [N, H, d_n + d_r]
  std::vector<float> dk;      // [N, H, d_n + d_r]
  std::vector<float> dkv_up;  // [N, H, d_n + d_v]
  std::vector<float> dc_kv;   // [N, d_c]
  std::vector<float> dk_pe;   // [N, d_r]
  std::vector<float> dkv_a;   // [N, d_c + d_r]
  std::vector<float> dcq;     // [N, q_lora] dL/d(RMSNorm_q output)
  std::vector<float> dcq_raw;
  std::vector<float> dx_q;  // [N, d] the query path's share of dx
};

class Mla {
 public:
  // prefix: "model.layers.3.self_attn."; cache_layer: this layer's index in its cache.
  Mla(const ModelConfig& c, const ParamStore& ps, const std::string& prefix, int64_t cache_layer);
  // x [N, d] (after the input norm) for the rows of `b`; cos/sin [N, d_r / 2] at each row's
  // position. Puts each cached sequence's latent rows in its cache (uncommitted); writes out [N,
  // d].
  void forward(ComputeContext ctx, AttentionPath path, const float* x, const Batch& b,
               const float* cos, const float* sin, MlaActs& a, float* out) const;
  // The backward of a Naive forward() of cache-less sequences over the same x, b and a (the
  // training path): accumulates every weight and norm gain gradient and writes dx [N, d] for
  // dout [N, d]. neg_sin is -sin (RoPE's backward rotates by the opposite angle).
  void backward(ComputeContext ctx, const float* x, const Batch& b, const float* cos,
                const float* neg_sin, const MlaActs& a, const float* dout, MlaGrads& g,
                float* dx) const;
  // Recomputation (SPEC §3.1): release_recomputable() frees the (R) buffers after a Naive forward
  // of cache-less sequences; recompute() rebuilds them, bit for bit, from what stays (cq_raw,
  // c_kv, k_pe) and x, before backward().
  static void release_recomputable(MlaActs& a);
  // Whether the forward kept its Linears' inputs as E4M3 tiles (x_fp8, cq_fp8, c_kv_fp8): the
  // backward then reads neither x, cq nor c_kv, and the caller may free them (c_kv and cq only
  // without recomputation, which rebuilds the up-projections from them).
  static bool keeps_inputs(const MlaActs& a) { return !a.x_fp8.q.empty(); }
  void recompute(ComputeContext ctx, const float* x, int64_t N, const float* cos, const float* sin,
                 MlaActs& a) const;

 private:
  void attend_naive(ComputeContext ctx, const Batch& b, MlaActs& a, bool keep) const;
  void attend_absorbed(ComputeContext ctx, const Batch& b, MlaActs& a) const;
  // kv_up = kv_b_proj(c_kv) and k = [k_nope; k_pe] per head for the kv_row0.back() key rows.
  // keep: c_kv's Fprop tiles kept in a.c_kv_fp8 (the forward's call, not recompute's).
  void up_project_keys(ComputeContext ctx, MlaActs& a, bool keep) const;

  int64_t d_, H_, q_lora_, d_c_, d_n_, d_r_, d_v_, layer_;
  float eps_, scale_;
  Linear q_a_, q_b_, q_, kv_a_, kv_b_, o_;  // the absorbed path reads kv_b per head
  const Param* q_a_norm_ = nullptr;
  const Param& kv_a_norm_;
};

}  // namespace dsv3

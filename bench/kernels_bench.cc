// Matmul throughput of the reference and AVX-512 kernel tables: y[T, rows] = x[T, cols] · wᵀ for
// F32, BF16 and FP8 weights, decode (T = 1) and prefill (T = 64), on the shapes of a 2048-wide
// model and of Qwen2.5-1.5B's MLP down projection. Prints GFLOP/s (2 T rows cols per call) and the
// weight stream in GB/s (weight bytes per call), best of several timed calls; then causal
// attention on MLA (absorbed and naive) and GQA shapes, milliseconds per call; then the absorbed
// MLA decode projections at DeepSeek-V3 width, one call per head against the head-batched calls;
// then the weight gradient dW += dYᵀ·X (the training GEMM); then the training backward kernels:
// causal attention's backward (GFLOP/s over the unmasked score pairs) and the cross-entropy over a
// vocabulary.
// Then the integer block formats' matmuls (quant).
//   bench_kernels [THREADS] [SECONDS_PER_CASE] [all|matmul|quant|experts|attention|mla|dw|backward]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "base/rng.h"
#include "base/thread_pool.h"
#include "base/timer.h"
#include "kernels/best_kernels.h"
#include "kernels/machine_peaks.h"
#include "tensor/block_format.h"
#include "tensor/convert.h"

namespace dsv3 {
namespace {

// The best seconds per call of fn over calls that take `budget` seconds in all.
template <typename Fn>
double best_time(const Fn& fn, double budget) {
  fn();  // warm up caches and threads
  double best = 1e30, spent = 0;
  for (int calls = 0; calls < 3 || spent < budget; ++calls) {
    Timer t;
    fn();
    const double s = t.seconds();
    best = std::min(best, s);
    spent += s;
  }
  return best;
}

void bench_attention(ThreadPool& pool, double budget) {
  struct Case {
    const char* what;
    int64_t T, S, n_heads, n_kv_heads, dk, dv;
  };
  const Case cases[] = {{"MLA absorbed decode", 1, 2048, 16, 1, 576, 512},
                        {"MLA absorbed prefill", 64, 512, 16, 1, 576, 512},
                        {"MLA naive decode", 1, 2048, 16, 16, 192, 128},
                        {"GQA 12/2 decode", 1, 2048, 12, 2, 128, 128}};
  std::printf("\n%-21s %3s %5s %5s %4s %4s | %8s %8s | %7s\n", "attention", "T", "S", "heads", "dk",
              "dv", "ref ms", "cpu ms", "speedup");
  for (const Case& c : cases) {
    AttentionArgs a;
    a.T = c.T, a.S = c.S, a.n_heads = c.n_heads, a.n_kv_heads = c.n_kv_heads, a.dk = c.dk;
    a.dv = c.dv, a.scale = 1 / std::sqrt(float(c.dk));
    a.q_head_stride = c.dk, a.q_row_stride = c.n_heads * c.dk;
    a.k_head_stride = c.dk, a.k_row_stride = c.n_kv_heads * c.dk;
    a.v_head_stride = c.dv, a.v_row_stride = c.n_kv_heads * c.dv;
    a.out_head_stride = c.dv, a.out_row_stride = c.n_heads * c.dv;
    std::vector<float> q(c.T * a.q_row_stride), k(c.S * a.k_row_stride), v(c.S * a.v_row_stride);
    std::vector<float> out(c.T * a.out_row_stride);
    Rng r(2);
    for (auto* buf : {&q, &k, &v})
      for (auto& x : *buf) x = static_cast<float>(r.normal());
    a.q = q.data(), a.k = k.data(), a.v = v.data(), a.out = out.data();
    const double t_ref = best_time([&] { ref_kernels().attention(a, pool); }, budget);
    const double t_cpu = best_time([&] { best_kernels().attention(a, pool); }, budget);
    std::printf("%-21s %3lld %5lld %2lld/%-2lld %4lld %4lld | %8.2f %8.2f | %6.1fx\n", c.what,
                static_cast<long long>(c.T), static_cast<long long>(c.S),
                static_cast<long long>(c.n_heads), static_cast<long long>(c.n_kv_heads),
                static_cast<long long>(c.dk), static_cast<long long>(c.dv), t_ref * 1e3,
                t_cpu * 1e3, t_ref / t_cpu);
  }
}

// Absorbed MLA at decode (SPEC §1.5) at DeepSeek-V3 width: kv_b_proj [H * (d_nope + d_v), r] in
// BF16; per head h, q_abs_h[r] = q_nope_h[d_nope] · W_UK_h (matmul_xw on kv_b's rows
// [h (d_nope + d_v), + d_nope)) and o_h[d_v] = ctx_h[r] · W_UV_hᵀ (matmul on the next d_v rows).
// "per head": 2 H calls on slice_rows (each under the single-thread cutoff in the AVX-512 table);
// "batched": one matmul_xw_heads and one matmul_heads. Both read kv_b once per step.
void bench_mla_decode(ThreadPool& pool, double budget) {
  const int64_t H = 128, d_nope = 128, d_v = 128, r = 512, stride = d_nope + d_v;
  Rng rng(3);
  std::vector<float> wf(H * stride * r);
  for (auto& v : wf) v = static_cast<float>(rng.normal() * 0.05);
  std::vector<unsigned char> wdata(wf.size() * 2);
  convert_from_f32(DType::BF16, wf.data(), wdata.data(), int64_t(wf.size()));
  const WeightRef kv_b{DType::BF16, wdata.data(), H * stride, r, nullptr};
  std::vector<float> q_nope(H * d_nope), ctx(H * r), q_abs(H * r), o(H * d_v);
  for (auto* buf : {&q_nope, &ctx})
    for (auto& v : *buf) v = static_cast<float>(rng.normal());
  std::vector<float> q_abs_b(q_abs.size()), o_b(o.size());
  HeadMatmulArgs uk;  // q_abs_h [1, r] = q_nope_h [1, d_nope] · W_UK_h
  uk.w = &kv_b, uk.n_heads = H, uk.w_row0 = 0, uk.w_head_stride = stride, uk.w_rows = d_nope;
  uk.T = 1, uk.x = q_nope.data(), uk.x_head_stride = d_nope, uk.x_row_stride = H * d_nope;
  uk.y = q_abs_b.data(), uk.y_head_stride = r, uk.y_row_stride = H * r;
  HeadMatmulArgs uv = uk;  // o_h [1, d_v] = ctx_h [1, r] · W_UV_hᵀ
  uv.w_row0 = d_nope, uv.w_rows = d_v, uv.x = ctx.data(), uv.x_head_stride = r;
  uv.x_row_stride = H * r, uv.y = o_b.data(), uv.y_head_stride = d_v, uv.y_row_stride = H * d_v;
  std::printf("\n%-22s %-10s | %12s %11s | %7s %8s %5s\n", "MLA absorbed decode", "table",
              "per-head ms", "batched ms", "speedup", "GB/s", "same");
  for (const Kernels* k : {&ref_kernels(), &best_kernels()}) {
    const auto per_head = [&] {
      for (int64_t h = 0; h < H; ++h)
        k->matmul_xw(q_abs.data() + h * r, r, q_nope.data() + h * d_nope, d_nope,
                     slice_rows(kv_b, h * stride, d_nope), 1, pool);
      for (int64_t h = 0; h < H; ++h)
        k->matmul(o.data() + h * d_v, ctx.data() + h * r,
                  slice_rows(kv_b, h * stride + d_nope, d_v), 1, pool);
    };
    const auto batched = [&] {
      k->matmul_xw_heads(uk, pool);
      k->matmul_heads(uv, pool);
    };
    const double t_loop = best_time(per_head, budget), t_batch = best_time(batched, budget);
    const bool same = q_abs == q_abs_b && o == o_b;  // bit for bit (no NaNs here)
    std::printf("%-22s %-10s | %12.3f %11.3f | %6.1fx %8.1f %5s\n", "H 128, r 512, BF16", k->name,
                t_loop * 1e3, t_batch * 1e3, t_loop / t_batch,
                double(wdata.size()) / t_batch * 1e-9, same ? "yes" : "NO");
  }
}

// dW[rows, cols] += dYᵀ[rows, T] · X[T, cols] (the training GEMM, gemm and gemm_bf16, as a
// Linear's Wgrad) at a training-like shape, GFLOP/s (2 T rows cols).
void bench_dw(ThreadPool& pool, double budget) {
  const int64_t T = 512, rows = 2048, cols = 1024;
  Rng rng(4);
  std::vector<float> dy(T * rows), x(T * cols), dw(rows * cols, 0.0f);
  for (auto* buf : {&dy, &x})
    for (auto& v : *buf) v = static_cast<float>(rng.normal());
  const GemmArgs g{rows,     cols, T,     dy.data(), rows, true,
                   x.data(), cols, false, dw.data(), cols, true};
  std::printf("\n%-22s %-10s | %9s %9s\n", "Wgrad (gemm)", "table", "f32", "bf16");
  for (const Kernels* k : {&ref_kernels(), &best_kernels()}) {
    const double t = best_time([&] { k->gemm(g, pool); }, budget);
    const double tb = best_time([&] { k->gemm_bf16(g, pool); }, budget);
    std::printf("%-22s %-10s | %9.1f %9.1f\n", "T 512, 2048 x 1024", k->name,
                2.0 * T * rows * cols / t * 1e-9, 2.0 * T * rows * cols / tb * 1e-9);
  }
}

// Attention backward on training shapes (T = S, cache-less): MLA's naive path (n_kv_heads =
// n_heads, dk = d_nope + d_rope) and GQA. GFLOP/s count 2 (3 dk + 2 dv) per unmasked (query, key)
// pair and head: the recomputed scores, dP = dout·v, and the three gradient products.
void bench_attention_backward(ThreadPool& pool, double budget) {
  struct Case {
    const char* what;
    int64_t T, n_heads, n_kv_heads, dk, dv;
  };
  const Case cases[] = {{"MLA naive small", 128, 4, 4, 48, 32},
                        {"MLA naive", 512, 16, 16, 192, 128},
                        {"MLA naive", 1024, 16, 16, 192, 128},
                        {"MLA naive 8 heads", 1024, 8, 8, 96, 64},
                        {"GQA 12/2", 512, 12, 2, 128, 128}};
  std::printf("\n%-18s %5s %5s %4s %4s | %9s %9s | %8s %8s | %7s\n", "attention backward", "T=S",
              "heads", "dk", "dv", "ref ms", "cpu ms", "ref GF/s", "cpu GF/s", "speedup");
  for (const Case& c : cases) {
    AttentionBackwardArgs b;
    AttentionArgs& a = b.fwd;
    a.T = a.S = c.T, a.n_heads = c.n_heads, a.n_kv_heads = c.n_kv_heads, a.dk = c.dk;
    a.dv = c.dv, a.scale = 1 / std::sqrt(float(c.dk));
    a.q_head_stride = c.dk, a.q_row_stride = c.n_heads * c.dk;
    a.k_head_stride = c.dk, a.k_row_stride = c.n_kv_heads * c.dk;
    a.v_head_stride = c.dv, a.v_row_stride = c.n_kv_heads * c.dv;
    a.out_head_stride = c.dv, a.out_row_stride = c.n_heads * c.dv;
    std::vector<float> q(c.T * a.q_row_stride), k(c.T * a.k_row_stride), v(c.T * a.v_row_stride);
    std::vector<float> out(c.T * a.out_row_stride), lse(c.T * c.n_heads), dout(out.size());
    std::vector<float> dq(q.size()), dk(k.size()), dv(v.size());
    Rng r(5);
    for (auto* buf : {&q, &k, &v, &dout})
      for (auto& x : *buf) x = static_cast<float>(r.normal());
    a.q = q.data(), a.k = k.data(), a.v = v.data(), a.out = out.data(), a.lse = lse.data();
    best_kernels().attention(a, pool);
    b.dout = dout.data(), b.dout_row_stride = a.out_row_stride, b.dout_head_stride = c.dv;
    b.dq = dq.data(), b.dq_row_stride = a.q_row_stride, b.dq_head_stride = c.dk;
    b.dk = dk.data(), b.dk_row_stride = a.k_row_stride, b.dk_head_stride = c.dk;
    b.dv = dv.data(), b.dv_row_stride = a.v_row_stride, b.dv_head_stride = c.dv;
    const double t_ref = best_time([&] { ref_kernels().attention_backward(b, pool); }, budget);
    const double t_cpu = best_time([&] { best_kernels().attention_backward(b, pool); }, budget);
    const double flop =
        double(c.T) * double(c.T + 1) / 2 * double(c.n_heads) * 2 * (3 * c.dk + 2 * c.dv);
    std::printf("%-18s %5lld %2lld/%-2lld %4lld %4lld | %9.2f %9.2f | %8.1f %8.1f | %6.1fx\n",
                c.what, static_cast<long long>(c.T), static_cast<long long>(c.n_heads),
                static_cast<long long>(c.n_kv_heads), static_cast<long long>(c.dk),
                static_cast<long long>(c.dv), t_ref * 1e3, t_cpu * 1e3, flop / t_ref * 1e-9,
                flop / t_cpu * 1e-9, t_ref / t_cpu);
  }
}

// Cross-entropy (loss and gradient in place) over T rows of a Qwen2-size vocabulary. The logits
// are restored before each call (a copy, included in both timings); GB/s count the logits read
// and written once.
void bench_cross_entropy(ThreadPool& pool, double budget) {
  const int64_t T = 64, V = 152064;
  Rng rng(6);
  std::vector<float> logits(T * V), x(T * V), loss(T);
  for (auto& v : logits) v = static_cast<float>(rng.normal() * 3);
  std::vector<int32_t> target(T);
  for (int64_t t = 0; t < T; ++t) target[t] = static_cast<int32_t>(rng.uniform() * double(V));
  std::printf("\n%-22s %-10s | %9s %9s\n", "cross_entropy", "table", "ms", "GB/s");
  for (const Kernels* k : {&ref_kernels(), &best_kernels()}) {
    const double t = best_time(
        [&] {
          std::copy(logits.begin(), logits.end(), x.begin());
          k->cross_entropy(x.data(), target.data(), T, V, 1.0f / T, loss.data(), pool);
        },
        budget);
    std::printf("%-22s %-10s | %9.2f %9.1f\n", "T 64, V 152064", k->name, t * 1e3,
                8.0 * double(T * V) / t * 1e-9);
  }
}

// The integer block formats (Q8_0, Q4_0, Q4_1) at Qwen2.5-1.5B's MLP shapes (gate/up 8960 x 1536,
// down 1536 x 8960): decode (T = 1, weight stream in GB/s against the read bandwidth) and prefill
// (T = 512, GOP/s counting a multiply-add as 2, against the VNNI probe's peak), the best table
// against the reference's result (max |diff| / max |y|). The MLP shapes fit a large last-level
// cache, so decode also runs on its LM head (151936 x 1536, 131 MB at 4 bits), streamed from
// memory as in a real token.
void bench_quant(ThreadPool& pool, double budget) {
  const MachinePeaks peaks = measure_machine_peaks(pool, 256ull << 20);
  std::printf("\nquantized matmul, %s: read %.1f GB/s, int8 peak %.0f GOP/s\n", best_kernels().name,
              peaks.read_gbs_n, peaks.int8_vnni);
  std::printf("%-5s %-11s %3s | %9s %7s | %9s %7s | %9s\n", "fmt", "rows x cols", "T", "GOP/s",
              "% peak", "GB/s", "% read", "max rel");
  const int64_t shapes[][2] = {{8960, 1536}, {1536, 8960}, {151936, 1536}};
  for (BlockFormat f : {BlockFormat::Q8_0, BlockFormat::Q4_0, BlockFormat::Q4_1}) {
    const BlockFormatTraits& q = block_format_traits(f);
    for (const auto& s : shapes) {
      const int64_t rows = s[0], cols = s[1], nb = cols / q.block_cols;
      Rng r(5);
      std::vector<float> row(cols);
      std::vector<unsigned char> data(rows * q.quant_row_bytes(cols));
      std::vector<uint16_t> scale(rows * nb), minv(q.has_min ? rows * nb : 0);
      for (int64_t i = 0; i < rows; ++i) {
        for (auto& v : row) v = static_cast<float>(r.normal() * 0.02);
        q.quantize_row(row.data(), cols, data.data() + i * q.quant_row_bytes(cols),
                       scale.data() + i * nb, q.has_min ? minv.data() + i * nb : nullptr);
      }
      WeightRef w{q.quant_dtype, data.data(), rows, cols, nullptr};
      w.quant = &q, w.block_scale = scale.data(), w.block_min = q.has_min ? minv.data() : nullptr;
      const double bytes = double(data.size() + 2 * (scale.size() + minv.size()));
      for (int64_t T : {1, 512}) {
        if (T > 1 && rows > 100000) continue;  // the head is decode's shape
        std::vector<float> x(T * cols), y_ref(T * rows), y(T * rows);
        for (auto& v : x) v = static_cast<float>(r.normal());
        ref_kernels().matmul(y_ref.data(), x.data(), w, T, pool);
        const double t =
            best_time([&] { best_kernels().matmul(y.data(), x.data(), w, T, pool); }, budget);
        double diff = 0, mag = 0;
        for (int64_t i = 0; i < T * rows; ++i) {
          diff = std::max(diff, std::fabs(double(y[i]) - y_ref[i]));
          mag = std::max(mag, std::fabs(double(y_ref[i])));
        }
        const double gops = 2.0 * T * rows * cols / t * 1e-9, gbs = bytes / t * 1e-9;
        std::printf("%-5s %4lldx%-6lld %3lld | %9.1f %6.1f%% | %9.1f %6.1f%% | %9.2g\n", q.name,
                    static_cast<long long>(rows), static_cast<long long>(cols),
                    static_cast<long long>(T), gops, 100 * gops / peaks.int8_vnni, gbs,
                    100 * gbs / peaks.read_gbs_n, diff / mag);
      }
    }
  }
}

// Decode through an MoE layer's experts as a token does: 8 of 64 experts (moonlight's 1408 x 2048
// gate, up and down, each a separate matmul), a different 8 each token, so every matrix comes
// from memory (192 distinct matrices, 300 MB at 4 bits). The weight stream in GB/s against the
// read bandwidth: what small matrices lose to the pool's hand-offs and the memory's ramp-up.
void bench_experts(ThreadPool& pool, double budget) {
  const MachinePeaks peaks = measure_machine_peaks(pool, 256ull << 20);
  std::printf("\nexpert decode (8 of 64 experts x 3 matrices 1408 x 2048, T = 1): read %.1f GB/s\n",
              peaks.read_gbs_n);
  const int64_t rows = 1408, cols = 2048, n_mat = 3 * 64, per_token = 3 * 8;
  for (BlockFormat f : {BlockFormat::Q8_0, BlockFormat::Q4_0}) {
    const BlockFormatTraits& q = block_format_traits(f);
    const int64_t nb = cols / q.block_cols, mat_bytes = rows * q.quant_row_bytes(cols);
    std::vector<unsigned char> data(n_mat * mat_bytes);
    std::vector<uint16_t> scale(n_mat * rows * nb);
    Rng r(7);
    std::vector<float> row(cols);
    for (int64_t i = 0; i < n_mat * rows; ++i) {
      for (auto& v : row) v = static_cast<float>(r.normal() * 0.02);
      q.quantize_row(row.data(), cols, data.data() + i * q.quant_row_bytes(cols),
                     scale.data() + i * nb, nullptr);
    }
    std::vector<float> x(cols, 0.5f), y(rows);
    int64_t next = 0;
    const auto token = [&] {
      for (int64_t j = 0; j < per_token; ++j, next = (next + 37) % n_mat) {
        WeightRef w{q.quant_dtype, data.data() + next * mat_bytes, rows, cols, nullptr};
        w.quant = &q, w.block_scale = scale.data() + next * rows * nb;
        best_kernels().matmul(y.data(), x.data(), w, 1, pool);
      }
    };
    const double t = best_time(token, budget);
    const double gbs = per_token * double(mat_bytes + rows * nb * 2) / t * 1e-9;
    std::printf("%-5s %6.1f us/token  %6.1f GB/s  %5.1f%% of read\n", q.name, t * 1e6, gbs,
                100 * gbs / peaks.read_gbs_n);
  }
}

int run(int threads, double budget, const std::string& only) {
  ThreadPool pool(threads);
  std::printf("threads %d, tables: ref vs %s\n", threads, best_kernels().name);
  if (only == "mla") {
    bench_mla_decode(pool, budget);
    return 0;
  }
  if (only == "attention") {
    bench_attention(pool, budget);
    return 0;
  }
  if (only == "dw") {
    bench_dw(pool, budget);
    return 0;
  }
  if (only == "quant") {
    bench_quant(pool, budget);
    bench_experts(pool, budget);
    return 0;
  }
  if (only == "experts") {
    bench_experts(pool, budget);
    return 0;
  }
  if (only == "backward") {
    bench_attention_backward(pool, budget);
    bench_cross_entropy(pool, budget);
    return 0;
  }
  std::printf("%-6s %-11s %3s | %9s %8s | %9s %8s | %7s %9s\n", "dtype", "rows x cols", "T",
              "ref GF/s", "ref GB/s", "cpu GF/s", "cpu GB/s", "speedup", "max rel");
  const int64_t shapes[][2] = {{2048, 2048}, {1536, 8960}};
  for (DType dt : {DType::F32, DType::BF16, DType::F8_E4M3}) {
    for (const auto& s : shapes) {
      const int64_t rows = s[0], cols = s[1];
      Rng r(1);
      std::vector<float> wf(rows * cols);
      for (auto& v : wf) v = static_cast<float>(r.normal());
      std::vector<unsigned char> wdata(rows * cols * dtype_size(dt));
      convert_from_f32(dt, wf.data(), wdata.data(), rows * cols);
      std::vector<float> scale(((rows + 127) / 128) * ((cols + 127) / 128), 0.01f);
      const WeightRef w{dt, wdata.data(), rows, cols,
                        dt == DType::F8_E4M3 ? scale.data() : nullptr};
      for (int64_t T : {1, 64}) {
        std::vector<float> x(T * cols), y_ref(T * rows), y_cpu(T * rows);
        for (auto& v : x) v = static_cast<float>(r.normal());
        const double t_ref =
            best_time([&] { ref_kernels().matmul(y_ref.data(), x.data(), w, T, pool); }, budget);
        const double t_cpu =
            best_time([&] { best_kernels().matmul(y_cpu.data(), x.data(), w, T, pool); }, budget);
        double diff = 0, mag = 0;
        for (int64_t i = 0; i < T * rows; ++i) {
          diff = std::max(diff, std::fabs(double(y_cpu[i]) - y_ref[i]));
          mag = std::max(mag, std::fabs(double(y_ref[i])));
        }
        const double flop = 2.0 * T * rows * cols, bytes = double(wdata.size());
        std::printf("%-6s %4lldx%-6lld %3lld | %9.1f %8.1f | %9.1f %8.1f | %6.1fx %9.2g\n",
                    std::string(dtype_name(dt)).c_str(), static_cast<long long>(rows),
                    static_cast<long long>(cols), static_cast<long long>(T), flop / t_ref * 1e-9,
                    bytes / t_ref * 1e-9, flop / t_cpu * 1e-9, bytes / t_cpu * 1e-9, t_ref / t_cpu,
                    diff / mag);
      }
    }
  }
  if (only == "matmul") return 0;
  bench_quant(pool, budget);
  bench_attention(pool, budget);
  bench_mla_decode(pool, budget);
  bench_dw(pool, budget);
  bench_attention_backward(pool, budget);
  bench_cross_entropy(pool, budget);
  return 0;
}

}  // namespace
}  // namespace dsv3

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : dsv3::ThreadPool::default_threads();
  const double budget = argc > 2 ? std::atof(argv[2]) : 0.5;
  const std::string only = argc > 3 ? argv[3] : "all";
  if (threads < 1 || !(budget > 0) ||
      (only != "all" && only != "matmul" && only != "attention" && only != "mla" && only != "dw" &&
       only != "backward" && only != "quant" && only != "experts")) {
    std::fprintf(stderr,
                 "usage: bench_kernels [THREADS >= 1] [SECONDS_PER_CASE > 0] "
                 "[all|matmul|quant|experts|attention|mla|dw|backward]\n");
    return 2;
  }
  return dsv3::run(threads, budget, only);
}

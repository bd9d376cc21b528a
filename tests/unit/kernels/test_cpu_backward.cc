// The AVX-512 backward kernels (rmsnorm, SwiGLU, cross-entropy, attention) against float64 values
// computed here from the same float32 inputs and against the reference kernels, on odd sizes
// (not multiples of 16 or of attention's 48-position blocks), strided rows, T != S (a cache
// prefix), GQA groups and several pool sizes. Every bound is a first-order rounding analysis of
// the computation, u = 2^-24, gamma(k) = k u / (1 - k u) for any order of a k-term sum, with a 2x
// margin; a kernel and ref, both within it of the exact value, are within twice it of each other.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/best_kernels.h"
#include "kernels/kernels.h"
#include "unit/kernels/kernel_test_util.h"

namespace dsv3 {
namespace {

using test::gamma;
using test::kU;
using test::randn;

TEST(CpuBackward, RmsnormMatchesDoubleAndRef) {
  REQUIRE_AVX512();
  for (int64_t n : {1, 15, 16, 17, 100, 2049}) {
    const int64_t T = 4, xs = n + 3, ds = n + 1, gs = n + 2;  // padded rows
    const auto x = randn(T * xs, n), g = randn(n, n + 1), dy = randn(T * ds, n + 2);
    const auto dx0 = randn(T * gs, n + 3), dg0 = randn(n, n + 4);  // both accumulated into
    auto dx = dx0, dx_ref = dx0, dg = dg0, dg_ref = dg0;
    cpu_kernels().rmsnorm_backward(dx.data(), gs, dg.data(), dy.data(), ds, x.data(), xs, g.data(),
                                   T, n, 1e-6f);
    ref_kernels().rmsnorm_backward(dx_ref.data(), gs, dg_ref.data(), dy.data(), ds, x.data(), xs,
                                   g.data(), T, n, 1e-6f);
    std::vector<double> dg_exact(dg0.begin(), dg0.end()), dg_abs(n);
    for (int64_t i = 0; i < n; ++i) dg_abs[i] = std::fabs(dg0[i]);
    for (int64_t t = 0; t < T; ++t) {
      const float* xt = &x[t * xs];
      const float* dyt = &dy[t * ds];
      double ss = 0, sum = 0;
      for (int64_t i = 0; i < n; ++i)
        ss += double(xt[i]) * xt[i], sum += double(g[i]) * dyt[i] * xt[i];
      const double r = 1 / std::sqrt(ss / n + 1e-6), c = r * r * r * sum / n;
      for (int64_t i = 0; i < n; ++i) {
        const double a = r * g[i] * dyt[i], b = c * xt[i], exact = dx0[t * gs + i] + a - b;
        // r and c rounded to float32 once (their double sums are exact to ~n 2^-53), g dy and
        // x c rounded, the fused r (g dy) - x c and the add to dx rounded: 4u on each term's
        // magnitude plus 2u of the result.
        const double bound =
            2 * (4 * kU * (std::fabs(a) + std::fabs(b)) + 2 * kU * std::fabs(exact));
        const int64_t k = t * gs + i;
        ASSERT_NEAR(dx[k], exact, bound) << "n " << n << " t " << t << " i " << i;
        ASSERT_NEAR(dx_ref[k], exact, bound) << "ref, n " << n << " t " << t << " i " << i;
        dg_exact[i] += dyt[i] * xt[i] * r;
        dg_abs[i] += std::fabs(dyt[i] * xt[i] * r);
      }
    }
    for (int64_t i = 0; i < n; ++i) {
      // Per row: x r rounded, the product-add rounded (3u of the term); over T rows the running
      // sum's roundings add gamma(T) of the magnitudes.
      const double bound = 2 * (3 * kU + gamma(T)) * dg_abs[i];
      ASSERT_NEAR(dg[i], dg_exact[i], bound) << "n " << n << " i " << i;
      ASSERT_NEAR(dg_ref[i], dg_exact[i], bound) << "ref, n " << n << " i " << i;
    }
    for (int64_t t = 0; t < T; ++t)
      for (int64_t i = n; i < gs; ++i) ASSERT_EQ(dx[t * gs + i], dx0[t * gs + i]) << "padding";
  }
}

TEST(CpuBackward, SwigluMatchesDoubleAndRef) {
  REQUIRE_AVX512();
  for (int64_t n : {1, 15, 16, 17, 333}) {
    auto gate = randn(n, n);
    for (auto& v : gate) v *= 4;
    // Zeros, tiny, large of both signs, and near -1.2785 where silu' crosses zero.
    const float special[] = {0.0f, -0.0f, 1e-30f, -1.2785f, 30.0f, -30.0f, 80.0f, -80.0f};
    for (int64_t i = 0; i < n && i < 8; ++i) gate[i * 5 % n] = special[i];
    const auto up = randn(n, n + 1), dact = randn(n, n + 2);
    std::vector<float> dg(n), du(n), dg_ref(n), du_ref(n);
    cpu_kernels().swiglu_backward(dg.data(), du.data(), gate.data(), up.data(), dact.data(), n);
    ref_kernels().swiglu_backward(dg_ref.data(), du_ref.data(), gate.data(), up.data(), dact.data(),
                                  n);
    for (int64_t i = 0; i < n; ++i) {
      const double g = gate[i], sg = 1 / (1 + std::exp(-g)), slope = 1 + g * (1 - sg);
      const double e_up = dact[i] * g * sg, e_gate = double(dact[i]) * up[i] * sg * slope;
      // sigmoid within 5u (exp 3u, the add, the division); dup two more roundings. The slope
      // 1 + g (1 - sg) crosses zero, so its error is absolute: g times sg's, plus its own
      // roundings (|g| 7u + u |slope|); dgate's three products add 3u. Below 2^-126 the spacing
      // 2^-149 bounds what a subnormal sigmoid loses.
      const double tiny = std::ldexp(1.0, -149) * (1 + std::fabs(g)) * 4;
      const double b_up = 2 * (7 * kU * std::fabs(e_up) + tiny * std::fabs(dact[i] * g));
      const double w = std::fabs(double(dact[i]) * up[i] * sg);
      const double b_gate = 2 * (w * (9 * kU * std::fabs(slope) + 7 * kU * std::fabs(g)) +
                                 tiny * std::fabs(dact[i] * up[i]));
      ASSERT_NEAR(du[i], e_up, b_up) << "gate " << gate[i];
      ASSERT_NEAR(du_ref[i], e_up, b_up) << "ref, gate " << gate[i];
      ASSERT_NEAR(dg[i], e_gate, b_gate) << "gate " << gate[i];
      ASSERT_NEAR(dg_ref[i], e_gate, b_gate) << "ref, gate " << gate[i];
    }
  }
}

TEST(CpuBackward, CrossEntropyMatchesDoubleAndRef) {
  REQUIRE_AVX512();
  ThreadPool pool(3);
  // Up to a Qwen2-size vocabulary (152064); row 1 is ignored (target < 0).
  for (int64_t V : {1, 15, 17, 1000, 152064}) {
    const int64_t T = V > 100000 ? 3 : 5;
    auto x = randn(T * V, V);
    for (auto& v : x) v *= 3;
    if (V > 2) x[V / 2] = -INFINITY;  // a masked logit in row 0
    std::vector<int32_t> target(T);
    for (int64_t t = 0; t < T; ++t) target[t] = static_cast<int32_t>((t * 7919 + 3) % V);
    target[1] = -100;
    const float scale = 0.37f;
    auto y = x, y_ref = x;
    std::vector<float> loss(T, -1.0f), loss_ref(T, -1.0f);
    cpu_kernels().cross_entropy(y.data(), target.data(), T, V, scale, loss.data(), pool);
    ref_kernels().cross_entropy(y_ref.data(), target.data(), T, V, scale, loss_ref.data(), pool);
    for (int64_t t = 0; t < T; ++t) {
      const float* r = &x[t * V];
      if (target[t] < 0) {
        ASSERT_EQ(loss[t], 0.0f);
        for (int64_t i = 0; i < V; ++i) ASSERT_EQ(y[t * V + i], 0.0f) << "ignored row";
        continue;
      }
      double m = -INFINITY, sum = 0, spread = 0;
      for (int64_t i = 0; i < V; ++i) m = std::max(m, double(r[i]));
      for (int64_t i = 0; i < V; ++i) sum += std::exp(r[i] - m);
      for (int64_t i = 0; i < V; ++i)
        if (std::isfinite(r[i])) spread = std::max(spread, m - r[i]);
      const double lse = m + std::log(sum), l = lse - r[target[t]];
      // Each float32 exp(x - m) is off by (3 + |x - m|) u relative (the rounded difference, then
      // exp16), so the double sum by (3 + spread) u, which log passes on as absolute error; the
      // loss is rounded once.
      const double b_loss = 2 * ((3 + spread) * kU + kU * std::fabs(l));
      ASSERT_NEAR(loss[t], l, b_loss) << "V " << V << " t " << t;
      ASSERT_NEAR(loss_ref[t], l, b_loss) << "ref, V " << V << " t " << t;
      for (int64_t i = 0; i < V; ++i) {
        const double p = std::exp(r[i] - lse), exact = scale * (p - (i == target[t]));
        // exp(x - m), the sum, scale / sum and the product: (8 + |x - m| + spread) u of
        // scale p; the target's subtraction rounds once more.
        const double bound =
            2 * ((8 + (m - r[i]) + spread) * kU * scale * p + kU * std::fabs(exact));
        if (std::isinf(r[i])) {
          ASSERT_EQ(y[t * V + i], 0.0f);
          continue;
        }
        ASSERT_NEAR(y[t * V + i], exact, bound) << "V " << V << " t " << t << " i " << i;
        ASSERT_NEAR(y_ref[t * V + i], exact, bound) << "ref, V " << V << " t " << t;
      }
    }
  }
}

struct AttnCase {
  int64_t T, S, n_heads, n_kv_heads, dk, dv;
};

// Strided attention buffers: every row and head padded, so writes outside a head are caught.
struct AttnBufs {
  AttentionBackwardArgs b;
  std::vector<float> q, k, v, out, lse, dout, dq, dk, dv;
};

AttnBufs make_attention(const AttnCase& c) {
  AttnBufs x;
  AttentionArgs& a = x.b.fwd;
  a.T = c.T, a.S = c.S, a.n_heads = c.n_heads, a.n_kv_heads = c.n_kv_heads, a.dk = c.dk;
  a.dv = c.dv, a.scale = static_cast<float>(1 / std::sqrt(double(c.dk)));
  a.q_head_stride = c.dk + 1, a.q_row_stride = c.n_heads * a.q_head_stride + 2;
  a.k_head_stride = c.dk + 3, a.k_row_stride = c.n_kv_heads * a.k_head_stride;
  a.v_head_stride = c.dv, a.v_row_stride = c.n_kv_heads * c.dv + 5;
  a.out_head_stride = c.dv + 1, a.out_row_stride = c.n_heads * a.out_head_stride;
  x.q = randn(c.T * a.q_row_stride, 1 + c.dk);
  x.k = randn(c.S * a.k_row_stride, 2 + c.dk);
  x.v = randn(c.S * a.v_row_stride, 3 + c.dv);
  for (auto& e : x.q) e *= 1.5f;  // sharper softmaxes than unit scores
  x.out.assign(c.T * a.out_row_stride, 0.0f);
  x.lse.assign(c.T * c.n_heads, 0.0f);
  a.q = x.q.data(), a.k = x.k.data(), a.v = x.v.data(), a.out = x.out.data(), a.lse = x.lse.data();
  ThreadPool pool(2);
  ref_kernels().attention(a, pool);
  AttentionBackwardArgs& b = x.b;
  b.dout_head_stride = c.dv + 2, b.dout_row_stride = c.n_heads * b.dout_head_stride + 1;
  b.dq_head_stride = c.dk + 2, b.dq_row_stride = c.n_heads * b.dq_head_stride + 3;
  b.dk_head_stride = c.dk + 1, b.dk_row_stride = c.n_kv_heads * b.dk_head_stride + 2;
  b.dv_head_stride = c.dv + 3, b.dv_row_stride = c.n_kv_heads * b.dv_head_stride;
  x.dout = randn(c.T * b.dout_row_stride, 4 + c.dv);
  x.dq.assign(c.T * b.dq_row_stride, NAN);        // dq is written: a kernel that adds keeps NaN
  x.dk = randn(c.S * b.dk_row_stride, 5 + c.dk);  // dk and dv are accumulated into
  x.dv = randn(c.S * b.dv_row_stride, 6 + c.dv);
  b.dout = x.dout.data(), b.dq = x.dq.data(), b.dk = x.dk.data(), b.dv = x.dv.data();
  return x;
}

// The kernel's result and, elementwise, its exact value in double from the same float32 inputs
// (the saved out and lse included) and the bound on a float32 computation's error.
struct Expect {
  std::vector<double> dq, dk, dv, bdq, bdk, bdv;
};

Expect expect_attention(const AttnBufs& x) {
  const AttentionArgs& a = x.b.fwd;
  const AttentionBackwardArgs& b = x.b;
  const int64_t group = a.n_heads / a.n_kv_heads;
  Expect e;
  e.dq.assign(x.dq.size(), 0), e.bdq.assign(x.dq.size(), 0);
  e.dk.assign(x.dk.begin(), x.dk.end()), e.bdk.assign(x.dk.size(), 0);
  e.dv.assign(x.dv.begin(), x.dv.end()), e.bdv.assign(x.dv.size(), 0);
  std::vector<double> abs_dk(x.dk.size()), abs_dv(x.dv.size());
  for (size_t i = 0; i < x.dk.size(); ++i) abs_dk[i] = std::fabs(x.dk[i]);
  for (size_t i = 0; i < x.dv.size(); ++i) abs_dv[i] = std::fabs(x.dv[i]);
  const double sc = a.scale;
  for (int64_t h = 0; h < a.n_heads; ++h)
    for (int64_t t = 0; t < a.T; ++t) {
      const int64_t g = h / group, n_keys = a.S - a.T + t + 1;
      const float* q = &x.q[t * a.q_row_stride + h * a.q_head_stride];
      const float* o = &x.out[t * a.out_row_stride + h * a.out_head_stride];
      const float* dout = &x.dout[t * b.dout_row_stride + h * b.dout_head_stride];
      const double lse = x.lse[t * a.n_heads + h];
      double D = 0, abs_D = 0;
      for (int64_t j = 0; j < a.dv; ++j)
        D += double(dout[j]) * o[j], abs_D += std::fabs(dout[j] * o[j]);
      const int64_t i_dq = t * b.dq_row_stride + h * b.dq_head_stride;
      for (int64_t s = 0; s < n_keys; ++s) {
        const float* k = &x.k[s * a.k_row_stride + g * a.k_head_stride];
        const float* v = &x.v[s * a.v_row_stride + g * a.v_head_stride];
        double qk = 0, abs_qk = 0, dp = 0, abs_dp = 0;
        for (int64_t j = 0; j < a.dk; ++j)
          qk += double(q[j]) * k[j], abs_qk += std::fabs(q[j] * k[j]);
        for (int64_t j = 0; j < a.dv; ++j)
          dp += double(dout[j]) * v[j], abs_dp += std::fabs(dout[j] * v[j]);
        const double P = std::exp(sc * qk - lse), dS = P * (dp - D) * sc;
        // P: the score's dot (gamma(dk)), its scaling and the subtraction of lse, then exp
        // (3u): relative error eP. dS: eP on P, the dots dP and D absolutely, 3 roundings.
        const double eP = gamma(a.dk + 2) * (sc * abs_qk + std::fabs(lse)) + 3 * kU;
        const double e_dS = sc * (eP * P * std::fabs(dp - D) +
                                  P * (gamma(a.dv) * (abs_dp + abs_D) + kU * std::fabs(dp - D))) +
                            2 * kU * std::fabs(dS);
        const int64_t i_dv = s * b.dv_row_stride + g * b.dv_head_stride;
        for (int64_t j = 0; j < a.dv; ++j) {
          e.dv[i_dv + j] += P * dout[j];
          abs_dv[i_dv + j] += P * std::fabs(dout[j]);
          e.bdv[i_dv + j] += eP * P * std::fabs(dout[j]);
        }
        const int64_t i_dk = s * b.dk_row_stride + g * b.dk_head_stride;
        for (int64_t j = 0; j < a.dk; ++j) {
          e.dk[i_dk + j] += dS * q[j];
          abs_dk[i_dk + j] += std::fabs(dS * q[j]);
          e.bdk[i_dk + j] += e_dS * std::fabs(q[j]);
          e.dq[i_dq + j] += dS * k[j];
          e.bdq[i_dq + j] += e_dS * std::fabs(k[j]) + gamma(n_keys + 8) * std::fabs(dS * k[j]);
        }
      }
    }
  // The sums over rows (dk, dv: T rows of every head of the group, plus the initial value).
  const double g_rows = gamma(a.T * group + 1);
  for (size_t i = 0; i < e.dk.size(); ++i) e.bdk[i] = 2 * (e.bdk[i] + g_rows * abs_dk[i]);
  for (size_t i = 0; i < e.dv.size(); ++i) e.bdv[i] = 2 * (e.bdv[i] + g_rows * abs_dv[i]);
  for (auto& v : e.bdq) v *= 2;
  return e;
}

// Every element within its bound; dq's padding still NaN, dk's and dv's unchanged.
void check_attention(const AttnBufs& x, const AttnBufs& init, const Expect& e,
                     const std::string& where) {
  const AttentionArgs& a = x.b.fwd;
  const AttentionBackwardArgs& b = x.b;
  for (int64_t t = 0; t < a.T; ++t)
    for (int64_t i = 0; i < b.dq_row_stride; ++i) {
      const int64_t k = t * b.dq_row_stride + i, h = i / b.dq_head_stride;
      if (h >= a.n_heads || i % b.dq_head_stride >= a.dk) {
        ASSERT_TRUE(std::isnan(x.dq[k])) << where << ": dq padding written";
        continue;
      }
      ASSERT_NEAR(x.dq[k], e.dq[k], e.bdq[k]) << where << " dq t " << t << " at " << i;
    }
  const auto check_acc = [&](const std::vector<float>& got, const std::vector<float>& before,
                             const std::vector<double>& want, const std::vector<double>& bound,
                             int64_t row, int64_t head, int64_t d, const char* what) {
    for (int64_t s = 0; s < a.S; ++s)
      for (int64_t i = 0; i < row; ++i) {
        const int64_t k = s * row + i, h = i / head;
        if (h >= a.n_kv_heads || i % head >= d) {
          ASSERT_EQ(got[k], before[k]) << where << ": " << what << " padding written";
          continue;
        }
        ASSERT_NEAR(got[k], want[k], bound[k]) << where << " " << what << " s " << s << " at " << i;
      }
  };
  check_acc(x.dk, init.dk, e.dk, e.bdk, b.dk_row_stride, b.dk_head_stride, a.dk, "dk");
  check_acc(x.dv, init.dv, e.dv, e.bdv, b.dv_row_stride, b.dv_head_stride, a.dv, "dv");
}

AttnBufs run_attention(const Kernels& kern, const AttnBufs& init, int threads) {
  AttnBufs x = init;
  x.b.fwd.q = x.q.data(), x.b.fwd.k = x.k.data(), x.b.fwd.v = x.v.data();
  x.b.fwd.out = x.out.data(), x.b.fwd.lse = x.lse.data();
  x.b.dout = x.dout.data(), x.b.dq = x.dq.data(), x.b.dk = x.dk.data(), x.b.dv = x.dv.data();
  ThreadPool pool(threads);
  kern.attention_backward(x.b, pool);
  return x;
}

TEST(CpuBackward, AttentionMatchesDoubleAndRef) {
  REQUIRE_AVX512();
  // One position; GQA and a cache prefix (T < S) with odd head sizes; a decode row; sizes around
  // the 48-position block and the 16-lane vector; one key head for five query heads; head sizes
  // above the 64-column strip; MLA's naive shape with a prefix; many heads (threads get whole key
  // heads) and few (key blocks split into chunks with partial dq sums).
  const AttnCase cases[] = {{1, 1, 1, 1, 1, 1},         {3, 10, 4, 2, 19, 33},
                            {1, 37, 3, 1, 72, 64},      {50, 50, 2, 2, 48, 32},
                            {49, 97, 6, 2, 72, 40},     {97, 97, 5, 1, 20, 24},
                            {60, 60, 3, 3, 130, 150},   {100, 150, 4, 2, 192, 128},
                            {200, 200, 16, 16, 48, 32}, {300, 300, 1, 1, 16, 17}};
  for (const AttnCase& c : cases) {
    const std::string where = "T " + std::to_string(c.T) + " S " + std::to_string(c.S) + " heads " +
                              std::to_string(c.n_heads) + "/" + std::to_string(c.n_kv_heads) +
                              " dk " + std::to_string(c.dk) + " dv " + std::to_string(c.dv);
    const AttnBufs init = make_attention(c);
    const Expect e = expect_attention(init);
    const AttnBufs ref = run_attention(ref_kernels(), init, 2);
    check_attention(ref, init, e, where + " ref");
    std::vector<AttnBufs> runs;
    for (int threads : {1, 2, 3, 5}) {
      runs.push_back(run_attention(cpu_kernels(), init, threads));
      check_attention(runs.back(), init, e, where + " threads " + std::to_string(threads));
      // dk and dv sum in the same order whatever the split: bit for bit across pool sizes.
      ASSERT_EQ(runs.back().dk, runs[0].dk) << where << " threads " << threads;
      ASSERT_EQ(runs.back().dv, runs[0].dv) << where << " threads " << threads;
    }
  }
}

TEST(CpuBackward, TableHasCpuBackwardKernels) {
  REQUIRE_AVX512();
  const Kernels& k = cpu_kernels();
  EXPECT_NE(k.rmsnorm_backward, ref_kernels().rmsnorm_backward);
  EXPECT_NE(k.swiglu_backward, ref_kernels().swiglu_backward);
  EXPECT_NE(k.cross_entropy, ref_kernels().cross_entropy);
  EXPECT_NE(k.attention_backward, ref_kernels().attention_backward);
  EXPECT_NE(k.embedding_backward, nullptr);
}

}  // namespace
}  // namespace dsv3

// The finite-difference mode (grad_check.h) on every backward op: each table's analytic gradient
// against central differences of the reference forward (float32, the loss summed in double), for
// every input of the op: rmsnorm (x, g), SwiGLU (gate, up), cross-entropy (logits, with an
// ignored row), causal attention (q, k, v; a cache prefix and GQA) and the embedding (the table,
// repeated ids). Losses are Σ w ⊙ y with random w, so every output's gradient path counts.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/kernels.h"
#include "unit/kernels/grad_check.h"
#include "unit/kernels/kernel_test_util.h"

namespace dsv3 {
namespace {

using test::check_gradient;
using test::randn;

double weighted_sum(const std::vector<float>& w, const std::vector<float>& y) {
  double s = 0;
  for (size_t i = 0; i < y.size(); ++i) s += double(w[i]) * y[i];
  return s;
}

class GradCheck : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    k_ = test::table(GetParam());
    if (k_ == nullptr) GTEST_SKIP() << "no AVX-512 F/BW/VL on this CPU";
  }
  const Kernels* k_ = nullptr;  // the analytic gradients; the forwards are always ref's
  const Kernels& fwd_ = ref_kernels();
  ThreadPool pool_{1};  // the forwards run hundreds of times: no thread hand-offs
};

TEST_P(GradCheck, Rmsnorm) {
  const int64_t T = 3, n = 37;
  const float eps = 1e-5f;
  auto x = randn(T * n, 1), g = randn(n, 2);
  const auto w = randn(T * n, 3);
  const auto loss = [&] {
    std::vector<float> y(T * n);
    fwd_.rmsnorm(y.data(), n, x.data(), n, g.data(), T, n, eps);
    return weighted_sum(w, y);
  };
  std::vector<float> dx(T * n, 0.0f), dg(n, 0.0f);
  k_->rmsnorm_backward(dx.data(), n, dg.data(), w.data(), n, x.data(), n, g.data(), T, n, eps);
  EXPECT_TRUE(check_gradient(loss, x, dx, {}, "dx"));
  EXPECT_TRUE(check_gradient(loss, g, dg, {}, "dg"));
}

TEST_P(GradCheck, Swiglu) {
  const int64_t n = 41;
  auto gate = randn(n, 4), up = randn(n, 5);
  for (auto& v : gate) v *= 3;
  const auto w = randn(n, 6);
  const auto loss = [&] {
    std::vector<float> y = gate;
    fwd_.swiglu(y.data(), up.data(), n);
    return weighted_sum(w, y);
  };
  std::vector<float> dgate(n), dup(n);
  k_->swiglu_backward(dgate.data(), dup.data(), gate.data(), up.data(), w.data(), n);
  EXPECT_TRUE(check_gradient(loss, gate, dgate, {}, "dgate"));
  EXPECT_TRUE(check_gradient(loss, up, dup, {}, "dup"));
}

TEST_P(GradCheck, CrossEntropy) {
  const int64_t T = 4, V = 23;
  const float scale = 0.25f;
  auto x = randn(T * V, 7);
  for (auto& v : x) v *= 2;
  const std::vector<int32_t> target = {5, -1, 22, 0};  // row 1 ignored: zero gradient
  const auto loss = [&] {
    std::vector<float> y = x, l(T);
    fwd_.cross_entropy(y.data(), target.data(), T, V, scale, l.data(), pool_);
    double s = 0;
    for (float v : l) s += v;
    return scale * s;
  };
  std::vector<float> dx = x, l(T);
  k_->cross_entropy(dx.data(), target.data(), T, V, scale, l.data(), pool_);
  EXPECT_TRUE(check_gradient(loss, x, dx, {}, "dlogits"));
}

struct AttnShape {
  int64_t T, S, n_heads, n_kv_heads, dk, dv;
};

TEST_P(GradCheck, Attention) {
  // A cache prefix with groups of 2 query heads per key head; T == S with one head per key head.
  for (const AttnShape& c : {AttnShape{5, 8, 4, 2, 6, 5}, AttnShape{6, 6, 2, 2, 7, 4}}) {
    AttentionArgs a;
    a.T = c.T, a.S = c.S, a.n_heads = c.n_heads, a.n_kv_heads = c.n_kv_heads, a.dk = c.dk;
    a.dv = c.dv, a.scale = 0.4f;
    a.q_row_stride = c.n_heads * c.dk, a.q_head_stride = c.dk;
    a.k_row_stride = c.n_kv_heads * c.dk, a.k_head_stride = c.dk;
    a.v_row_stride = c.n_kv_heads * c.dv, a.v_head_stride = c.dv;
    a.out_row_stride = c.n_heads * c.dv, a.out_head_stride = c.dv;
    auto q = randn(c.T * a.q_row_stride, 8), k = randn(c.S * a.k_row_stride, 9);
    auto v = randn(c.S * a.v_row_stride, 10);
    const auto dout = randn(c.T * a.out_row_stride, 11);
    std::vector<float> out(c.T * a.out_row_stride), lse(c.T * c.n_heads);
    a.out = out.data();
    const auto loss = [&] {
      AttentionArgs f = a;
      f.q = q.data(), f.k = k.data(), f.v = v.data(), f.lse = nullptr;
      fwd_.attention(f, pool_);
      return weighted_sum(dout, out);
    };
    AttentionBackwardArgs b;
    b.fwd = a;
    b.fwd.q = q.data(), b.fwd.k = k.data(), b.fwd.v = v.data(), b.fwd.lse = lse.data();
    fwd_.attention(b.fwd, pool_);  // out and lse at the unperturbed point
    std::vector<float> dq(q.size()), dk(k.size(), 0.0f), dv(v.size(), 0.0f);
    b.dout = dout.data(), b.dout_row_stride = a.out_row_stride, b.dout_head_stride = c.dv;
    b.dq = dq.data(), b.dq_row_stride = a.q_row_stride, b.dq_head_stride = c.dk;
    b.dk = dk.data(), b.dk_row_stride = a.k_row_stride, b.dk_head_stride = c.dk;
    b.dv = dv.data(), b.dv_row_stride = a.v_row_stride, b.dv_head_stride = c.dv;
    k_->attention_backward(b, pool_);
    const std::string where = " T " + std::to_string(c.T) + " S " + std::to_string(c.S);
    EXPECT_TRUE(check_gradient(loss, q, dq, {}, "dq")) << where;
    EXPECT_TRUE(check_gradient(loss, k, dk, {}, "dk")) << where;
    EXPECT_TRUE(check_gradient(loss, v, dv, {}, "dv")) << where;
  }
}

TEST_P(GradCheck, EmbeddingWithRepeatedIds) {
  const int64_t V = 6, d = 5;
  const std::vector<int32_t> ids = {2, 0, 2, 5, 2, 0};
  const int64_t T = int64_t(ids.size());
  auto table = randn(V * d, 12);
  const auto w = randn(T * d, 13);
  const auto loss = [&] {
    std::vector<float> y(T * d);
    fwd_.embedding(y.data(), ids.data(), T, WeightRef{DType::F32, table.data(), V, d});
    return weighted_sum(w, y);
  };
  std::vector<float> dtable(V * d, 0.0f);
  k_->embedding_backward(dtable.data(), ids.data(), w.data(), T, d);
  EXPECT_TRUE(check_gradient(loss, table, dtable, {}, "dtable"));
}

TEST_P(GradCheck, CatchesAWrongGradient) {
  // The mode's teeth: rmsnorm's gradient off by 1% in one element, or missing the term through
  // the norm (dx = r g dy alone), fails.
  const int64_t T = 2, n = 19;
  auto x = randn(T * n, 14), g = randn(n, 15);
  const auto w = randn(T * n, 16);
  const auto loss = [&] {
    std::vector<float> y(T * n);
    fwd_.rmsnorm(y.data(), n, x.data(), n, g.data(), T, n, 1e-5f);
    return weighted_sum(w, y);
  };
  std::vector<float> dx(T * n, 0.0f), dg(n, 0.0f);
  k_->rmsnorm_backward(dx.data(), n, dg.data(), w.data(), n, x.data(), n, g.data(), T, n, 1e-5f);
  ASSERT_TRUE(check_gradient(loss, x, dx));
  auto off = dx;
  off[7] *= 1.01f;
  EXPECT_FALSE(check_gradient(loss, x, off));
  std::vector<float> partial(T * n);
  for (int64_t t = 0; t < T; ++t) {
    double ss = 0;
    for (int64_t i = 0; i < n; ++i) ss += double(x[t * n + i]) * x[t * n + i];
    const double r = 1 / std::sqrt(ss / n + 1e-5);
    for (int64_t i = 0; i < n; ++i) partial[t * n + i] = float(r * g[i] * w[t * n + i]);
  }
  EXPECT_FALSE(check_gradient(loss, x, partial));
}

INSTANTIATE_TEST_SUITE_P(Tables, GradCheck, ::testing::Values("ref", "cpu"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace dsv3

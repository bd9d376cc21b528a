// The backward kernels of every table this CPU runs against float64 torch autograd
// (tests/ref/golden/backward_cases.json, written by tests/ref/backward_ref.py from plain torch
// ops; ctest's backward_golden_current keeps it in step with its generator).
//
// Tolerance: |got - want| <= 1e-5 (|want| + max |want| of that tensor). FP32 rounds by u = 6e-8;
// these sums have at most a few hundred terms, and the first-order bounds of
// test_cpu_backward.cc put the kernels within ~1e-6 of each tensor's scale, so 1e-5 leaves a
// margin of 10 while a wrong formula (a dropped term, the mask off by one, the wrong key head, a
// missing scale) is off by a sizeable fraction of the scale.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "base/file.h"
#include "base/json.h"
#include "base/thread_pool.h"
#include "kernels/kernels.h"
#include "test_util.h"
#include "unit/kernels/kernel_test_util.h"

namespace dsv3 {
namespace {

const Json& golden() {
  static const Json j = Json::parse(
      read_file(std::string(DSV3_SOURCE_DIR) + "/tests/ref/golden/backward_cases.json"));
  return j;
}

const Json::Array& cases(const char* op) {
  return golden().at("cases").at(op).as_array();
}

std::vector<float> floats(const Json& j) {
  std::vector<float> v;
  for (const Json& e : j.as_array()) v.push_back(static_cast<float>(e.as_double()));
  return v;
}

std::vector<double> doubles(const Json& j) {
  std::vector<double> v;
  for (const Json& e : j.as_array()) v.push_back(e.as_double());
  return v;
}

// got (any float type) within 1e-5 (|want| + max |want|) of want, elementwise.
template <typename T>
::testing::AssertionResult matches(const std::vector<T>& got, const std::vector<double>& want) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << got.size() << " values, want " << want.size();
  double scale = 0;
  for (double w : want) scale = std::max(scale, std::fabs(w));
  return test::all_close(got.data(), want.data(), got.size(), {1e-5 * scale, 1e-5},
                         "FP32 against float64 torch");
}

class BackwardGolden : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    k_ = test::table(GetParam());
    if (k_ == nullptr) GTEST_SKIP() << "no AVX-512 F/BW/VL on this CPU";
  }
  const Kernels* k_ = nullptr;
};

TEST_P(BackwardGolden, Rmsnorm) {
  for (const Json& c : cases("rmsnorm")) {
    const int64_t T = c.at("T").as_int(), n = c.at("n").as_int();
    const auto x = floats(c.at("x")), g = floats(c.at("g")), dy = floats(c.at("dy"));
    std::vector<float> dx(T * n, 0.0f), dg(n, 0.0f);
    k_->rmsnorm_backward(dx.data(), n, dg.data(), dy.data(), n, x.data(), n, g.data(), T, n,
                         static_cast<float>(c.at("eps").as_double()));
    EXPECT_TRUE(matches(dx, doubles(c.at("dx")))) << "dx, n " << n;
    EXPECT_TRUE(matches(dg, doubles(c.at("dg")))) << "dg, n " << n;
  }
}

TEST_P(BackwardGolden, Swiglu) {
  for (const Json& c : cases("swiglu")) {
    const int64_t n = c.at("n").as_int();
    const auto gate = floats(c.at("gate")), up = floats(c.at("up")), dact = floats(c.at("dact"));
    std::vector<float> dgate(n), dup(n);
    k_->swiglu_backward(dgate.data(), dup.data(), gate.data(), up.data(), dact.data(), n);
    EXPECT_TRUE(matches(dgate, doubles(c.at("dgate")))) << "dgate";
    EXPECT_TRUE(matches(dup, doubles(c.at("dup")))) << "dup";
  }
}

TEST_P(BackwardGolden, CrossEntropyWithIgnoredTargets) {
  ThreadPool pool(2);
  for (const Json& c : cases("cross_entropy")) {
    const int64_t T = c.at("T").as_int(), V = c.at("V").as_int();
    auto x = floats(c.at("x"));
    std::vector<int32_t> target;
    for (const Json& e : c.at("target").as_array()) target.push_back(int32_t(e.as_int()));
    std::vector<float> loss(T, -1.0f);
    k_->cross_entropy(x.data(), target.data(), T, V, static_cast<float>(c.at("scale").as_double()),
                      loss.data(), pool);
    EXPECT_TRUE(matches(loss, doubles(c.at("loss")))) << "loss, V " << V;
    EXPECT_TRUE(matches(x, doubles(c.at("dx")))) << "gradient, V " << V;
  }
}

TEST_P(BackwardGolden, AttentionWithPrefixAndGqa) {
  ThreadPool pool(2);
  for (const Json& c : cases("attention")) {
    AttentionBackwardArgs b;
    AttentionArgs& a = b.fwd;
    a.T = c.at("T").as_int(), a.S = c.at("S").as_int(), a.n_heads = c.at("n_heads").as_int();
    a.n_kv_heads = c.at("n_kv_heads").as_int(), a.dk = c.at("dk").as_int();
    a.dv = c.at("dv").as_int(), a.scale = static_cast<float>(c.at("scale").as_double());
    const auto q = floats(c.at("q")), k = floats(c.at("k")), v = floats(c.at("v"));
    const auto dout = floats(c.at("dout"));
    a.q = q.data(), a.q_row_stride = a.n_heads * a.dk, a.q_head_stride = a.dk;
    a.k = k.data(), a.k_row_stride = a.n_kv_heads * a.dk, a.k_head_stride = a.dk;
    a.v = v.data(), a.v_row_stride = a.n_kv_heads * a.dv, a.v_head_stride = a.dv;
    std::vector<float> out(a.T * a.n_heads * a.dv), lse(a.T * a.n_heads);
    a.out = out.data(), a.out_row_stride = a.n_heads * a.dv, a.out_head_stride = a.dv;
    a.lse = lse.data();
    k_->attention(a, pool);  // the saved out and lse, as training keeps them
    const std::string where = "T " + std::to_string(a.T) + " S " + std::to_string(a.S);
    EXPECT_TRUE(matches(out, doubles(c.at("out")))) << "forward out, " << where;
    EXPECT_TRUE(matches(lse, doubles(c.at("lse")))) << "forward lse, " << where;
    std::vector<float> dq(q.size(), NAN), dk(k.size(), 0.0f), dv(v.size(), 0.0f);
    b.dout = dout.data(), b.dout_row_stride = a.out_row_stride, b.dout_head_stride = a.dv;
    b.dq = dq.data(), b.dq_row_stride = a.q_row_stride, b.dq_head_stride = a.dk;
    b.dk = dk.data(), b.dk_row_stride = a.k_row_stride, b.dk_head_stride = a.dk;
    b.dv = dv.data(), b.dv_row_stride = a.v_row_stride, b.dv_head_stride = a.dv;
    k_->attention_backward(b, pool);
    EXPECT_TRUE(matches(dq, doubles(c.at("dq")))) << "dq, " << where;
    EXPECT_TRUE(matches(dk, doubles(c.at("dk_grad")))) << "dk, " << where;
    EXPECT_TRUE(matches(dv, doubles(c.at("dv_grad")))) << "dv, " << where;
  }
}

TEST_P(BackwardGolden, EmbeddingWithRepeatedIds) {
  for (const Json& c : cases("embedding")) {
    const int64_t V = c.at("V").as_int(), d = c.at("d").as_int();
    std::vector<int32_t> ids;
    for (const Json& e : c.at("ids").as_array()) ids.push_back(int32_t(e.as_int()));
    const auto dy = floats(c.at("dy"));
    // dtable is accumulated into: start from random values, expect them plus torch's gradient.
    const auto start = test::randn(V * d, 9);
    std::vector<float> dtable = start;
    k_->embedding_backward(dtable.data(), ids.data(), dy.data(), int64_t(ids.size()), d);
    std::vector<double> want = doubles(c.at("dtable"));
    for (size_t i = 0; i < want.size(); ++i) want[i] += start[i];
    EXPECT_TRUE(matches(dtable, want));
  }
}

INSTANTIATE_TEST_SUITE_P(Tables, BackwardGolden, ::testing::Values("ref", "cpu"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace dsv3

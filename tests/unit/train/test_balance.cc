// SPEC §2: the bias rule and MaxVio by hand; the f·P balance loss (per sequence and over the batch,
// sigmoid and softmax scores) and its gradient against float64 torch autograd
// (tests/ref/optimizer_ref.py), and the gradient against finite differences of the loss itself.
#include "train/balance.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "base/error.h"
#include "test_util.h"
#include "unit/train/train_test_util.h"

namespace dsv3 {
namespace {

TEST(Balance, BiasUpdateByHand) {
  // mean 6.25: experts 0 and 3 overloaded (-γ), 1 and 2 underloaded (+γ); FP32 adds.
  const int64_t load[4] = {10, 2, 6, 7};
  float bias[4] = {0.5f, -0.25f, 0.125f, 0.0f};
  update_balance_bias(bias, load, 4, 0.001);
  EXPECT_EQ(bias[0], 0.5f - 0.001f);
  EXPECT_EQ(bias[1], -0.25f + 0.001f);
  EXPECT_EQ(bias[2], 0.125f + 0.001f);
  EXPECT_EQ(bias[3], 0.0f - 0.001f);
  // A load exactly at the mean leaves its bias alone.
  const int64_t even[3] = {4, 4, 4};
  float b2[3] = {1, 2, 3};
  update_balance_bias(b2, even, 3, 0.5);
  EXPECT_EQ(b2[0], 1.0f);
  EXPECT_EQ(b2[1], 2.0f);
  EXPECT_EQ(b2[2], 3.0f);
  const int64_t mixed[3] = {3, 6, 9};  // mean 6: only the ends move
  update_balance_bias(b2, mixed, 3, 0.5);
  EXPECT_EQ(b2[0], 1.5f);
  EXPECT_EQ(b2[1], 2.0f);
  EXPECT_EQ(b2[2], 2.5f);
}

TEST(Balance, MaxViolationByHand) {
  const int64_t load[4] = {10, 2, 6, 6};  // mean 6, max 10
  EXPECT_DOUBLE_EQ(max_violation(load, 4), 10.0 / 6.0 - 1);
  const int64_t even[2] = {5, 5};
  EXPECT_EQ(max_violation(even, 2), 0.0);
  const int64_t none[3] = {0, 0, 0};
  EXPECT_EQ(max_violation(none, 3), 0.0);
  const int64_t one[4] = {0, 0, 8, 0};  // everything on one of four: 4x the mean
  EXPECT_DOUBLE_EQ(max_violation(one, 4), 3.0);
}

struct Case {
  int64_t E, K;
  double alpha;
  MoeActs acts;
  Batch batch;
};

Case load_case(const Json& c) {
  Case k{c.at("E").as_int(), c.at("K").as_int(), c.at("alpha").as_double(), {}, {}};
  k.acts.scores = test::floats(c.at("scores"));
  for (const Json& e : c.at("experts").as_array())
    k.acts.experts.push_back(static_cast<int32_t>(e.as_int()));
  for (const Json& n : c.at("seq_lens").as_array()) {
    std::vector<int32_t> ids(static_cast<size_t>(n.as_int()), 7);
    k.batch.add(nullptr, ids, LogitsRows::None);
  }
  return k;
}

TEST(Balance, LossMatchesTorchAutograd) {
  for (const Json& c : test::train_golden().at("balance").as_array()) {
    Case k = load_case(c);
    for (BalanceScope scope : {BalanceScope::Sequence, BalanceScope::Batch}) {
      const char* name = scope == BalanceScope::Sequence ? "sequence" : "batch";
      SCOPED_TRACE(c.at("name").as_string() + " " + name);
      std::vector<float> ds;
      const double loss = balance_loss(k.acts, k.batch, k.E, k.K, k.alpha, scope, ds);
      const Json& want = c.at(name);
      // Both float64 from the same FP32 scores, in another order.
      EXPECT_NEAR(loss, want.at("loss").as_double(), 1e-14 * loss);
      const std::vector<double> g = test::doubles(want.at("dscores"));
      ASSERT_EQ(ds.size(), g.size());
      // dscores is FP32: one rounding of a double.
      EXPECT_TRUE(test::all_close(ds.data(), g.data(), g.size(), {1e-14, 1e-7},
                                  "FP32 gradient vs float64 autograd"));
    }
    // The named wrapper is the sequence-wise loss, and the gradient adds to what is there.
    std::vector<float> ds(k.acts.scores.size(), 1.0f), fresh;
    sequence_balance_loss(k.acts, k.batch, k.E, k.K, k.alpha, ds);
    balance_loss(k.acts, k.batch, k.E, k.K, k.alpha, BalanceScope::Sequence, fresh);
    for (size_t i = 0; i < ds.size(); ++i) ASSERT_EQ(ds[i], 1.0f + fresh[i]);
  }
}

// Central differences of the loss in each score: the selection (f) is held, the loss is smooth in
// s, so the difference quotient has an O(h²) error. Large α so the values are well above rounding.
TEST(Balance, GradientMatchesFiniteDifferences) {
  Case k = load_case(test::train_golden().at("balance").as_array()[0]);
  const double alpha = 1.0;
  for (BalanceScope scope : {BalanceScope::Sequence, BalanceScope::Batch}) {
    std::vector<float> ds, scratch;
    balance_loss(k.acts, k.batch, k.E, k.K, alpha, scope, ds);
    double worst = 0;
    for (size_t i = 0; i < k.acts.scores.size(); ++i) {
      const float s0 = k.acts.scores[i];
      const float h = 1e-3f;
      k.acts.scores[i] = s0 + h;
      const double up = balance_loss(k.acts, k.batch, k.E, k.K, alpha, scope, scratch);
      const double s_up = k.acts.scores[i];
      k.acts.scores[i] = s0 - h;
      const double down = balance_loss(k.acts, k.batch, k.E, k.K, alpha, scope, scratch);
      const double fd = (up - down) / (s_up - k.acts.scores[i]);
      k.acts.scores[i] = s0;
      worst = std::max(worst, std::fabs(fd - ds[i]));
    }
    // |dL/ds| is O(1) here; second derivatives O(1/r²) with row sums r ~ 4: h² error ~ 1e-6.
    EXPECT_LT(worst, 1e-5) << (scope == BalanceScope::Sequence ? "sequence" : "batch");
  }
}

// Sequence scope: a sequence's loss depends on its own rows only, so a lone sequence's value is
// the same alone and in a batch (where it counts as 1 / n of the mean).
TEST(Balance, SequencesAreIndependent) {
  Case k = load_case(test::train_golden().at("balance").as_array()[0]);
  const BatchSeq& last = k.batch.seqs().back();
  MoeActs one;
  one.scores.assign(k.acts.scores.begin() + last.begin * k.E,
                    k.acts.scores.begin() + (last.begin + last.count) * k.E);
  one.experts.assign(k.acts.experts.begin() + last.begin * k.K,
                     k.acts.experts.begin() + (last.begin + last.count) * k.K);
  const BatchSeq alone{nullptr, 0, last.count, 0};
  std::vector<float> d1, dn;
  balance_loss(one, std::span(&alone, 1), last.count, k.E, k.K, 1.0, BalanceScope::Sequence, d1);
  balance_loss(k.acts, k.batch, k.E, k.K, 1.0, BalanceScope::Sequence, dn);
  const double n = static_cast<double>(k.batch.n_seqs());
  for (int64_t i = 0; i < last.count * k.E; ++i)
    ASSERT_NEAR(dn[last.begin * k.E + i] * n, d1[i], 1e-6 * std::fabs(d1[i]) + 1e-9);
  // Perfect balance: uniform scores and every expert chosen equally often give L = α.
  MoeActs flat;
  flat.scores.assign(4 * 4, 0.5f);
  flat.experts = {0, 1, 2, 3, 0, 1, 2, 3};
  const BatchSeq all{nullptr, 0, 4, 0};
  std::vector<float> d;
  EXPECT_DOUBLE_EQ(balance_loss(flat, std::span(&all, 1), 4, 4, 2, 0.3, BalanceScope::Sequence, d),
                   0.3);
}

TEST(Balance, NamedErrors) {
  Case k = load_case(test::train_golden().at("balance").as_array()[0]);
  std::vector<float> ds;
  auto expect = [&](const std::function<void()>& fn, const std::string& needle) {
    try {
      fn();
      ADD_FAILURE() << "no error; expected " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect([&] { balance_loss(k.acts, k.batch, k.E + 1, k.K, 1, BalanceScope::Batch, ds); },
         "expected");
  expect([&] { balance_loss(k.acts, k.batch, k.E, k.E + 1, 1, BalanceScope::Batch, ds); }, "K =");
  k.acts.experts[3] = static_cast<int32_t>(k.E);
  expect([&] { balance_loss(k.acts, k.batch, k.E, k.K, 1, BalanceScope::Batch, ds); },
         "selected expert 8");
  std::vector<float> wrong(3);
  k.acts.experts[3] = 0;
  expect([&] { balance_loss(k.acts, k.batch, k.E, k.K, 1, BalanceScope::Batch, wrong); },
         "dscores");
  expect([&] { max_violation(nullptr, 0); }, "0 experts");
}

}  // namespace
}  // namespace dsv3

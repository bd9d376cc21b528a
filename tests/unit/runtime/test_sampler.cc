// Sampler: the filtered distributions against the float64 torch reference of
// tests/ref/sampler_ref.py (golden file), the draws against those distributions, determinism by
// seed, and the rejection of bad parameters and logits.
#include "runtime/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "test_util.h"

namespace dsv3 {
namespace {

SamplingParams params_from(const Json& j) {
  SamplingParams p;
  p.temperature = j.at("temperature").as_double();
  p.top_k = j.at("top_k").as_int();
  p.top_p = j.at("top_p").as_double();
  p.min_p = j.at("min_p").as_double();
  p.repetition_penalty = j.at("repetition_penalty").as_double();
  p.frequency_penalty = j.at("frequency_penalty").as_double();
  p.presence_penalty = j.at("presence_penalty").as_double();
  return p;
}

std::vector<int32_t> ids_from(const Json& j) {
  std::vector<int32_t> v;
  for (const Json& e : j.as_array()) v.push_back(static_cast<int32_t>(e.as_int()));
  return v;
}

std::vector<float> floats_from(const Json& j) {
  std::vector<float> v;
  for (const Json& e : j.as_array()) v.push_back(static_cast<float>(e.as_double()));
  return v;
}

std::vector<double> doubles_from(const Json& j) {
  std::vector<double> v;
  for (const Json& e : j.as_array()) v.push_back(e.as_double());
  return v;
}

Sampler sampler_for(const Json& c, uint64_t seed = 0) {
  SamplingParams p = params_from(c.at("params"));
  p.seed = seed;
  Sampler s(p);
  s.add_context(ids_from(c.at("context")));
  for (int32_t id : ids_from(c.at("generated"))) s.accept(id);
  return s;
}

const Json& golden() {
  static Json j =
      Json::parse(read_file(std::string(DSV3_SOURCE_DIR) + "/tests/ref/golden/sampler_cases.json"));
  return j;
}

TEST(Sampler, DistributionsMatchTorchReference) {
  for (const Json& c : golden().at("cases").as_array()) {
    SCOPED_TRACE(c.at("name").as_string());
    Sampler s = sampler_for(c);
    std::vector<float> logits = floats_from(c.at("logits"));
    std::vector<double> got = s.distribution(logits);
    std::vector<double> want = doubles_from(c.at("expected"));
    ASSERT_EQ(got.size(), want.size());
    // Both are float64 softmaxes of the same float32 logits, differing in summation order and
    // the max shift only: a few ulps of the largest probability. A wrongly kept or dropped token
    // moves probabilities by far more (its own mass, >= 1e-4 in these cases).
    EXPECT_TRUE(test::all_close(got.data(), want.data(), got.size(), {1e-14, 1e-12},
                                "float64 softmax, rounding only"));
    // The zeros must be exact: a filtered token is never drawn.
    for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i] == 0.0, want[i] == 0.0) << i;
  }
}

TEST(Sampler, WideTopPReallyNeedsMoreThanTheSortedHead) {
  // Guards the golden case's purpose: the kept set is larger than the 1024-token head.
  for (const Json& c : golden().at("cases").as_array()) {
    if (c.at("name").as_string() != "top_p_wide") continue;
    int kept = 0;
    for (double p : doubles_from(c.at("expected"))) kept += p > 0;
    EXPECT_GT(kept, 1024);
    return;
  }
  FAIL() << "golden case top_p_wide missing";
}

TEST(Sampler, DrawsFollowTheDistribution) {
  for (const Json& c : golden().at("cases").as_array()) {
    const std::string& name = c.at("name").as_string();
    if (name != "all" && name != "top_k_ties" && name != "temperature_1.7") continue;
    SCOPED_TRACE(name);
    Sampler s = sampler_for(c, 7);
    std::vector<float> logits = floats_from(c.at("logits"));
    std::vector<double> want = doubles_from(c.at("expected"));
    const int n = 200000;
    std::vector<int> count(want.size(), 0);
    for (int i = 0; i < n; ++i) ++count[s.sample(logits)];
    for (size_t i = 0; i < want.size(); ++i) {
      // Binomial: 6 standard deviations (a false alarm about once in 10^9 per token), plus one
      // draw for the tiny probabilities. Never drawn when filtered out.
      double sd = std::sqrt(want[i] * (1 - want[i]) / n);
      if (want[i] == 0) {
        EXPECT_EQ(count[i], 0) << "token " << i << " was filtered out but drawn";
      } else {
        EXPECT_NEAR(count[i] / double(n), want[i], 6 * sd + 1.0 / n) << "token " << i;
      }
    }
  }
}

// Top-p against a plain full sort, on wide flat rows where the kept set ends at different depths
// of the sampler's staged sort (within the first 1024, the next 8192, and past them).
TEST(Sampler, TopPMatchesAFullSortOnWideRows) {
  Rng rng(3);
  std::vector<float> logits(20000);
  for (auto& z : logits) z = static_cast<float>(rng.normal(0, 0.5));
  for (double top_p : {0.05, 0.3, 0.9, 0.999}) {
    SCOPED_TRACE(top_p);
    SamplingParams p;
    p.top_p = top_p;
    std::vector<double> got = Sampler(p).distribution(logits);
    std::vector<size_t> order(logits.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
    });
    double zmax = logits[order[0]], total = 0;
    for (float z : logits) total += std::exp(z - zmax);
    double mass = 0;
    size_t keep = 0;
    while (keep < order.size() && (keep == 0 || mass < top_p * total))
      mass += std::exp(logits[order[keep++]] - zmax);
    std::vector<double> want(logits.size(), 0.0);
    for (size_t k = 0; k < keep; ++k) want[order[k]] = std::exp(logits[order[k]] - zmax) / mass;
    // Same formula, same order: rounding in the sums only.
    EXPECT_TRUE(test::all_close(got.data(), want.data(), got.size(), {1e-15, 1e-12},
                                "float64 sums in the same order"));
    size_t kept = 0;
    for (double g : got) kept += g > 0;
    EXPECT_EQ(kept, keep);
  }
}

std::vector<int32_t> draw(Sampler& s, const std::vector<float>& logits, int n) {
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(s.sample(logits));
    s.accept(out.back());
  }
  return out;
}

TEST(Sampler, SameSeedSameTokensAndResetRestarts) {
  std::vector<float> logits(64);
  for (int i = 0; i < 64; ++i) logits[i] = std::sin(i * 0.7f);
  SamplingParams p;
  p.temperature = 1.0;
  p.frequency_penalty = 0.1;  // the history matters, so reset must clear it too
  p.seed = 42;
  Sampler a(p), b(p);
  auto ta = draw(a, logits, 200), tb = draw(b, logits, 200);
  EXPECT_EQ(ta, tb);
  a.reset();
  EXPECT_EQ(draw(a, logits, 200), ta);
  p.seed = 43;
  Sampler c(p);
  EXPECT_NE(draw(c, logits, 200), ta);
}

TEST(Sampler, GreedyTakesTheFirstMaximumAndIgnoresTheSeed) {
  std::vector<float> logits = {0.5f, 2.0f, -1.0f, 2.0f, 1.0f};
  SamplingParams p;
  p.temperature = 0;
  for (uint64_t seed : {0, 1, 99}) {
    p.seed = seed;
    Sampler s(p);
    EXPECT_EQ(s.sample(logits), 1);
  }
}

TEST(Sampler, MaskedTokensAreNeverDrawn) {
  std::vector<float> logits = {-INFINITY, 0.0f, -INFINITY, 0.0f};
  Sampler s(SamplingParams{});
  for (int i = 0; i < 1000; ++i) {
    int32_t t = s.sample(logits);
    EXPECT_TRUE(t == 1 || t == 3);
  }
  std::vector<float> all_masked(3, -INFINITY);
  EXPECT_THROW(s.sample(all_masked), Error);
}

TEST(Sampler, RejectsNonFiniteLogits) {
  Sampler s(SamplingParams{});
  std::vector<float> nan_row = {0.0f, NAN, 1.0f};
  std::vector<float> inf_row = {0.0f, INFINITY};
  EXPECT_THROW(s.sample(nan_row), Error);
  EXPECT_THROW(s.sample(inf_row), Error);
  EXPECT_THROW(s.sample(std::vector<float>{}), Error);
}

TEST(Sampler, RejectsBadParameters) {
  auto bad = [](auto set) {
    SamplingParams p;
    set(p);
    EXPECT_THROW(Sampler{p}, Error);
  };
  bad([](SamplingParams& p) { p.temperature = NAN; });
  bad([](SamplingParams& p) { p.temperature = -0.5; });
  bad([](SamplingParams& p) { p.top_k = -1; });
  bad([](SamplingParams& p) { p.top_p = 1.5; });
  bad([](SamplingParams& p) { p.top_p = -0.1; });
  bad([](SamplingParams& p) { p.min_p = 2; });
  bad([](SamplingParams& p) { p.repetition_penalty = 0; });
  bad([](SamplingParams& p) { p.frequency_penalty = INFINITY; });
}

TEST(Sampler, PenaltiesIgnoreIdsPastTheVocabulary) {
  // The tokenizer's vocabulary can be larger than the model's logits row.
  SamplingParams p;
  p.temperature = 0;
  p.repetition_penalty = 2;
  Sampler s(p);
  s.add_context(std::vector<int32_t>{5000, -1});
  EXPECT_EQ(s.sample(std::vector<float>{0.0f, 1.0f}), 1);
}

}  // namespace
}  // namespace dsv3

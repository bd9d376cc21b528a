// AdamW against float64 torch (tests/ref/optimizer_ref.py: torch.optim.AdamW for FP32 moments, a
// loop that rounds m and v to bfloat16 for BF16 moments), with clipping and weight decay on
// matrices only; on a real store: aliases updated once, the correction bias never, the norm over
// each tensor once, the same bits whatever the thread count; the state file's round trip and the
// errors for a state that does not fit.
#include "train/optimizer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/thread_pool.h"
#include "test_util.h"
#include "unit/tensor/temp_dir.h"
#include "unit/train/train_test_util.h"

namespace dsv3 {
namespace {

ArenaLayout layout_of(const Json& rows) {
  ArenaLayout l;
  for (const Json& r : rows.as_array()) {
    const Json::Array& a = r.as_array();
    l.tensors.push_back(
        {a[0].as_string(), a[1].as_int(), a[2].as_int(), a[3].as_bool(), a[4].as_bool()});
    l.numel = std::max(l.numel, l.tensors.back().offset + l.tensors.back().numel);
  }
  return l;
}

TEST(AdamW, MatchesTorchReference) {
  for (const Json& c : test::train_golden().at("adamw").as_array()) {
    SCOPED_TRACE(c.at("name").as_string());
    AdamWConfig cfg;
    cfg.beta1 = c.at("beta1").as_double();
    cfg.beta2 = c.at("beta2").as_double();
    cfg.eps = c.at("eps").as_double();
    cfg.weight_decay = c.at("weight_decay").as_double();
    cfg.bf16_moments = c.at("bf16_moments").as_bool();
    const ArenaLayout l = layout_of(c.at("layout"));
    AdamW opt(l, cfg);
    std::vector<float> values = test::floats(c.at("params"));
    const std::vector<float> initial = values;
    int step = 0;
    for (const Json& s : c.at("steps").as_array()) {
      SCOPED_TRACE("step " + std::to_string(++step));
      std::vector<float> grads = test::floats(s.at("grads"));
      const double norm = clip_grads(l, grads, c.at("max_norm").as_double());
      // Σ g² of the same FP32 values in double, in another order: a few ulps.
      EXPECT_NEAR(norm, s.at("norm").as_double(), 1e-13 * norm);
      opt.step(values, grads, s.at("lr").as_double());
      const std::vector<double> want = test::doubles(s.at("expected"));
      // The parameters are FP32 here (rounded once per step), float64 in the reference: after six
      // steps a few FP32 ulps of each value. With |p| ~ 0.5 and steps up to lr = 5e-3 this
      // resolves step errors of ~1e-3 relative; a missed bias correction, decay on a vector, eps
      // inside the sqrt or a wrong clip factor are far larger. (m and v are checked below.)
      EXPECT_TRUE(test::all_close(values.data(), want.data(), values.size(), {1e-7, 1e-6},
                                  "FP32 parameters vs float64 torch"));
    }
    EXPECT_EQ(opt.steps(), step);
    // The untrained tensor ("bias", no gradient) never moves.
    for (const ArenaTensor& t : l.tensors) {
      if (t.trained) continue;
      for (int64_t i = t.offset; i < t.offset + t.numel; ++i) ASSERT_EQ(values[i], initial[i]);
    }
    const std::vector<float> m = opt.exp_avg(), v = opt.exp_avg_sq();
    const std::vector<double> want_m = test::doubles(c.at("exp_avg"));
    const std::vector<double> want_v = test::doubles(c.at("exp_avg_sq"));
    if (cfg.bf16_moments) {
      // The same double arithmetic in the same order from the same FP32 gradients, then the same
      // rounding: equal (a flip would need a double-ulp difference at a BF16 rounding boundary).
      EXPECT_TRUE(test::all_close(m.data(), want_m.data(), m.size(), {0, 0}, "BF16 m"));
      EXPECT_TRUE(test::all_close(v.data(), want_v.data(), v.size(), {0, 0}, "BF16 v"));
    } else {
      // m averages gradients of both signs: where they cancel, the FP32 roundings of the clipped
      // gradients and of m itself (~6e-8 of the terms) are large relative to m, so the bound is
      // relative to the largest moment as well as to each.
      auto max_abs = [](const std::vector<double>& x) {
        double mx = 0;
        for (double e : x) mx = std::max(mx, std::fabs(e));
        return mx;
      };
      EXPECT_TRUE(test::all_close(m.data(), want_m.data(), m.size(), {1e-7 * max_abs(want_m), 1e-6},
                                  "FP32 m"));
      EXPECT_TRUE(test::all_close(v.data(), want_v.data(), v.size(), {1e-7 * max_abs(want_v), 1e-6},
                                  "FP32 v"));
    }
  }
}

// Step 1 has a closed form: m̂ = g and v̂ = g², so p' = p·(1 - lr·wd [matrices]) - lr·g/(|g| + eps).
// An alias updated twice, the correction bias moved or decay on a vector all break it.
TEST(AdamW, FirstStepOnTinyStore) {
  for (bool bf16 : {false, true}) {
    SCOPED_TRACE(bf16 ? "bf16 moments" : "fp32 moments");
    test::TinyModel tm;
    ParamStore& ps = *tm.store;
    test::random_grads(ps, 3, 0.01f);
    const std::vector<float> before(ps.master().begin(), ps.master().end());
    AdamWConfig cfg;
    cfg.bf16_moments = bf16;
    AdamW opt(ps, cfg);
    const double lr = 1e-3;
    opt.step(ps, lr);
    int checked = 0;
    for (const Param& p : ps.all()) {
      if (p.alias) continue;
      const bool matrix = p.spec->shape.size() == 2;
      for (int64_t i = 0; i < p.numel; ++i) {
        const double w = before[p.offset + i];
        const double g = ps.grads()[p.offset + i];
        double want = w;
        if (p.spec->has_grad) {
          want = w * (matrix ? 1 - lr * cfg.weight_decay : 1) - lr * g / (std::fabs(g) + 1e-8);
        }
        const double got = p.f32[i];
        // BF16 rounds m and v by up to 2^-9 each, so the step lr·m̂/sqrt(v̂) by < 2^-8 of lr;
        // FP32 by a few 1e-8. The parameter itself is rounded to FP32 (1e-7 relative).
        const double tol =
            p.spec->has_grad ? (bf16 ? 1e-2 * lr : 1e-6 * lr) + 1e-7 * std::fabs(w) : 0;
        ASSERT_LE(std::fabs(got - want), tol) << p.name() << "[" << i << "]";
      }
      ++checked;
    }
    EXPECT_GT(checked, 50);
    // Each alias reads its main tensor's values (one arena).
    const Param& alias = ps.get("model.layers.4.embed_tokens.weight");
    EXPECT_TRUE(alias.alias);
    EXPECT_EQ(alias.f32, ps.get("model.embed_tokens.weight").f32);
  }
}

TEST(AdamW, GradNormCountsEachTensorOnce) {
  test::TinyModel tm;
  ParamStore& ps = *tm.store;
  test::random_grads(ps, 4);
  double ss = 0;
  for (const Param& p : ps.all())
    if (!p.alias && p.grad)
      for (int64_t i = 0; i < p.numel; ++i) ss += static_cast<double>(p.grad[i]) * p.grad[i];
  // The correction bias has no gradient: its (random) arena entries are not counted.
  const double norm = global_grad_norm(ps);
  EXPECT_NEAR(norm, std::sqrt(ss), 1e-12 * norm);
  EXPECT_EQ(norm, global_grad_norm(ArenaLayout::of(ps), ps.grads()));
}

TEST(AdamW, ClipScalesOnlyAboveTheLimit) {
  test::TinyModel tm;
  ParamStore& ps = *tm.store;
  test::random_grads(ps, 5, 1e-4f);
  const std::vector<float> small(ps.grads().begin(), ps.grads().end());
  const double n0 = clip_grads(ps, 1.0);
  ASSERT_LT(n0, 1.0);
  EXPECT_TRUE(std::equal(small.begin(), small.end(), ps.grads().begin()));
  for (float& g : ps.grads()) g *= 1e5f;
  const double n1 = clip_grads(ps, 1.0);
  ASSERT_GT(n1, 2.0);
  EXPECT_NEAR(global_grad_norm(ps), n1 / (n1 + 1e-6), 1e-6);
}

// clip_grads_to with the norm of the whole arena clips as clip_grads does (expert parallelism
// computes that norm from the ranks' parts); the whole-model layout is a full store's.
TEST(AdamW, ClipToAGivenNormAndTheWholeLayout) {
  test::TinyModel tm;
  ParamStore& ps = *tm.store;
  test::random_grads(ps, 6);
  for (float& g : ps.grads()) g *= 100.0f;
  std::vector<float> copy(ps.grads().begin(), ps.grads().end());
  const ArenaLayout l = ArenaLayout::of(ps);
  const double norm = clip_grads(ps, 1.0);
  clip_grads_to(l, copy, norm, 1.0);
  EXPECT_TRUE(std::equal(copy.begin(), copy.end(), ps.grads().begin()));
  EXPECT_NO_THROW(ArenaLayout::whole(ps.config()).check_same(l, "whole"));
  EXPECT_EQ(ArenaLayout::whole(ps.config()).numel, l.numel);
}

TEST(AdamW, SameBitsWhateverTheThreadCount) {
  std::vector<std::vector<float>> results;
  std::vector<double> norms;
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    test::TinyModel tm;
    ParamStore& ps = *tm.store;
    AdamW opt(ps, AdamWConfig{});
    for (int s = 0; s < 3; ++s) {
      test::random_grads(ps, 10 + s);
      norms.push_back(clip_grads(ps, 1.0, &pool));
      opt.step(ps, 1e-3, &pool);
    }
    results.emplace_back(ps.master().begin(), ps.master().end());
  }
  for (size_t i = 1; i < results.size(); ++i) {
    EXPECT_TRUE(results[i] == results[0]) << "threads " << i + 1;
    for (int s = 0; s < 3; ++s) EXPECT_EQ(norms[i * 3 + s], norms[s]);
  }
}

TEST(AdamW, StateRoundTrip) {
  test::TempDir tmp;
  for (bool bf16 : {false, true}) {
    test::TinyModel a, b;
    AdamWConfig cfg;
    cfg.bf16_moments = bf16;
    AdamW oa(*a.store, cfg), ob(*b.store, cfg);
    for (int s = 0; s < 2; ++s) {
      test::random_grads(*a.store, 20 + s);
      oa.step(*a.store, 1e-3);
    }
    const std::string path = tmp.file(bf16 ? "opt16.safetensors" : "opt32.safetensors");
    oa.save(path);
    ob.load(path);
    EXPECT_EQ(ob.steps(), 2);
    EXPECT_EQ(ob.exp_avg(), oa.exp_avg());
    EXPECT_EQ(ob.exp_avg_sq(), oa.exp_avg_sq());
    // Resumed: the next step gives the same bits as the uninterrupted run.
    std::copy(a.store->master().begin(), a.store->master().end(), b.store->master().begin());
    test::random_grads(*a.store, 30);
    test::random_grads(*b.store, 30);
    oa.step(*a.store, 1e-3);
    ob.step(*b.store, 1e-3);
    EXPECT_TRUE(
        std::equal(a.store->master().begin(), a.store->master().end(), b.store->master().begin()));
  }
  // Moments saved in one dtype load into the other (FP32 -> BF16 rounds).
  test::TinyModel m;
  AdamW o32(*m.store, AdamWConfig{.bf16_moments = false});
  test::random_grads(*m.store, 40);
  o32.step(*m.store, 1e-3);
  o32.save(tmp.file("f32.safetensors"));
  AdamW o16(*m.store, AdamWConfig{.bf16_moments = true});
  o16.load(tmp.file("f32.safetensors"));
  const std::vector<float> m32 = o32.exp_avg(), m16 = o16.exp_avg();
  for (size_t i = 0; i < m32.size(); ++i) ASSERT_NEAR(m16[i], m32[i], std::fabs(m32[i]) / 256);
}

void expect_error(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected one containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(AdamW, RefusesStateOfAnotherModel) {
  test::TempDir tmp;
  test::TinyModel small(512), big(1024);
  AdamW os(*small.store, AdamWConfig{}), ob(*big.store, AdamWConfig{});
  os.save(tmp.file("small.safetensors"));
  expect_error([&] { ob.load(tmp.file("small.safetensors")); }, "model.embed_tokens.weight");
  expect_error([&] { os.check(*big.store); }, "model.embed_tokens.weight");
  expect_error([&] { os.step(*big.store, 1e-3); }, "model.embed_tokens.weight");
  // Not an optimizer state at all: a model's weights.
  small.store->save(tmp.file("model"), DType::F32);
  expect_error([&] { os.load(tmp.file("model/model.safetensors")); }, "not an AdamW state file");
  expect_error([&] { os.load(tmp.file("absent.safetensors")); }, "absent.safetensors");
}

TEST(AdamW, ValidatesConfig) {
  expect_error([] { validate(AdamWConfig{.beta1 = 1.0}); }, "beta1");
  expect_error([] { validate(AdamWConfig{.beta2 = -0.1}); }, "beta2");
  expect_error([] { validate(AdamWConfig{.eps = 0}); }, "eps");
  expect_error([] { validate(AdamWConfig{.weight_decay = NAN}); }, "weight_decay");
  expect_error([] { validate(AdamWConfig{.lr = -1}); }, "lr");
  test::TinyModel tm;
  AdamW opt(*tm.store, AdamWConfig{});
  expect_error([&] { opt.step(*tm.store, INFINITY); }, "learning rate");
  expect_error([&] { clip_grads(*tm.store, 0.0); }, "max_norm");
}

}  // namespace
}  // namespace dsv3

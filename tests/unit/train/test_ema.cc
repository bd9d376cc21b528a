// The parameter EMA: its update by hand, the averaged model written as a Hugging Face folder (read
// back, and the store's own values left as they were), the state file's round trip and refusals.
#include "train/ema.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/thread_pool.h"
#include "model/weights.h"
#include "unit/tensor/temp_dir.h"
#include "unit/train/train_test_util.h"

namespace dsv3 {
namespace {

// Moves every master value by a deterministic amount, as an optimizer step would.
void perturb(ParamStore& ps, float by) {
  std::span<float> m = ps.master();
  for (size_t i = 0; i < m.size(); ++i) m[i] += by * static_cast<float>(i % 7);
}

TEST(Ema, UpdateByHand) {
  test::TinyModel tm;
  ParamStore& ps = *tm.store;
  ParamEma ema(ps, 0.9);
  const std::vector<float> x0(ps.master().begin(), ps.master().end());
  EXPECT_TRUE(std::equal(x0.begin(), x0.end(), ema.values().begin()));
  perturb(ps, 0.01f);
  const std::vector<float> x1(ps.master().begin(), ps.master().end());
  ThreadPool pool(2);
  ema.update(ps, &pool);
  perturb(ps, -0.03f);
  ema.update(ps);
  const std::span<const float> e = ema.values();
  const std::span<const float> x2 = ps.master();
  for (size_t i = 0; i < e.size(); ++i) {
    // Two updates in double: e = 0.9·(0.9·x0 + 0.1·x1) + 0.1·x2, each step rounded to FP32.
    const double want = 0.81 * x0[i] + 0.09 * x1[i] + 0.1 * x2[i];
    ASSERT_NEAR(e[i], want, 2e-7 * (std::fabs(want) + 0.05)) << i;
  }
  EXPECT_EQ(ema.updates(), 2);
}

TEST(Ema, SavesTheAveragedModel) {
  test::TempDir tmp;
  test::TinyModel tm;
  ParamStore& ps = *tm.store;
  ParamEma ema(ps, 0.5);
  perturb(ps, 0.02f);
  ema.update(ps);
  const std::vector<float> live(ps.master().begin(), ps.master().end());
  ema.save_model(ps, tmp.file("ema_model"), DType::F32);
  // The store's values are its own again.
  EXPECT_TRUE(std::equal(live.begin(), live.end(), ps.master().begin()));
  // The folder holds the averaged values, the MTP copies included.
  ModelWeights w = ModelWeights::load(tmp.file("ema_model"));
  for (const Param& p : ps.all()) {
    const WeightView& v = w.get(p.name());
    ASSERT_EQ(v.dtype, DType::F32);
    const float* saved = static_cast<const float*>(v.data);
    const float* want = ema.values().data() + p.offset;
    ASSERT_EQ(std::memcmp(saved, want, static_cast<size_t>(p.numel) * sizeof(float)), 0)
        << p.name();
  }
  // A failed write (the target is a file) restores the values too.
  write_file_atomic(tmp.file("blocker"), "x");
  EXPECT_THROW(ema.save_model(ps, tmp.file("blocker"), DType::F32), Error);
  EXPECT_TRUE(std::equal(live.begin(), live.end(), ps.master().begin()));
}

TEST(Ema, StateRoundTripAndRefusals) {
  test::TempDir tmp;
  test::TinyModel a, other(1024);
  ParamEma ema(*a.store, 0.99);
  perturb(*a.store, 0.1f);
  ema.update(*a.store);
  ema.save(tmp.file("ema.safetensors"));
  perturb(*a.store, 0.1f);
  ParamEma back(*a.store, 0.99);
  back.load(tmp.file("ema.safetensors"));
  EXPECT_EQ(back.updates(), 1);
  EXPECT_TRUE(std::equal(back.values().begin(), back.values().end(), ema.values().begin()));
  ParamEma wrong(*other.store, 0.99);
  try {
    wrong.load(tmp.file("ema.safetensors"));
    ADD_FAILURE() << "loaded another model's EMA";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.embed_tokens.weight"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(ema.update(*other.store), Error);
  EXPECT_THROW(ParamEma(*a.store, 1.0), Error);
}

}  // namespace
}  // namespace dsv3

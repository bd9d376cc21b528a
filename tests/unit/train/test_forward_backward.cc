// ForwardBackward: recomputation gives the same gradients bit for bit, accumulation over
// micro-batches equals one batch (to rounding), and the gradients are the loss's: a finite
// difference of the loss along the gradient matches its squared norm. (Each gradient against
// float64 PyTorch: tests/train/torch_check.py.)
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "base/rng.h"
#include "base/thread_pool.h"
#include "kernels/best_kernels.h"
#include "model/model.h"
#include "model/param_store.h"
#include "train/forward_backward.h"
#include "train_test_util.h"

namespace dsv3 {
namespace {

struct TrainSetup {
  explicit TrainSetup(uint64_t seed = 5)
      : weights(ModelWeights::random(test::tiny_config(512), seed, DType::F32)), pool(2) {
    model = make_model(weights, ComputeContext{best_kernels(), pool});
    model->params().enable_training();
  }
  ModelWeights weights;
  ThreadPool pool;
  std::unique_ptr<Model> model;
};

std::vector<int32_t> windows(int64_t B, int64_t T, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> w(B * (T + 1));
  for (int32_t& x : w) x = static_cast<int32_t>(rng.below(512));
  return w;
}

std::vector<float> grads_of(TrainSetup& s, const std::vector<int32_t>& w, int64_t B, int64_t T,
                            bool recompute, double* loss = nullptr) {
  ForwardBackward fb(*s.model, ComputeContext{best_kernels(), s.pool});
  fb.set_recompute(recompute);
  s.model->params().zero_grads();
  const LossParts p = fb.run(w.data(), B, T, LossWeights{}, 1.0);
  if (loss) *loss = p.total;
  auto g = s.model->params().grads();
  return std::vector<float>(g.begin(), g.end());
}

TEST(ForwardBackward, RecomputationGivesTheSameGradientsBitForBit) {
  TrainSetup s;
  const auto w = windows(3, 24, 1);
  double l0 = 0, l1 = 0;
  const std::vector<float> kept = grads_of(s, w, 3, 24, false, &l0);
  const std::vector<float> redone = grads_of(s, w, 3, 24, true, &l1);
  EXPECT_EQ(l0, l1);
  ASSERT_EQ(kept.size(), redone.size());
  for (size_t i = 0; i < kept.size(); ++i) ASSERT_EQ(kept[i], redone[i]) << "element " << i;
}

TEST(ForwardBackward, TwoHalfWeightedMicroBatchesEqualOneBatch) {
  TrainSetup s;
  const auto w = windows(4, 16, 2);
  const std::vector<float> whole = grads_of(s, w, 4, 16, false);
  ForwardBackward fb(*s.model, ComputeContext{best_kernels(), s.pool});
  s.model->params().zero_grads();
  const int64_t half = 2 * 17;
  fb.run(w.data(), 2, 16, LossWeights{}, 0.5);
  fb.run(w.data() + half, 2, 16, LossWeights{}, 0.5);
  auto g = s.model->params().grads();
  double num = 0, den = 0;
  for (size_t i = 0; i < whole.size(); ++i) {
    num += std::pow(static_cast<double>(g[i]) - whole[i], 2);
    den += std::pow(static_cast<double>(whole[i]), 2);
  }
  // Summation order differs (two halves vs one pass): FP32 rounding, about 1e-7 relative.
  EXPECT_LT(std::sqrt(num / den), 1e-5);
}

TEST(ForwardBackward, LossChangesAlongTheGradientAsItsNorm) {
  // L(θ - εg) ≈ L(θ) - ε |g|²: a directional finite difference of the whole loss (routing
  // included), in FP32, so ε is chosen large enough to rise above rounding and small enough that
  // no expert choice flips: a 2% bound.
  TrainSetup s;
  const auto w = windows(2, 16, 3);
  double l0 = 0;
  const std::vector<float> g = grads_of(s, w, 2, 16, false, &l0);
  double g2 = 0;
  for (float x : g) g2 += static_cast<double>(x) * x;
  ParamStore& ps = s.model->params();
  const double eps = 1e-3 / std::sqrt(g2);
  auto m = ps.master();
  std::vector<float> saved(m.begin(), m.end());
  auto loss_at = [&](double step) {
    for (size_t i = 0; i < m.size(); ++i) m[i] = static_cast<float>(saved[i] - step * g[i]);
    ForwardBackward fb(*s.model, ComputeContext{best_kernels(), s.pool});
    return fb.evaluate(w.data(), 2, 16, LossWeights{}).total;
  };
  const double slope = (loss_at(-eps) - loss_at(eps)) / (2 * eps);
  std::copy(saved.begin(), saved.end(), m.begin());
  EXPECT_NEAR(slope / g2, 1.0, 0.02) << "slope " << slope << " |g|^2 " << g2;
}

}  // namespace
}  // namespace dsv3

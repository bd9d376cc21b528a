// The learning-rate schedule of SPEC §5 at its boundaries, and its named errors.
#include "train/schedule.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <string>

#include "base/error.h"

namespace dsv3 {
namespace {

LrSchedule v3_like() {
  // Warmup 10 steps, peak until step 30, cosine over 20 steps to a tenth, as V3's shape.
  return {.peak_lr = 2.2e-4,
          .warmup_steps = 10,
          .decay_start = 30,
          .decay_steps = 20,
          .final_lr = 2.2e-5};
}

TEST(LrSchedule, Boundaries) {
  const LrSchedule s = v3_like();
  EXPECT_DOUBLE_EQ(lr_at(s, 1), 2.2e-5);  // peak / warmup: the first step already moves
  EXPECT_DOUBLE_EQ(lr_at(s, 5), 1.1e-4);
  EXPECT_DOUBLE_EQ(lr_at(s, 10), 2.2e-4);
  EXPECT_DOUBLE_EQ(lr_at(s, 11), 2.2e-4);
  EXPECT_DOUBLE_EQ(lr_at(s, 30), 2.2e-4);
  // Step 31 is the first of the decay: x = 1/20.
  EXPECT_DOUBLE_EQ(lr_at(s, 31), 2.2e-5 + 1.98e-4 * 0.5 * (1 + std::cos(std::numbers::pi / 20)));
  EXPECT_NEAR(lr_at(s, 40), (2.2e-4 + 2.2e-5) / 2, 1e-18);  // halfway
  EXPECT_DOUBLE_EQ(lr_at(s, 50), 2.2e-5);
  EXPECT_DOUBLE_EQ(lr_at(s, 51), 2.2e-5);
  EXPECT_DOUBLE_EQ(lr_at(s, 1'000'000), 2.2e-5);
  // Monotone: non-decreasing through the warmup, non-increasing after.
  for (int64_t t = 2; t <= 60; ++t) {
    if (t <= 10)
      EXPECT_GT(lr_at(s, t), lr_at(s, t - 1));
    else
      EXPECT_LE(lr_at(s, t), lr_at(s, t - 1));
  }
}

TEST(LrSchedule, DegenerateShapes) {
  // No warmup, no constant phase, no decay: each phase of length 0 is skipped.
  EXPECT_DOUBLE_EQ(lr_at({.peak_lr = 1e-3,
                          .warmup_steps = 0,
                          .decay_start = 0,
                          .decay_steps = 0,
                          .final_lr = 1e-4},
                         1),
                   1e-4);
  EXPECT_DOUBLE_EQ(lr_at({.peak_lr = 1e-3,
                          .warmup_steps = 0,
                          .decay_start = 5,
                          .decay_steps = 0,
                          .final_lr = 1e-4},
                         5),
                   1e-3);
  // Decay straight after the warmup.
  const LrSchedule s{
      .peak_lr = 1.0, .warmup_steps = 2, .decay_start = 2, .decay_steps = 2, .final_lr = 0.0};
  EXPECT_DOUBLE_EQ(lr_at(s, 2), 1.0);
  EXPECT_DOUBLE_EQ(lr_at(s, 3), 0.5);
  EXPECT_DOUBLE_EQ(lr_at(s, 4), 0.0);
}

void expect_error(LrSchedule s, int64_t step, const std::string& needle) {
  try {
    lr_at(s, step);
    ADD_FAILURE() << "no error; expected one naming " << needle;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(LrSchedule, NamedErrors) {
  LrSchedule s = v3_like();
  expect_error(s, 0, "step 0");
  s.peak_lr = 0;
  expect_error(s, 1, "peak_lr");
  s = v3_like();
  s.final_lr = 1.0;
  expect_error(s, 1, "final_lr");
  s = v3_like();
  s.warmup_steps = -1;
  expect_error(s, 1, "warmup_steps");
  s = v3_like();
  s.decay_start = 5;
  expect_error(s, 1, "decay_start");
  s = v3_like();
  s.decay_steps = -3;
  expect_error(s, 1, "decay_steps");
  s = v3_like();
  s.decay_steps = INT64_MAX;
  expect_error(s, 1, "decay_steps");
}

}  // namespace
}  // namespace dsv3

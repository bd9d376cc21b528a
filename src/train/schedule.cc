// The learning-rate schedule of SPEC §5.
#include "train/schedule.h"

#include <cmath>
#include <limits>
#include <numbers>
#include <string>

#include "base/error.h"

namespace dsv3 {

void validate(const LrSchedule& s) {
  auto field = [](const char* name, auto v) {
    return std::string("learning-rate schedule: ") + name + " = " + std::to_string(v);
  };
  DSV3_CHECK(std::isfinite(s.peak_lr) && s.peak_lr > 0,
             field("peak_lr", s.peak_lr) + " must be > 0");
  DSV3_CHECK(std::isfinite(s.final_lr) && s.final_lr >= 0,
             field("final_lr", s.final_lr) + " must be >= 0");
  DSV3_CHECK(s.final_lr <= s.peak_lr,
             field("final_lr", s.final_lr) + " is above peak_lr = " + std::to_string(s.peak_lr));
  DSV3_CHECK(s.warmup_steps >= 0, field("warmup_steps", s.warmup_steps) + " is negative");
  DSV3_CHECK(s.decay_start >= s.warmup_steps,
             field("decay_start", s.decay_start) +
                 " is inside the warmup (warmup_steps = " + std::to_string(s.warmup_steps) + ")");
  DSV3_CHECK(s.decay_steps >= 0, field("decay_steps", s.decay_steps) + " is negative");
  DSV3_CHECK(s.decay_steps <= std::numeric_limits<int64_t>::max() - s.decay_start,
             field("decay_steps", s.decay_steps) + " overflows the step count");
}

double lr_at(const LrSchedule& s, int64_t step) {
  validate(s);
  DSV3_CHECK(step >= 1, "learning-rate schedule: step " + std::to_string(step) +
                            " (steps count from 1, the step about to run)");
  if (step <= s.warmup_steps)
    return s.peak_lr * static_cast<double>(step) / static_cast<double>(s.warmup_steps);
  if (step <= s.decay_start) return s.peak_lr;
  if (step >= s.decay_start + s.decay_steps) return s.final_lr;  // also decay_steps = 0
  const double x = static_cast<double>(step - s.decay_start) / static_cast<double>(s.decay_steps);
  return s.final_lr + (s.peak_lr - s.final_lr) * 0.5 * (1 + std::cos(std::numbers::pi * x));
}

}  // namespace dsv3

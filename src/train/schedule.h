// The learning-rate shape of V3's pretraining (SPEC §5): linear warmup from 0 to the peak,
// constant, a cosine decay to the final rate, then constant at it. V3: 2.2e-4 peak after 2K steps,
// constant until 10T tokens, cosine to 2.2e-5 over 4.3T tokens; the trainer turns tokens into
// steps.
#pragma once
#include <cstdint>

namespace dsv3 {

struct LrSchedule {
  double peak_lr = 2.2e-4;
  int64_t warmup_steps = 2000;  // steps 1 .. warmup_steps rise linearly: step s gets peak·s/warmup
  int64_t decay_start = 2000;   // the last step at the peak (>= warmup_steps)
  int64_t decay_steps = 0;      // cosine over steps decay_start + 1 .. decay_start + decay_steps
  double final_lr = 2.2e-5;     // reached at step decay_start + decay_steps and kept after it
};

// Throws Error naming the field for a schedule that is not one (negative lengths, a decay that
// starts inside the warmup, final above peak, non-finite or negative rates).
void validate(const LrSchedule& s);

// The rate of 1-based step `step` (the step about to run); Error for step < 1.
//   step <= warmup_steps:                       peak · step / warmup_steps
//   step <= decay_start:                        peak
//   step <= decay_start + decay_steps:          final + (peak - final) · (1 + cos(π·x)) / 2,
//                                               x = (step - decay_start) / decay_steps
//   after:                                      final
double lr_at(const LrSchedule& s, int64_t step);

}  // namespace dsv3

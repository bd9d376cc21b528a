// The optimizer's per-step costs on the layout of a preset (default: small, ~35M parameters):
// AdamW with BF16 and FP32 moments, the global gradient norm and clipping, and the EMA update,
// best of several calls, with 1..THREADS threads. The arena is synthetic (the preset's table
// order and shapes, random values), so no model is built.
//   bench_train [PRESET] [THREADS] [SECONDS_PER_CASE]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "base/rng.h"
#include "base/thread_pool.h"
#include "base/timer.h"
#include "model/presets.h"
#include "train/optimizer.h"

namespace dsv3 {
namespace {

template <typename Fn>
double best_time(const Fn& fn, double budget) {
  fn();
  double best = 1e30, spent = 0;
  for (int calls = 0; calls < 3 || spent < budget; ++calls) {
    Timer t;
    fn();
    const double s = t.seconds();
    best = std::min(best, s);
    spent += s;
  }
  return best;
}

int run(int argc, char** argv) {
  const std::string preset = argc > 1 ? argv[1] : "small";
  const int max_threads = argc > 2 ? std::atoi(argv[2]) : ThreadPool::default_threads();
  const double budget = argc > 3 ? std::atof(argv[3]) : 1.0;
  const ArenaLayout l = ArenaLayout::whole(preset_config(preset));
  std::vector<float> values(l.numel), grads(l.numel);
  Rng rng(1);
  for (float& v : values) v = static_cast<float>(rng.normal(0, 0.006));
  for (float& g : grads) g = static_cast<float>(rng.normal(0, 1e-3));
  std::printf("%s: %lld parameters in %zu tensors\n", preset.c_str(),
              static_cast<long long>(l.numel), l.tensors.size());
  std::printf("%-22s %7s %9s %9s\n", "case", "threads", "ms", "GB/s");
  for (int threads = 1; threads <= max_threads; ++threads) {
    ThreadPool pool(threads);
    auto report = [&](const char* what, double s, double bytes_per_elem) {
      std::printf("%-22s %7d %9.2f %9.2f\n", what, threads, s * 1e3,
                  bytes_per_elem * static_cast<double>(l.numel) / s / 1e9);
    };
    for (bool bf16 : {true, false}) {
      AdamW opt(l, AdamWConfig{.bf16_moments = bf16});
      // Reads p, g, m, v and writes p, m, v.
      const double moment = bf16 ? 2 : 4;
      report(bf16 ? "AdamW step, BF16 m v" : "AdamW step, FP32 m v",
             best_time([&] { opt.step(values, grads, 1e-4, &pool); }, budget), 8 + 4 * moment);
    }
    report("global grad norm", best_time([&] { global_grad_norm(l, grads, &pool); }, budget), 4);
  }
  return 0;
}

}  // namespace
}  // namespace dsv3

int main(int argc, char** argv) {
  return dsv3::run(argc, argv);
}

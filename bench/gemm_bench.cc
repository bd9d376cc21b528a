// Throughput of a Linear's three training GEMMs on the shapes of the tiny and small presets:
// Fprop Y = X·Wᵀ, Dgrad dX = dY·W, Wgrad dW += dYᵀ·X with W [out, in] and T rows, GFLOP/s
// (2 T out in per call), best of repeated calls. Columns: the inference kernels training used
// before for Fprop and Dgrad (matmul, matmul_xw of the AVX-512 table; 0 for Wgrad, whose kernel
// gemm replaced), the FP32 training GEMM, and the BF16 one on AMX tiles and with AVX512-BF16 dot
// products (where this CPU has them; DSV3_AMX=0 turns AMX off). One thread is timed by its CPU
// time, more by the wall clock. NO_OLD, NO_F32, NO_DP in the environment skip a column, ONLY=fprop
// (dgrad, wgrad) the other GEMMs.
//   bench_gemm [THREADS] [SECONDS_PER_CASE] [T] [SHAPE_FILTER]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "base/rng.h"
#include "base/thread_pool.h"
#include "kernels/best_kernels.h"
#include "kernels/cpu/cpu.h"

namespace dsv3 {
namespace {

// With one thread: this thread's CPU time (the machine is shared: time on another process's
// turn does not count); with more: wall time.
bool g_cpu_time = false;

double now() {
  timespec ts;
  clock_gettime(g_cpu_time ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

template <typename Fn>
double best_time(const Fn& fn, double budget) {
  fn();
  double best = 1e30, spent = 0;
  for (int calls = 0; calls < 3 || spent < budget; ++calls) {
    const double t0 = now();
    fn();
    const double s = now() - t0;
    best = std::min(best, s);
    spent += s;
  }
  return best;
}

std::vector<float> randn(int64_t n, uint64_t seed) {
  Rng r(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(r.normal());
  return v;
}

struct Shape {
  const char* name;
  int64_t out, in, rows_div;  // rows = T / rows_div (a routed expert sees about T/4)
};

void run(int threads, double budget, int64_t T0, const std::string& filter) {
  const Kernels& k = cpu_kernels();
  ThreadPool pool(threads);
  g_cpu_time = threads == 1;
  const Shape shapes[] = {
      {"tiny q_a 96x256", 96, 256, 1},        {"tiny kv_b 256x64", 256, 64, 1},
      {"tiny o 256x128", 256, 128, 1},        {"tiny ffn 512x256", 512, 256, 1},
      {"tiny expert 128x256", 128, 256, 4},   {"tiny head 4096x256", 4096, 256, 1},
      {"small q_b 384x128", 384, 128, 1},     {"small kv_a 144x384", 144, 384, 1},
      {"small o 384x288", 384, 288, 1},       {"small ffn 1024x384", 1024, 384, 1},
      {"small expert 192x384", 192, 384, 4},  {"small down 384x192", 384, 192, 4},
      {"small head 16384x384", 16384, 384, 1}};
  const bool amx = cpu::amx_supported(), dp = cpu::avx512_bf16_supported() && !std::getenv("NO_DP");
  const bool use_old = !std::getenv("NO_OLD"), use_f32 = !std::getenv("NO_F32");
  const char* only = std::getenv("ONLY");  // fprop, dgrad or wgrad
  std::printf("threads %d, T %lld, GFLOP/s (AMX %s, AVX512-BF16 %s)\n", threads,
              static_cast<long long>(T0), amx ? "yes" : "no", dp ? "yes" : "no");
  std::printf("%-22s %5s %-6s | %8s %8s %8s %8s\n", "shape", "rows", "gemm", "old", "f32", "amx",
              "dp_bf16");
  for (const Shape& s : shapes) {
    if (std::string(s.name).find(filter) == std::string::npos) continue;
    const int64_t T = T0 / s.rows_div;
    const auto x = randn(T * s.in, 1), w = randn(s.out * s.in, 2), dy = randn(T * s.out, 3);
    std::vector<float> y(T * s.out), dx(T * s.in), dw(s.out * s.in, 0.0f);
    const WeightRef wr{DType::F32, w.data(), s.out, s.in, nullptr};
    const GemmArgs fprop{T,        s.out, s.in, x.data(), s.in,  false,
                         w.data(), s.in,  true, y.data(), s.out, false};
    const GemmArgs dgrad{T,        s.in, s.out, dy.data(), s.out, false,
                         w.data(), s.in, false, dx.data(), s.in,  false};
    const GemmArgs wgrad{s.out,    s.in, T,     dy.data(), s.out, true,
                         x.data(), s.in, false, dw.data(), s.in,  true};
    const double flop = 2.0 * T * s.out * s.in;
    const GemmArgs* gs[] = {&fprop, &dgrad, &wgrad};
    const char* names[] = {"fprop", "dgrad", "wgrad"};
    for (int i = 0; i < 3; ++i) {
      if (only != nullptr && std::string(only) != names[i]) continue;
      const GemmArgs& g = *gs[i];
      // GFLOP/s of fn, or 0 where not measured.
      const auto rate = [&](bool on, const auto& fn) {
        return on ? flop / best_time(fn, budget) / 1e9 : 0.0;
      };
      const double old = rate(use_old && i < 2, [&] {
        if (i == 0) k.matmul(y.data(), x.data(), wr, T, pool);
        if (i == 1) k.matmul_xw(dx.data(), s.in, dy.data(), s.out, wr, T, pool);
      });
      const double f32 = rate(use_f32, [&] { cpu::gemm(g, pool); });
      const double am = rate(amx, [&] { cpu::gemm_bf16_amx(g, pool); });
      const double d = rate(dp, [&] { cpu::gemm_bf16_dp(g, pool); });
      std::printf("%-22s %5lld %-6s | %8.1f %8.1f %8.1f %8.1f\n", i == 0 ? s.name : "",
                  static_cast<long long>(T), names[i], old, f32, am, d);
    }
  }
}

}  // namespace
}  // namespace dsv3

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  const double budget = argc > 2 ? std::atof(argv[2]) : 0.3;
  const long long T = argc > 3 ? std::atoll(argv[3]) : 1024;
  if (!dsv3::cpu_kernels_supported()) {
    std::printf("no AVX-512 on this CPU\n");
    return 0;
  }
  dsv3::run(threads, budget, T, argc > 4 ? argv[4] : "");
  return 0;
}

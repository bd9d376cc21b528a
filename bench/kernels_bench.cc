// Matmul throughput of the reference and AVX-512 kernel tables: y[T, rows] = x[T, cols] · wᵀ for
// F32, BF16 and FP8 weights, decode (T = 1) and prefill (T = 64), on the shapes of a 2048-wide
// model and of Qwen2.5-1.5B's MLP down projection. Prints GFLOP/s (2 T rows cols per call) and the
// weight stream in GB/s (weight bytes per call), best of several timed calls; then causal
// attention on MLA (absorbed and naive) and GQA shapes, milliseconds per call.
//   bench_kernels [THREADS] [SECONDS_PER_CASE]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "base/rng.h"
#include "base/thread_pool.h"
#include "base/timer.h"
#include "kernels/best_kernels.h"
#include "tensor/convert.h"

namespace dsv3 {
namespace {

// The best seconds per call of fn over calls that take `budget` seconds in all.
template <typename Fn>
double best_time(const Fn& fn, double budget) {
  fn();  // warm up caches and threads
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

void bench_attention(ThreadPool& pool, double budget) {
  struct Case {
    const char* what;
    int64_t T, S, n_heads, n_kv_heads, dk, dv;
  };
  const Case cases[] = {{"MLA absorbed decode", 1, 2048, 16, 1, 576, 512},
                        {"MLA absorbed prefill", 64, 512, 16, 1, 576, 512},
                        {"MLA naive decode", 1, 2048, 16, 16, 192, 128},
                        {"GQA 12/2 decode", 1, 2048, 12, 2, 128, 128}};
  std::printf("\n%-21s %3s %5s %5s %4s %4s | %8s %8s | %7s\n", "attention", "T", "S", "heads", "dk",
              "dv", "ref ms", "cpu ms", "speedup");
  for (const Case& c : cases) {
    AttentionArgs a;
    a.T = c.T, a.S = c.S, a.n_heads = c.n_heads, a.n_kv_heads = c.n_kv_heads, a.dk = c.dk;
    a.dv = c.dv, a.scale = 1 / std::sqrt(float(c.dk));
    a.q_head_stride = c.dk, a.q_row_stride = c.n_heads * c.dk;
    a.k_head_stride = c.dk, a.k_row_stride = c.n_kv_heads * c.dk;
    a.v_head_stride = c.dv, a.v_row_stride = c.n_kv_heads * c.dv;
    a.out_head_stride = c.dv, a.out_row_stride = c.n_heads * c.dv;
    std::vector<float> q(c.T * a.q_row_stride), k(c.S * a.k_row_stride), v(c.S * a.v_row_stride);
    std::vector<float> out(c.T * a.out_row_stride);
    Rng r(2);
    for (auto* buf : {&q, &k, &v})
      for (auto& x : *buf) x = static_cast<float>(r.normal());
    a.q = q.data(), a.k = k.data(), a.v = v.data(), a.out = out.data();
    const double t_ref = best_time([&] { ref_kernels().attention(a, pool); }, budget);
    const double t_cpu = best_time([&] { best_kernels().attention(a, pool); }, budget);
    std::printf("%-21s %3lld %5lld %2lld/%-2lld %4lld %4lld | %8.2f %8.2f | %6.1fx\n", c.what,
                static_cast<long long>(c.T), static_cast<long long>(c.S),
                static_cast<long long>(c.n_heads), static_cast<long long>(c.n_kv_heads),
                static_cast<long long>(c.dk), static_cast<long long>(c.dv), t_ref * 1e3,
                t_cpu * 1e3, t_ref / t_cpu);
  }
}

int run(int threads, double budget) {
  ThreadPool pool(threads);
  std::printf("threads %d, tables: ref vs %s\n", threads, best_kernels().name);
  std::printf("%-6s %-11s %3s | %9s %8s | %9s %8s | %7s %9s\n", "dtype", "rows x cols", "T",
              "ref GF/s", "ref GB/s", "cpu GF/s", "cpu GB/s", "speedup", "max rel");
  const int64_t shapes[][2] = {{2048, 2048}, {1536, 8960}};
  for (DType dt : {DType::F32, DType::BF16, DType::F8_E4M3}) {
    for (const auto& s : shapes) {
      const int64_t rows = s[0], cols = s[1];
      Rng r(1);
      std::vector<float> wf(rows * cols);
      for (auto& v : wf) v = static_cast<float>(r.normal());
      std::vector<unsigned char> wdata(rows * cols * dtype_size(dt));
      convert_from_f32(dt, wf.data(), wdata.data(), rows * cols);
      std::vector<float> scale(((rows + 127) / 128) * ((cols + 127) / 128), 0.01f);
      const WeightRef w{dt, wdata.data(), rows, cols,
                        dt == DType::F8_E4M3 ? scale.data() : nullptr};
      for (int64_t T : {1, 64}) {
        std::vector<float> x(T * cols), y_ref(T * rows), y_cpu(T * rows);
        for (auto& v : x) v = static_cast<float>(r.normal());
        const double t_ref =
            best_time([&] { ref_kernels().matmul(y_ref.data(), x.data(), w, T, pool); }, budget);
        const double t_cpu =
            best_time([&] { best_kernels().matmul(y_cpu.data(), x.data(), w, T, pool); }, budget);
        double diff = 0, mag = 0;
        for (int64_t i = 0; i < T * rows; ++i) {
          diff = std::max(diff, std::fabs(double(y_cpu[i]) - y_ref[i]));
          mag = std::max(mag, std::fabs(double(y_ref[i])));
        }
        const double flop = 2.0 * T * rows * cols, bytes = double(wdata.size());
        std::printf("%-6s %4lldx%-6lld %3lld | %9.1f %8.1f | %9.1f %8.1f | %6.1fx %9.2g\n",
                    std::string(dtype_name(dt)).c_str(), static_cast<long long>(rows),
                    static_cast<long long>(cols), static_cast<long long>(T), flop / t_ref * 1e-9,
                    bytes / t_ref * 1e-9, flop / t_cpu * 1e-9, bytes / t_cpu * 1e-9, t_ref / t_cpu,
                    diff / mag);
      }
    }
  }
  bench_attention(pool, budget);
  return 0;
}

}  // namespace
}  // namespace dsv3

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : dsv3::ThreadPool::default_threads();
  const double budget = argc > 2 ? std::atof(argv[2]) : 0.5;
  if (threads < 1 || !(budget > 0)) {
    std::fprintf(stderr, "usage: bench_kernels [THREADS >= 1] [SECONDS_PER_CASE > 0]\n");
    return 2;
  }
  return dsv3::run(threads, budget);
}

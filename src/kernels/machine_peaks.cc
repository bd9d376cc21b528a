// The roofline probes of machine_peaks.h. The bandwidth probe is plain C++ (the compiler
// vectorises the sum); the instruction probes are kernels/cpu's (peak_probes.cc), run only where
// the CPU reports the instructions.
#include "kernels/machine_peaks.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "base/timer.h"
#include "kernels/best_kernels.h"
#include "kernels/cpu/cpu.h"

namespace dsv3 {
namespace {

constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr int64_t kChunks = 512;  // bandwidth probe: pieces the threads claim

// Eight independent sums, so the loop is bound by loads, not by one dependency chain.
uint64_t sum_words(const uint64_t* p, int64_t n) {
  uint64_t s[8] = {};
  for (int64_t i = 0; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) s[j] += p[i + j];
  uint64_t t = 0;
  for (uint64_t v : s) t += v;
  return t;
}

volatile uint64_t sink;

// GB/s reading `words` over the pool (or on the caller alone), best of `passes`.
double read_rate(const uint64_t* buf, int64_t words, ThreadPool* pool, int passes) {
  const int64_t per = words / kChunks;
  double best = 0;
  for (int p = 0; p < passes; ++p) {
    std::vector<uint64_t> part(kChunks, 0);
    Timer t;
    const auto run = [&](int64_t b, int64_t e) {
      for (int64_t c = b; c < e; ++c) part[c] = sum_words(buf + c * per, per);
    };
    if (pool != nullptr)
      pool->parallel_for(kChunks, run);
    else
      run(0, kChunks);
    const double s = t.seconds();
    uint64_t total = 0;
    for (uint64_t v : part) total += v;
    sink = total;
    best = std::max(best, static_cast<double>(per * kChunks * 8) / s / 1e9);
  }
  return best;
}

// Seconds of CPU time this thread has run.
double thread_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Operations per second of probe(iters) on every thread of the pool at once (one call each),
// best of 3, iters calibrated on one thread to about 0.1 s. Each call is timed in its thread's
// CPU time, so time-slicing by other processes on a shared machine does not lower the figure:
// the peak is the cores', whoever else runs.
template <typename Probe>
double op_rate(ThreadPool& pool, const Probe& probe) {
  int64_t iters = 1 << 14;
  double start = thread_seconds();
  probe(iters);
  while (thread_seconds() - start < 0.01) {
    iters *= 4;
    start = thread_seconds();
    probe(iters);
  }
  iters = static_cast<int64_t>(static_cast<double>(iters) * 0.1 / (thread_seconds() - start)) + 1;
  double best = 0;
  for (int r = 0; r < 3; ++r) {
    std::vector<double> rate(pool.size(), 0);
    pool.parallel_for(pool.size(), [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const double t0 = thread_seconds();
        const double ops = probe(iters);
        rate[i] = ops / std::max(1e-9, thread_seconds() - t0) / 1e9;
      }
    });
    double total = 0;
    for (double v : rate) total += v;
    best = std::max(best, total);
  }
  return best;
}

}  // namespace

double MachinePeaks::bf16_peak() const {
  return amx_bf16 > 0 ? amx_bf16 : bf16_dot > 0 ? bf16_dot : f32_fma;
}

std::string MachinePeaks::bf16_path() const {
  return amx_bf16 > 0 ? "amx-bf16" : bf16_dot > 0 ? "avx512-bf16" : "avx512-f32";
}

MachinePeaks measure_machine_peaks(ThreadPool& pool, uint64_t buffer_bytes) {
  MachinePeaks m;
  m.threads = pool.size();
  const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
  const uint64_t bytes =
      buffer_bytes > 0
          ? buffer_bytes
          : std::min<uint64_t>(
                4 * kGiB, std::max<uint64_t>(kGiB, 4 * static_cast<uint64_t>(std::max(l3, 0L))));
  m.buffer_bytes = std::max<uint64_t>(1, bytes / (kChunks * 64)) * (kChunks * 64);
  std::unique_ptr<uint64_t, decltype(&std::free)> buf(
      static_cast<uint64_t*>(std::aligned_alloc(64, m.buffer_bytes)), &std::free);
  if (!buf) throw std::bad_alloc();
  const auto words = static_cast<int64_t>(m.buffer_bytes / 8);
  pool.parallel_for(kChunks, [&](int64_t b, int64_t e) {  // fault the pages in, not all on one core
    std::memset(buf.get() + b * (words / kChunks), 1, (e - b) * (words / kChunks) * 8);
  });
  m.read_gbs_1 = read_rate(buf.get(), words, nullptr, 3);
  m.read_gbs_n = read_rate(buf.get(), words, &pool, 5);
  buf.reset();
  if (!cpu_kernels_supported()) return m;
  m.f32_fma = op_rate(pool, cpu::probe_f32_fma);
  if (cpu::avx512_bf16_supported()) m.bf16_dot = op_rate(pool, cpu::probe_bf16_dot);
  if (cpu::avx512_vnni_supported()) m.int8_vnni = op_rate(pool, cpu::probe_int8_vnni);
  if (cpu::amx_supported())
    m.amx_bf16 = op_rate(pool, [](int64_t n) { return cpu::probe_amx(n, false); });
  if (cpu::amx_int8_supported())
    m.amx_int8 = op_rate(pool, [](int64_t n) { return cpu::probe_amx(n, true); });
  return m;
}

}  // namespace dsv3

#include "base/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <set>
#include <string>

namespace dsv3 {

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads < 1 ? 1 : n_threads) {
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this] { worker(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

namespace {

void chunk(int64_t n, int64_t parts, int64_t idx, int64_t& b, int64_t& e) {
  const int64_t base = n / parts, rem = n % parts;
  b = idx * base + (idx < rem ? idx : rem);
  e = b + base + (idx < rem ? 1 : 0);
}

// How long a thread polls before it blocks: long enough to bridge the gap between two ops of a
// forward pass, short enough not to keep a core busy between tokens of a slow sampler.
constexpr auto kSpin = std::chrono::microseconds(200);

// Polls done() until it is true (returns true) or kSpin has passed (returns false).
template <typename Done>
bool spin_until(const Done& done) {
  const auto until = std::chrono::steady_clock::now() + kSpin;
  for (int i = 0;; ++i) {
    if (done()) return true;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
    if ((i & 255) == 255 && std::chrono::steady_clock::now() > until) return false;
  }
}

constexpr uint64_t kGenMask = 0xFFFFFFFFu, kCountMask = 0xFFFF;

}  // namespace

void ThreadPool::run_chunks(uint64_t gen) {
  uint64_t s = claim_.load(std::memory_order_acquire);
  for (;;) {
    const uint64_t total = (s >> 16) & kCountMask, next = s & kCountMask;
    if ((s >> 32) != (gen & kGenMask) || next >= total) return;
    if (!claim_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel,
                                      std::memory_order_acquire))
      continue;  // s now holds the current value
    int64_t b, e;
    chunk(job_n_, static_cast<int64_t>(total), static_cast<int64_t>(next), b, e);
    try {
      (*job_)(b, e);
    } catch (...) {
      std::lock_guard<std::mutex> lk(mu_);
      if (!error_) error_ = std::current_exception();
    }
    if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == static_cast<int64_t>(total)) {
      std::lock_guard<std::mutex> lk(mu_);  // the caller may be checking done_ under mu_
      done_cv_.notify_one();
    }
    s = claim_.load(std::memory_order_acquire);
  }
}

void ThreadPool::worker() {
  uint64_t seen = 0;
  for (;;) {
    auto ready = [&] {
      return stop_.load(std::memory_order_acquire) ||
             generation_.load(std::memory_order_acquire) != seen;
    };
    if (!spin_until(ready)) {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, ready);
    }
    if (stop_.load(std::memory_order_acquire)) return;
    seen = generation_.load(std::memory_order_acquire);
    run_chunks(seen);
  }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (n_threads_ == 1 || n == 1) {
    fn(0, n);
    return;
  }
  const int64_t total =
      std::min<int64_t>({n, int64_t{kChunksPerThread} * n_threads_, int64_t{kCountMask}});
  const uint64_t gen = ++posted_;
  job_ = &fn;
  job_n_ = n;
  done_.store(0, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lk(mu_);
    error_ = nullptr;
    claim_.store((gen & kGenMask) << 32 | static_cast<uint64_t>(total) << 16,
                 std::memory_order_release);
    generation_.store(gen, std::memory_order_release);
  }
  cv_.notify_all();
  run_chunks(gen);
  auto done = [&] { return done_.load(std::memory_order_acquire) == total; };
  std::unique_lock<std::mutex> lk(mu_, std::defer_lock);
  if (!spin_until(done)) {
    lk.lock();
    done_cv_.wait(lk, done);
  } else {
    lk.lock();  // error_ is read under mu_
  }
  const std::exception_ptr err = error_;
  lk.unlock();
  if (err) std::rethrow_exception(err);
}

int ThreadPool::default_threads() {
  // Count distinct (physical id, core id) pairs; fall back to hardware_concurrency.
  std::ifstream in("/proc/cpuinfo");
  std::set<std::pair<std::string, std::string>> cores;
  std::string line, phys = "0";
  while (std::getline(in, line)) {
    auto val = [&] { return line.substr(line.find(':') + 1); };
    if (line.rfind("physical id", 0) == 0) phys = val();
    if (line.rfind("core id", 0) == 0) cores.insert({phys, val()});
  }
  int hw = static_cast<int>(std::thread::hardware_concurrency());
  int n = cores.empty() ? hw : static_cast<int>(cores.size());
  return n < 1 ? 1 : n;
}

}  // namespace dsv3

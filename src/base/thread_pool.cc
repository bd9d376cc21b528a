#include "base/thread_pool.h"

#include <chrono>
#include <fstream>
#include <set>
#include <string>

namespace dsv3 {

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads < 1 ? 1 : n_threads) {
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker(i); });
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

void chunk(int64_t n, int parts, int idx, int64_t& b, int64_t& e) {
  int64_t base = n / parts, rem = n % parts;
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

}  // namespace

void ThreadPool::worker(int idx) {
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
    const auto* job = job_;
    const int64_t n = job_n_;
    int64_t b, e;
    chunk(n, n_threads_, idx, b, e);
    if (b < e) {
      try {
        (*job)(b, e);
      } catch (...) {
        std::lock_guard<std::mutex> lk(mu_);
        if (!error_) error_ = std::current_exception();
      }
    }
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lk(mu_);  // the caller may be checking pending_ under mu_
      done_cv_.notify_one();
    }
  }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (n_threads_ == 1 || n == 1) {
    fn(0, n);
    return;
  }
  job_ = &fn;
  job_n_ = n;
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lk(mu_);
    error_ = nullptr;
    generation_.fetch_add(1, std::memory_order_release);
  }
  cv_.notify_all();
  int64_t b, e;
  chunk(n, n_threads_, 0, b, e);
  std::exception_ptr err;
  try {
    if (b < e) fn(b, e);
  } catch (...) {
    err = std::current_exception();
  }
  auto done = [&] { return pending_.load(std::memory_order_acquire) == 0; };
  std::unique_lock<std::mutex> lk(mu_, std::defer_lock);
  if (!spin_until(done)) {
    lk.lock();
    done_cv_.wait(lk, done);
  } else {
    lk.lock();  // error_ is read under mu_
  }
  if (!err) err = error_;
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

#include "base/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <set>
#include <string>

namespace dsv3 {

ThreadPool::ThreadPool(int n_threads)
    : n_threads_(n_threads < 1 ? 1 : n_threads), shares_(new Share[n_threads_]) {
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker(i); });
}

namespace {

constexpr uint32_t kStop = 0xFFFFFFFFu;          // generation_ when the pool is shutting down
constexpr int64_t kMaxUnits = int64_t{1} << 20;  // units per job: fits a share's 24-bit fields
constexpr uint64_t kUnitMask = (uint64_t{1} << 24) - 1;

// Part idx of [0, n) cut into `parts` nearly equal contiguous parts.
void chunk(int64_t n, int64_t parts, int64_t idx, int64_t& b, int64_t& e) {
  const int64_t base = n / parts, rem = n % parts;
  b = idx * base + (idx < rem ? idx : rem);
  e = b + base + (idx < rem ? 1 : 0);
}

uint64_t share_word(uint32_t gen, int64_t front, int64_t back) {
  return uint64_t{gen & 0xFFFFu} << 48 | static_cast<uint64_t>(front) << 24 |
         static_cast<uint64_t>(back);
}
bool same_job(uint64_t word, uint32_t gen) {
  return (word >> 48) == (gen & 0xFFFFu);
}
int64_t front_of(uint64_t word) {
  return static_cast<int64_t>((word >> 24) & kUnitMask);
}
int64_t back_of(uint64_t word) {
  return static_cast<int64_t>(word & kUnitMask);
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

ThreadPool::~ThreadPool() {
  generation_.store(kStop, std::memory_order_release);
  generation_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_units(int64_t b, int64_t e) {
  int64_t ib, ie, unused;
  chunk(job_n_, units_, b, ib, unused);
  chunk(job_n_, units_, e - 1, unused, ie);
  try {
    (*job_)(ib, ie);
  } catch (...) {
    std::lock_guard<std::mutex> lk(error_mu_);
    if (!error_) error_ = std::current_exception();
    failed_.store(true, std::memory_order_relaxed);  // published by done_'s release
  }
}

void ThreadPool::run_job(int index, uint32_t gen) {
  int64_t ran = 0;
  // Its own share from the front, in pieces of at most 1/kChunksPerThread of the share.
  int64_t own_b, own_e;
  chunk(units_, n_threads_, index, own_b, own_e);
  const int64_t piece =
      std::max<int64_t>(1, (own_e - own_b + kChunksPerThread - 1) / kChunksPerThread);
  std::atomic<uint64_t>& mine = shares_[index].word;
  for (uint64_t w = mine.load(std::memory_order_acquire);;) {
    const int64_t f = front_of(w), b = back_of(w);
    if (!same_job(w, gen) || f >= b) break;
    const int64_t take = std::min(piece, b - f);
    if (!mine.compare_exchange_weak(w, share_word(gen, f + take, b), std::memory_order_acq_rel,
                                    std::memory_order_acquire))
      continue;  // w now holds the current value
    run_units(f, f + take);
    ran += take;
    w = mine.load(std::memory_order_acquire);
  }
  // Then half of what is left of another's share, from its end, until every share is empty.
  for (int k = 1; k < n_threads_; ++k) {
    std::atomic<uint64_t>& other = shares_[(index + k) % n_threads_].word;
    for (uint64_t w = other.load(std::memory_order_acquire);;) {
      const int64_t f = front_of(w), b = back_of(w);
      if (!same_job(w, gen) || f >= b) break;
      const int64_t take = (b - f + 1) / 2;
      if (!other.compare_exchange_weak(w, share_word(gen, f, b - take), std::memory_order_acq_rel,
                                       std::memory_order_acquire))
        continue;
      run_units(b - take, b);
      ran += take;
      w = other.load(std::memory_order_acquire);
    }
  }
  if (ran > 0 && done_.fetch_add(static_cast<uint32_t>(ran), std::memory_order_acq_rel) +
                         static_cast<uint32_t>(ran) ==
                     static_cast<uint32_t>(units_))
    done_.notify_one();  // a system call only if the caller sleeps
}

void ThreadPool::worker(int index) {
  uint32_t seen = 0;
  for (;;) {
    const auto newer = [&] { return generation_.load(std::memory_order_acquire) != seen; };
    if (!spin_until(newer))
      while (!newer()) generation_.wait(seen, std::memory_order_acquire);
    seen = generation_.load(std::memory_order_acquire);
    if (seen == kStop) return;
    run_job(index, seen);
  }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (n_threads_ == 1 || n == 1) {
    fn(0, n);
    return;
  }
  if (++posted_ == kStop) posted_ = 1;
  const uint32_t gen = posted_;
  job_ = &fn;
  job_n_ = n;
  units_ = std::min(n, kMaxUnits);
  done_.store(0, std::memory_order_relaxed);
  for (int i = 0; i < n_threads_; ++i) {
    int64_t b, e;
    chunk(units_, n_threads_, i, b, e);
    shares_[i].word.store(share_word(gen, b, e), std::memory_order_relaxed);
  }
  generation_.store(gen, std::memory_order_release);
  generation_.notify_all();  // a system call only if a worker sleeps
  run_job(0, gen);
  const auto total = static_cast<uint32_t>(units_);
  const auto finished = [&] { return done_.load(std::memory_order_acquire) == total; };
  if (!spin_until(finished))
    for (uint32_t d; (d = done_.load(std::memory_order_acquire)) != total;)
      done_.wait(d, std::memory_order_acquire);
  if (failed_.load(std::memory_order_relaxed)) {
    std::exception_ptr err;
    {
      std::lock_guard<std::mutex> lk(error_mu_);
      std::swap(err, error_);
    }
    failed_.store(false, std::memory_order_relaxed);
    std::rethrow_exception(err);
  }
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

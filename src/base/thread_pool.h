// A fixed pool of worker threads, passed by reference to whatever computes (no global pool).
// A forward pass hands the pool hundreds of small jobs a few microseconds apart (a decode batch's
// projections), so waking a sleeping thread through the kernel for each would cost more than the
// job: workers spin on an atomic job counter for a short while after each job before they sleep,
// and the caller spins for the workers to finish (as ggml's thread pool does).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace dsv3 {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);  // n_threads <= 1: everything runs on the caller
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }
  // Runs fn(begin, end) over [0, n) split into contiguous chunks, one per thread, and waits.
  // The caller's thread takes part. Exceptions from fn are rethrown here (the first one).
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn);

  static int default_threads();  // physical cores (hardware threads / SMT width)

 private:
  void worker(int idx);
  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  // job_ and job_n_ are written before generation_ is bumped (release) and read after it is seen.
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t job_n_ = 0;
  std::atomic<uint64_t> generation_{0};  // bumped under mu_, so a sleeping worker cannot miss it
  std::atomic<int> pending_{0};          // workers still running the current job
  std::atomic<bool> stop_{false};
  std::exception_ptr error_;  // under mu_
};

}  // namespace dsv3

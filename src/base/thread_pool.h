// A fixed pool of worker threads, passed by reference to whatever computes (no global pool).
// A forward pass hands the pool hundreds of small jobs a few microseconds apart (a decode batch's
// projections), so waking a sleeping thread through the kernel for each would cost more than the
// job: workers spin on an atomic job counter for a short while after each job before they sleep,
// and the caller spins for the chunks to finish (as ggml's thread pool does).
//
// A job is cut into a few chunks per thread that the threads claim one at a time, the caller
// included, so a worker that is still waking up or was preempted by another process (the
// machines are shared) delays nobody: whoever is running takes the chunks it would have run, and
// the caller waits only for chunks already claimed.
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
  // Runs fn(begin, end) over [0, n) split into contiguous chunks (at most kChunksPerThread per
  // thread, never more than n), each on whichever thread claims it, and waits. The caller's thread
  // takes part. Exceptions from fn are rethrown here (the first one). Not reentrant: one caller
  // at a time, and fn may not call parallel_for on the same pool.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn);

  static int default_threads();  // physical cores (hardware threads / SMT width)

  static constexpr int kChunksPerThread = 4;

 private:
  void worker();
  // Claims and runs chunks of job `gen` until none is left (or a newer job replaced it).
  void run_chunks(uint64_t gen);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  // The job: job_ and job_n_ are written before claim_ announces it (release) and read only
  // after a chunk of it was claimed, so they cannot change while read (the caller waits for every
  // claimed chunk before it posts the next job).
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t job_n_ = 0;
  uint64_t posted_ = 0;  // the caller's count of jobs
  // Chunk claims: the job's generation (high 32 bits), its chunk count (16) and the next chunk
  // (low 16), so a claim checks all three in one compare-exchange.
  std::atomic<uint64_t> claim_{0};
  std::atomic<int64_t> done_{0};         // chunks of the current job finished
  std::atomic<uint64_t> generation_{0};  // bumped under mu_, so a sleeping worker cannot miss it
  std::atomic<bool> stop_{false};
  std::exception_ptr error_;  // under mu_
};

}  // namespace dsv3

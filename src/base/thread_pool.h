// A fixed pool of worker threads, passed by reference to whatever computes (no global pool).
// A forward pass hands the pool hundreds of small jobs a few microseconds apart (a decode batch's
// projections), so waking a sleeping thread through the kernel for each would cost more than the
// job: workers spin on an atomic job counter for a short while after each job before they sleep,
// and the caller spins for the job to finish (as ggml's thread pool does).
//
// Each thread of a job starts on its own contiguous share of [0, n), which it claims from the
// front a piece at a time; a thread out of work takes half of what is left of another's share,
// from its end. So a decode step's weight rows stream in one run per thread (a matmul's row
// prefetches reach into the thread's next piece: every new run starts from cold memory, which on
// a 1.6 MB expert cost more than the pool itself), while a worker that is still waking up or was
// preempted by another process (the machines are shared) delays nobody: the others take what it
// has not claimed, and the caller waits only for pieces already claimed.
//
// No lock on the way of a job: posting it, claiming pieces and finishing are atomic operations
// on words that each sit on their own cache line (a thread claims from its own share's line),
// and a thread that sleeps waits on a 32-bit atomic (a futex), so waking it costs a system call
// only when one really sleeps. A mutex around the finish made the caller block on the worker's
// unlock: 2-3 us per job.
#pragma once
#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
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
  // Runs fn(begin, end) over contiguous pieces of [0, n) (each thread's share in at most
  // kChunksPerThread pieces, never more than n in all, plus what others take from it), each on
  // whichever thread claims it, and waits. The caller's thread takes part. Exceptions from fn are
  // rethrown here (the first one). Not reentrant: one caller at a time, and fn may not call
  // parallel_for on the same pool.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn);

  static int default_threads();  // physical cores (hardware threads / SMT width)

  static constexpr int kChunksPerThread = 4;

 private:
  // A thread's share of the job: the job's generation (high 16 bits), then the first unclaimed
  // unit (24 bits) and the end of the unclaimed units (low 24), so a claim checks all three in
  // one compare-exchange on the share's own cache line.
  struct alignas(64) Share {
    std::atomic<uint64_t> word{0};
  };

  void worker(int index);
  // Thread `index` runs units of job `gen`: its own share from the front, then others' from
  // their ends, until none is left (or a newer job replaced it).
  void run_job(int index, uint32_t gen);
  // Runs units [b, e) of the current job; an exception from fn is kept for the caller.
  void run_units(int64_t b, int64_t e);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::unique_ptr<Share[]> shares_;
  // The job: written before generation_ announces it (release) and read only after a thread saw
  // it there (acquire), so they cannot change while read (the caller waits for every claimed
  // unit before it posts the next job). A unit is one index of [0, n), or a contiguous run of
  // them when n exceeds kMaxUnits.
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t job_n_ = 0, units_ = 0;
  uint32_t posted_ = 0;                        // the caller's count of jobs
  alignas(64) std::atomic<uint32_t> done_{0};  // units of the current job finished
  // The newest job's generation, or kStop: what sleeping workers wait on.
  alignas(64) std::atomic<uint32_t> generation_{0};
  alignas(64) std::atomic<bool> failed_{false};  // error_ holds an exception
  std::mutex error_mu_;
  std::exception_ptr error_;  // under error_mu_: the job's first exception
};

}  // namespace dsv3

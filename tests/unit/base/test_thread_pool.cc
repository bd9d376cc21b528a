// ThreadPool: every index run exactly once per call, over many back-to-back calls (workers
// spinning) and calls after the workers went to sleep; exceptions from any thread's chunk reach
// the caller and leave the pool usable; destruction while workers spin or sleep; a job finishes
// while a worker is held up elsewhere (the caller takes its chunks).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "base/thread_pool.h"

namespace dsv3 {
namespace {

void expect_each_index_once(ThreadPool& pool, int64_t n) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
  pool.parallel_for(n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1, std::memory_order_relaxed);
  });
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "index " << i << " of " << n;
}

TEST(ThreadPool, EveryIndexOnceBackToBackAndAfterSleeping) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    for (int call = 0; call < 2000; ++call) expect_each_index_once(pool, 1 + call % 37);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // past the spin: workers sleep
    expect_each_index_once(pool, 1000);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    expect_each_index_once(pool, 3);
  }
}

TEST(ThreadPool, ExceptionsReachTheCallerAndThePoolGoesOn) {
  ThreadPool pool(3);
  for (int64_t bad : {0, 5, 9}) {  // in the caller's chunk, and in each worker's
    EXPECT_THROW(pool.parallel_for(10,
                                   [&](int64_t b, int64_t e) {
                                     if (b <= bad && bad < e) throw std::runtime_error("bad");
                                   }),
                 std::runtime_error);
    expect_each_index_once(pool, 10);
  }
}

TEST(ThreadPool, CallerTakesTheChunksOfAWorkerThatIsLate) {
  ThreadPool pool(2);
  // The first chunk claimed by a worker blocks until the caller has run all the others: the
  // job can only finish if chunks go to whoever is free rather than one range per thread.
  std::atomic<int> others{0};
  std::atomic<bool> blocked{false};
  const std::thread::id caller = std::this_thread::get_id();
  const int64_t n = 2 * ThreadPool::kChunksPerThread;
  pool.parallel_for(n, [&](int64_t b, int64_t e) {
    if (std::this_thread::get_id() != caller && !blocked.exchange(true)) {
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (others.load() < n - 1 && std::chrono::steady_clock::now() < until)
        std::this_thread::yield();
      EXPECT_EQ(others.load(), n - 1) << "the caller did not take the remaining chunks";
    } else {
      others.fetch_add(static_cast<int>(e - b));
    }
  });
}

TEST(ThreadPool, DestroyedWhileWorkersSpinOrSleep) {
  for (int sleep_ms : {0, 5}) {
    ThreadPool pool(4);
    expect_each_index_once(pool, 100);
    std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
  }
  SUCCEED();  // the destructors returned (a lost wake-up would hang the test past its timeout)
}

}  // namespace
}  // namespace dsv3

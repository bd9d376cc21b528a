// Wall-clock timing and peak memory, for the figures printed after long work.
#pragma once
#include <chrono>
#include <cstdint>

namespace dsv3 {

class Timer {
 public:
  Timer() : start_(std::chrono::steady_clock::now()) {}
  void reset() { start_ = std::chrono::steady_clock::now(); }
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

uint64_t peak_rss_bytes();  // VmHWM of this process, 0 when unknown

}  // namespace dsv3

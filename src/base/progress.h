// A progress bar on stderr, drawn only when stderr is a terminal (logs and pipes stay clean).
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace dsv3 {

class ProgressBar {
 public:
  // total: units of work (bytes, tensors, steps); unit: printed after the counts, e.g. "MB".
  ProgressBar(std::string label, uint64_t total, std::string unit = "");
  ~ProgressBar();
  void set(uint64_t done);
  void add(uint64_t n) { set(done_ + n); }
  void set_suffix(std::string s) { suffix_ = std::move(s); }
  void finish();  // draws 100% and ends the line
  static bool enabled();

 private:
  void draw(bool force);
  std::string label_, unit_, suffix_;
  uint64_t total_, done_ = 0;
  bool active_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace dsv3

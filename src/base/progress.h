// A progress bar on stderr, drawn only when stderr is a terminal (logs and pipes stay clean). A
// bar made with Offline::Lines also reports off a terminal, as a plain line every few seconds, so
// that a long job (writing a multi-GB model) shows it is alive in a log; a job done sooner prints
// nothing there.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace dsv3 {

class ProgressBar {
 public:
  enum class Offline { Silent, Lines };
  // total: units of work (bytes, tensors, steps); unit: printed after the counts, e.g. "MB"
  // ("bytes" and "B" are printed as KiB, MiB, GiB).
  ProgressBar(std::string label, uint64_t total, std::string unit = "",
              Offline offline = Offline::Silent);
  ~ProgressBar();
  void set(uint64_t done);
  void add(uint64_t n) { set(done_ + n); }
  void set_suffix(std::string s) { suffix_ = std::move(s); }
  void finish();  // draws 100% and ends the line
  static bool enabled();
  // Seconds between lines off a terminal: $DSV3_PROGRESS_INTERVAL when set (tests use 0), else 5.
  static double line_interval();

 private:
  void draw(bool force);
  void line(std::chrono::steady_clock::time_point now);
  std::string counts() const;
  std::string label_, unit_, suffix_;
  uint64_t total_, done_ = 0;
  bool active_, lines_, finished_ = false;
  int lines_printed_ = 0;
  double interval_ = 5;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace dsv3

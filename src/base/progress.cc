#include "base/progress.h"

#include <unistd.h>

#include <cstdio>

namespace dsv3 {

bool ProgressBar::enabled() {
  return ::isatty(STDERR_FILENO) != 0;
}

ProgressBar::ProgressBar(std::string label, uint64_t total, std::string unit)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      active_(enabled()),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {
  draw(true);
}

ProgressBar::~ProgressBar() {
  if (active_ && !finished_) std::fputc('\n', stderr);
}

void ProgressBar::set(uint64_t done) {
  done_ = done > total_ ? total_ : done;
  draw(false);
}

void ProgressBar::finish() {
  done_ = total_;
  draw(true);
  if (active_ && !finished_) std::fputc('\n', stderr);
  finished_ = true;
}

void ProgressBar::draw(bool force) {
  if (!active_ || finished_) return;
  auto now = std::chrono::steady_clock::now();
  if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  constexpr int kWidth = 30;
  double frac = total_ ? static_cast<double>(done_) / static_cast<double>(total_) : 1.0;
  int filled = static_cast<int>(frac * kWidth);
  char bar[kWidth + 1];
  for (int i = 0; i < kWidth; ++i) bar[i] = i < filled ? '#' : '.';
  bar[kWidth] = 0;
  double secs = std::chrono::duration<double>(now - start_).count();
  std::fprintf(stderr, "\r%s [%s] %3d%% %llu/%llu%s%s %.1fs %s\x1b[K", label_.c_str(), bar,
               static_cast<int>(frac * 100), static_cast<unsigned long long>(done_),
               static_cast<unsigned long long>(total_), unit_.empty() ? "" : " ", unit_.c_str(),
               secs, suffix_.c_str());
  std::fflush(stderr);
}

}  // namespace dsv3

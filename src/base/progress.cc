#include "base/progress.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "base/strings.h"

namespace dsv3 {

bool ProgressBar::enabled() {
  return ::isatty(STDERR_FILENO) != 0;
}

double ProgressBar::line_interval() {
  const char* env = std::getenv("DSV3_PROGRESS_INTERVAL");
  if (!env || !*env) return 5.0;
  char* end = nullptr;
  const double v = std::strtod(env, &end);
  return end != env && *end == '\0' && v >= 0 ? v : 5.0;
}

ProgressBar::ProgressBar(std::string label, uint64_t total, std::string unit, Offline offline)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      active_(enabled()),
      lines_(!active_ && offline == Offline::Lines),
      interval_(lines_ ? line_interval() : 0),
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
  if (lines_ && !finished_ && lines_printed_ > 0) line(std::chrono::steady_clock::now());
  draw(true);
  if (active_ && !finished_) std::fputc('\n', stderr);
  finished_ = true;
}

std::string ProgressBar::counts() const {
  if (unit_ == "bytes" || unit_ == "B") return human_bytes(done_) + " / " + human_bytes(total_);
  return std::to_string(done_) + "/" + std::to_string(total_) + (unit_.empty() ? "" : " ") + unit_;
}

void ProgressBar::line(std::chrono::steady_clock::time_point now) {
  const double frac = total_ ? static_cast<double>(done_) / static_cast<double>(total_) : 1.0;
  std::fprintf(stderr, "%s: %d%% (%s) after %.0f s\n", label_.c_str(), static_cast<int>(frac * 100),
               counts().c_str(), std::chrono::duration<double>(now - start_).count());
  std::fflush(stderr);
  last_draw_ = now;
  ++lines_printed_;
}

void ProgressBar::draw(bool force) {
  if (finished_) return;
  auto now = std::chrono::steady_clock::now();
  if (lines_) {  // off a terminal: a line every interval_, none at the start
    if (!force && std::chrono::duration<double>(now - last_draw_).count() >= interval_) line(now);
    return;
  }
  if (!active_) return;
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

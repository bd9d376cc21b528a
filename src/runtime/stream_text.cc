#include "runtime/stream_text.h"

#include <algorithm>

#include "base/error.h"

namespace dsv3 {

bool prompt_opens_reasoning(std::string_view prompt) {
  while (!prompt.empty() && (prompt.back() == '\n' || prompt.back() == ' '))
    prompt.remove_suffix(1);
  return prompt.ends_with("<think>");
}

size_t partial_match_suffix(std::string_view text, std::string_view pattern) {
  size_t longest = std::min(text.size(), pattern.size() ? pattern.size() - 1 : 0);
  for (size_t n = longest; n > 0; --n)
    if (text.substr(text.size() - n) == pattern.substr(0, n)) return n;
  return 0;
}

StopStringFilter::StopStringFilter(std::vector<std::string> stops) : stops_(std::move(stops)) {
  for (const auto& s : stops_)
    DSV3_CHECK(!s.empty(), "stop strings: an empty stop string would stop before any text");
}

std::string StopStringFilter::push(std::string_view text) {
  if (stopped_) return {};
  held_.append(text);
  // The earliest match wins; at the same position the longest (it is the one a reader sees).
  size_t best = std::string::npos;
  for (const auto& s : stops_) {
    size_t at = held_.find(s);
    if (at < best || (at == best && at != std::string::npos && s.size() > matched_.size())) {
      best = at;
      matched_ = s;
    }
  }
  if (best != std::string::npos) {
    std::string out = held_.substr(0, best);
    held_.clear();
    stopped_ = true;
    return out;
  }
  size_t hold = 0;
  for (const auto& s : stops_) hold = std::max(hold, partial_match_suffix(held_, s));
  std::string out = held_.substr(0, held_.size() - hold);
  held_.erase(0, held_.size() - hold);
  return out;
}

std::string StopStringFilter::flush() {
  std::string out = std::move(held_);
  held_.clear();
  return out;
}

ReasoningSplitter::ReasoningSplitter(bool starts_in_reasoning, std::string open, std::string close)
    : open_(std::move(open)), close_(std::move(close)), reasoning_(starts_in_reasoning) {}

void ReasoningSplitter::emit(std::vector<Piece>& out, std::string_view text) const {
  if (text.empty()) return;
  if (!out.empty() && out.back().reasoning == reasoning_)
    out.back().text.append(text);
  else
    out.push_back({reasoning_, std::string(text)});
}

std::vector<ReasoningSplitter::Piece> ReasoningSplitter::push(std::string_view text) {
  std::vector<Piece> out;
  held_.append(text);
  for (;;) {
    const std::string& tag = reasoning_ ? close_ : open_;
    size_t at = held_.find(tag);
    if (at == std::string::npos) break;
    emit(out, std::string_view(held_).substr(0, at));
    held_.erase(0, at + tag.size());
    reasoning_ = !reasoning_;
  }
  size_t hold = partial_match_suffix(held_, reasoning_ ? close_ : open_);
  emit(out, std::string_view(held_).substr(0, held_.size() - hold));
  held_.erase(0, held_.size() - hold);
  return out;
}

std::vector<ReasoningSplitter::Piece> ReasoningSplitter::flush() {
  std::vector<Piece> out;
  emit(out, held_);
  held_.clear();
  return out;
}

}  // namespace dsv3

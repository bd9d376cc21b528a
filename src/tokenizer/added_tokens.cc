#include "tokenizer/added_tokens.h"

#include <utf8proc.h>

#include "tokenizer/utf8.h"

namespace dsv3::tok {
namespace {

// Rust's char::is_whitespace: the Unicode White_Space property.
bool is_white_space(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

bool is_word_char(uint32_t c) {
  if (c == '_') return true;
  const utf8proc_category_t cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) ||
         (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO);
}

// The code point that ends s (valid UTF-8, non-empty) and where it starts.
uint32_t last_char(std::string_view s, size_t* start) {
  size_t i = s.size() - 1;
  while (i > 0 && (static_cast<uint8_t>(s[i]) & 0xC0) == 0x80) --i;
  *start = i;
  size_t j = i;
  return utf8_next(s, j);
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(const std::vector<AddedToken>& tokens,
                                     const std::vector<std::string>& patterns)
    : tokens_(tokens) {
  for (size_t t = 0; t < tokens.size(); ++t) {
    const std::string& p = patterns[t];
    if (p.empty()) continue;
    int32_t node = 0;
    for (char ch : p) {
      const auto b = static_cast<uint8_t>(ch);
      int32_t child = -1;
      for (const auto& [eb, en] : nodes_[node].edges)
        if (eb == b) child = en;
      if (child < 0) {
        child = static_cast<int32_t>(nodes_.size());
        nodes_[node].edges.emplace_back(b, child);
        nodes_.emplace_back();
      }
      node = child;
    }
    if (nodes_[node].token < 0)
      nodes_[node].token = static_cast<int32_t>(t);  // first of duplicates wins
    first_byte_[static_cast<uint8_t>(p[0])] = true;
  }
}

int32_t AddedTokenMatcher::longest_match(std::string_view text, size_t pos, size_t* len) const {
  int32_t node = 0, found = -1;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto b = static_cast<uint8_t>(text[i]);
    int32_t child = -1;
    for (const auto& [eb, en] : nodes_[node].edges)
      if (eb == b) child = en;
    if (child < 0) break;
    node = child;
    if (nodes_[node].token >= 0) {
      found = nodes_[node].token;
      *len = i + 1 - pos;
    }
  }
  return found;
}

void AddedTokenMatcher::split(std::string_view text,
                              const std::function<void(std::string_view, int32_t)>& run) const {
  size_t done = 0;  // text before this offset has been emitted
  for (size_t pos = 0; pos < text.size(); ++pos) {
    if (!first_byte_[static_cast<uint8_t>(text[pos])]) continue;
    if ((static_cast<uint8_t>(text[pos]) & 0xC0) == 0x80) continue;  // only at character starts
    size_t len = 0;
    const int32_t t = longest_match(text, pos, &len);
    if (t < 0) continue;
    const AddedToken& tok = tokens_[t];
    size_t start = pos, stop = pos + len;
    if (tok.single_word) {
      size_t s;
      const bool left_ok = start == 0 || !is_word_char(last_char(text.substr(0, start), &s));
      size_t j = stop;
      const bool right_ok = stop == text.size() || !is_word_char(utf8_next(text, j));
      if (!left_ok || !right_ok) continue;
    }
    if (tok.lstrip) {
      size_t s;
      while (start > done && is_white_space(last_char(text.substr(0, start), &s))) start = s;
    }
    if (tok.rstrip) {
      while (stop < text.size()) {
        size_t j = stop;
        if (!is_white_space(utf8_next(text, j))) break;
        stop = j;
      }
    }
    if (start > done) run(text.substr(done, start - done), -1);
    run(text.substr(start, stop - start), tok.id);
    done = stop;
    pos = stop - 1;
  }
  if (done < text.size()) run(text.substr(done), -1);
}

}  // namespace dsv3::tok

// Filters on text streamed token by token. Each holds back the tail of the text that could still
// turn into the pattern it looks for (a stop string, a <think> tag), so that a pattern spanning
// several tokens is found and cut exactly, and releases it once it cannot. Input is whole UTF-8
// characters (the tokenizer's StreamDecoder); the patterns start on character boundaries, so the
// output never splits a character either.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace dsv3 {

// Length of the longest suffix of `text` that is a proper prefix of `pattern`.
size_t partial_match_suffix(std::string_view text, std::string_view pattern);

// Cuts the stream just before the first occurrence of any stop string; the stop string and
// everything after it are dropped.
class StopStringFilter {
 public:
  explicit StopStringFilter(std::vector<std::string> stops);  // empty strings are an Error

  // Returns the text that can be shown now.
  std::string push(std::string_view text);
  // The generation ended without a stop string: returns the held-back tail.
  std::string flush();
  bool stopped() const { return stopped_; }
  const std::string& matched() const { return matched_; }  // the stop string found

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
  std::string matched_;
};

// True when a rendered chat prompt leaves the model inside <think> (R1's template ends with it):
// the reply starts in its reasoning.
bool prompt_opens_reasoning(std::string_view prompt);

// Splits the stream into reasoning (between <think> and </think>, R1 models) and answer, dropping
// the tags themselves.
class ReasoningSplitter {
 public:
  struct Piece {
    bool reasoning;
    std::string text;
  };
  // starts_in_reasoning: the prompt ended with the opening tag (R1's template adds "<think>\n").
  explicit ReasoningSplitter(bool starts_in_reasoning, std::string open = "<think>",
                             std::string close = "</think>");

  std::vector<Piece> push(std::string_view text);
  std::vector<Piece> flush();
  bool in_reasoning() const { return reasoning_; }

 private:
  void emit(std::vector<Piece>& out, std::string_view text) const;
  std::string open_, close_, held_;
  bool reasoning_;
};

}  // namespace dsv3

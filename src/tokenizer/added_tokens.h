// Added tokens (tokenizer.json "added_tokens"): strings matched before pre-tokenization and mapped
// straight to their ids. As in Hugging Face's AddedVocabulary, tokens with normalized=false are
// found in the raw text first, then tokens with normalized=true in the normalized remainder; each
// pass takes the leftmost-longest match; lstrip/rstrip swallow neighbouring whitespace; single_word
// needs non-word characters (or the text's ends) on both sides.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace dsv3::tok {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = false, normalized = false, lstrip = false, rstrip = false, single_word = false;
};

class AddedTokenMatcher {
 public:
  // patterns[i] is the string to look for for token tokens[i] (content, or its normalized form).
  AddedTokenMatcher() = default;
  AddedTokenMatcher(const std::vector<AddedToken>& tokens,
                    const std::vector<std::string>& patterns);
  bool empty() const { return nodes_.size() <= 1; }
  // Cuts text into runs: calls run(text, -1) for plain text and run(text, id) for an added token
  // (text then includes any whitespace its lstrip/rstrip swallowed).
  void split(std::string_view text,
             const std::function<void(std::string_view, int32_t)>& run) const;

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> edges;  // byte -> child
    int32_t token = -1;                              // index into tokens_ when a pattern ends here
  };
  int32_t longest_match(std::string_view text, size_t pos, size_t* len) const;
  std::vector<Node> nodes_{Node{}};
  std::vector<AddedToken> tokens_;
  bool first_byte_[256] = {};
};

}  // namespace dsv3::tok

// The tokenizer.json "pre_tokenizer": cuts normalized text into the pieces BPE sees. Supported:
// Sequence, Split (regex or literal pattern; all five delimiter behaviours; invert) and ByteLevel
// (optional GPT-2 regex, add_prefix_space). Regexes run on PCRE2 with UTF, UCP and JIT; \s and \S
// are rewritten to the Unicode White_Space set that Oniguruma (the Hugging Face engine) uses, since
// PCRE2's \s also matches U+180E.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/json.h"

namespace dsv3::tok {

// Rewrites \s and \S in a pattern to the explicit White_Space class (exposed for tests).
std::string onig_compatible_pattern(std::string_view pattern);

class PreTokenizer {
 public:
  // j: the "pre_tokenizer" value (null means the whole text is one piece).
  static PreTokenizer from_json(const Json* j, std::string_view source);
  // A DeepSeek-V3 pre-tokenizer (three Split regexes + ByteLevel), for training new tokenizers.
  static PreTokenizer deepseek_v3();
  static Json deepseek_v3_json();

  PreTokenizer();
  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;
  ~PreTokenizer();

  // Whether a ByteLevel step is present (the BPE model then works on raw bytes).
  bool byte_level() const;
  // Calls piece(p) for every piece of text (valid UTF-8) in order; pieces are never empty.
  // Thread-safe.
  void split(std::string_view text, const std::function<void(std::string_view)>& piece) const;

 private:
  struct Step;
  struct Work;
  void run(size_t step, std::string_view text, Work& w,
           const std::function<void(std::string_view)>& piece) const;
  static void add(const Json& j, std::string_view source,
                  std::vector<std::unique_ptr<Step>>& steps);
  std::vector<std::unique_ptr<Step>> steps_;
};

}  // namespace dsv3::tok

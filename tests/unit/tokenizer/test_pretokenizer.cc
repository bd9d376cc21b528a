// Pre-tokenization: DeepSeek-V3's regex sequence on a sentence split by hand, the \s rewrite that
// matches Oniguruma's White_Space set, and split behaviours.
#include <gtest/gtest.h>

#include "base/error.h"
#include "base/json.h"
#include "tokenizer/pretokenizer.h"

namespace dsv3::tok {
namespace {

std::vector<std::string> pieces(const PreTokenizer& p, std::string_view text) {
  std::vector<std::string> out;
  p.split(text, [&](std::string_view s) { out.emplace_back(s); });
  return out;
}

PreTokenizer split_only(const std::string& json) {
  const Json j = Json::parse(json);
  return PreTokenizer::from_json(&j, "test");
}

TEST(PreTokenizer, DeepSeekV3SplitsByHand) {
  // \p{N}{1,3} first, then the CJK run, then the word regex on what is left (derived by hand from
  // the three patterns in order).
  const std::vector<std::string> want = {
      "Hello", ",",   " world", "!", "  ", "123", "456", " ", "\xE4\xB8\xAD\xE6\x96\x87",
      "abc",   "\n\n"};
  EXPECT_EQ(pieces(PreTokenizer::deepseek_v3(),
                   "Hello, world!  123456 \xE4\xB8\xAD\xE6\x96\x87"
                   "abc\n\n"),
            want);
  EXPECT_EQ(pieces(PreTokenizer::deepseek_v3(), "a  b"),
            (std::vector<std::string>{"a", " ", " b"}));
  EXPECT_EQ(pieces(PreTokenizer::deepseek_v3(), ".Net"), (std::vector<std::string>{".Net"}));
}

TEST(PreTokenizer, WhitespaceIsUnicodeWhiteSpaceAsInOniguruma) {
  EXPECT_EQ(onig_compatible_pattern("a\\sb"),
            "a[\\t-\\r\\x{20}\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}"
            "\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}]b");
  EXPECT_EQ(onig_compatible_pattern("[^\\s\\p{L}]").find("\\s"), std::string::npos);
  EXPECT_NE(onig_compatible_pattern("[\\]\\s]x\\S").find("]x[^\\t-\\r"), std::string::npos);
  const PreTokenizer ws = split_only(
      R"({"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "\\s+"},
          "behavior": "Removed", "invert": false}, {"type": "ByteLevel", "use_regex": false}]})");
  EXPECT_EQ(pieces(ws,
                   "a\xE1\xA0\x8E"
                   "b"),
            (std::vector<std::string>{"a\xE1\xA0\x8E"
                                      "b"}));  // U+180E: not space
  EXPECT_EQ(pieces(ws,
                   "a\xE3\x80\x80"
                   "b"),
            (std::vector<std::string>{"a", "b"}));  // U+3000: space
}

TEST(PreTokenizer, Behaviours) {
  auto with = [](const char* behavior, bool invert) {
    return split_only(
        std::string(R"({"type": "Split", "pattern": {"String": "-"}, "behavior": ")") + behavior +
        R"(", "invert": )" + (invert ? "true" : "false") + "}");
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(pieces(with("Isolated", false), "a-b--c"), (V{"a", "-", "b", "-", "-", "c"}));
  EXPECT_EQ(pieces(with("Removed", false), "a-b--c"), (V{"a", "b", "c"}));
  EXPECT_EQ(pieces(with("MergedWithPrevious", false), "a-b--c"), (V{"a-", "b-", "-", "c"}));
  EXPECT_EQ(pieces(with("MergedWithNext", false), "a-b--c"), (V{"a", "-b", "-", "-c"}));
  EXPECT_EQ(pieces(with("Contiguous", false), "a-b--c"), (V{"a", "-", "b", "--", "c"}));
  EXPECT_EQ(pieces(with("Removed", true), "a-b--c"), (V{"-", "-", "-"}));
}

TEST(PreTokenizer, RejectsWhatItCannotRun) {
  EXPECT_THROW(split_only(R"({"type": "Whitespace"})"), Error);
  EXPECT_THROW(
      split_only(R"({"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated"})"),
      Error);
  EXPECT_THROW(
      split_only(R"({"type": "Split", "pattern": {"Regex": "a"}, "behavior": "Sideways"})"), Error);
}

}  // namespace
}  // namespace dsv3::tok

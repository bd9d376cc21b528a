// UTF-8 repair and the byte-level alphabet, against tables written out from the Unicode standard
// and GPT-2's bytes_to_unicode.
#include <gtest/gtest.h>

#include "base/strings.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/utf8.h"

namespace dsv3::tok {
namespace {

const std::string R = "\xEF\xBF\xBD";  // U+FFFD

TEST(Utf8, LossyFollowsUnicodeMaximalSubpartPractice) {
  // Unicode 15 §3.9, Table 3-8: 61 F1 80 80 E1 80 C2 62 80 63 80 BF 64 -> a R R R b R c R R d.
  EXPECT_EQ(utf8_lossy("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64"),
            "a" + R + R + R + "b" + R + "c" + R + R + "d");
  EXPECT_EQ(utf8_lossy("\xED\xA0\x80"), R + R + R);          // a surrogate: E0..9F only after ED
  EXPECT_EQ(utf8_lossy("\xC0\xAF"), R + R);                  // overlong: C0 is never a lead
  EXPECT_EQ(utf8_lossy("\xF4\x90\x80\x80"), R + R + R + R);  // above U+10FFFF
  EXPECT_EQ(utf8_lossy("x\xE2\x82"), "x" + R);               // truncated at the end: one R
  EXPECT_EQ(utf8_lossy("\xFF\xFE"), R + R);
  const std::string ok = "plain \xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80";
  EXPECT_EQ(utf8_lossy(ok), ok);
  EXPECT_TRUE(utf8_valid(ok));
  EXPECT_FALSE(utf8_valid("\x80"));
  EXPECT_FALSE(utf8_valid("\xF0\x9F\x98"));
}

TEST(Utf8, IncompleteTailHoldsOnlyPossiblyValidPrefixes) {
  EXPECT_EQ(utf8_incomplete_tail("ab"), 0u);
  EXPECT_EQ(utf8_incomplete_tail("a\xE2"), 1u);
  EXPECT_EQ(utf8_incomplete_tail("a\xE2\x82"), 2u);
  EXPECT_EQ(utf8_incomplete_tail("a\xE2\x82\xAC"), 0u);  // complete
  EXPECT_EQ(utf8_incomplete_tail("\xF0\x9F\x98"), 3u);
  EXPECT_EQ(utf8_incomplete_tail("\xE0\x80"), 0u);  // already invalid: nothing to wait for
  EXPECT_EQ(utf8_incomplete_tail("\x80\x80\x80\x80"), 0u);
  EXPECT_EQ(utf8_incomplete_tail("\xFF"), 0u);
}

TEST(Utf8, AppendEncodesEachLengthBoundary) {
  // base/strings.h's encoder, used by the tokenizer and the JSON parser; bytes from Unicode Table
  // 3-6.
  const std::pair<uint32_t, std::string> cases[] = {{0x00, std::string(1, '\0')},
                                                    {0x7F, "\x7F"},
                                                    {0x80, "\xC2\x80"},
                                                    {0x7FF, "\xDF\xBF"},
                                                    {0x800, "\xE0\xA0\x80"},
                                                    {0xFFFF, "\xEF\xBF\xBF"},
                                                    {0x10000, "\xF0\x90\x80\x80"},
                                                    {0x10FFFF, "\xF4\x8F\xBF\xBF"}};
  for (const auto& [cp, bytes] : cases) {
    std::string out = "x";
    append_utf8(out, cp);
    EXPECT_EQ(out, "x" + bytes) << cp;
    size_t i = 1;
    EXPECT_EQ(utf8_next(out, i), cp);
  }
}

TEST(ByteLevel, MatchesGpt2BytesToUnicode) {
  EXPECT_EQ(byte_to_codepoint(' '), 0x120u);   // 'Ġ'
  EXPECT_EQ(byte_to_codepoint('\n'), 0x10Au);  // 'Ċ'
  EXPECT_EQ(byte_to_codepoint(0), 0x100u);
  EXPECT_EQ(byte_to_codepoint('a'), uint32_t('a'));
  EXPECT_EQ(byte_to_codepoint(0x7F), 0x121u);
  EXPECT_EQ(byte_to_codepoint(0xA0), 0x142u);
  EXPECT_EQ(byte_to_codepoint(0xAD), 0x143u);
  EXPECT_EQ(byte_to_codepoint(0xFF), 0xFFu);
  for (int b = 0; b < 256; ++b) EXPECT_EQ(codepoint_to_byte(byte_to_codepoint(uint8_t(b))), b);
  EXPECT_EQ(bytes_to_byte_level(" the\n"), "\xC4\xA0the\xC4\x8A");
  EXPECT_EQ(byte_level_to_bytes("\xC4\xA0the"), std::optional<std::string>(" the"));
  EXPECT_EQ(byte_level_to_bytes("<\xEF\xBD\x9CUser\xEF\xBD\x9C>"), std::nullopt);  // <｜User｜>
}

}  // namespace
}  // namespace dsv3::tok

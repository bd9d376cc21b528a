// Stop strings and the <think> splitter on streamed text: every way of cutting the text into
// pieces gives the same result, computed independently with std::string::find on the whole text.
#include "runtime/stream_text.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/error.h"

namespace dsv3 {
namespace {

// Every split of `text` into up to three pieces (two cut points, anywhere, on bytes of an ASCII
// text or on character boundaries given by `cuts`).
std::vector<std::vector<std::string>> splits(const std::string& text, std::vector<size_t> cuts) {
  std::vector<std::vector<std::string>> out;
  for (size_t a : cuts)
    for (size_t b : cuts) {
      if (b < a) continue;
      out.push_back({text.substr(0, a), text.substr(a, b - a), text.substr(b)});
    }
  return out;
}

std::vector<size_t> all_cuts(const std::string& text) {
  std::vector<size_t> c;
  for (size_t i = 0; i <= text.size(); ++i) c.push_back(i);
  return c;
}

std::vector<size_t> utf8_cuts(const std::string& text) {
  std::vector<size_t> c;
  for (size_t i = 0; i <= text.size(); ++i)
    if (i == text.size() || (static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) c.push_back(i);
  return c;
}

// True when `s` is a sequence of whole UTF-8 characters (by the lead bytes' lengths).
bool whole_characters(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n;
  }
  return true;
}

TEST(PartialMatchSuffix, LongestProperPrefix) {
  EXPECT_EQ(partial_match_suffix("abc<|e", "<|end|>"), 3u);
  EXPECT_EQ(partial_match_suffix("abc", "<|end|>"), 0u);
  EXPECT_EQ(partial_match_suffix("abab", "aba"), 2u);  // a whole match is not partial
  EXPECT_EQ(partial_match_suffix("aa", "aab"), 2u);
  EXPECT_EQ(partial_match_suffix("", "x"), 0u);
}

TEST(StopStringFilter, CutsExactlyWhereverTheTokensSplit) {
  const std::string text = "Hello wor<ld>! <|end|> after the stop <|end|>";
  const std::vector<std::string> stops = {"<|end|>", "STOP"};
  const std::string want = text.substr(0, text.find("<|end|>"));
  for (const auto& pieces : splits(text, all_cuts(text))) {
    StopStringFilter f(stops);
    std::string got;
    for (const auto& p : pieces) got += f.push(p);
    EXPECT_TRUE(f.stopped());
    EXPECT_EQ(f.matched(), "<|end|>");
    got += f.flush();
    EXPECT_EQ(got, want) << pieces[0] << "|" << pieces[1] << "|" << pieces[2];
  }
}

TEST(StopStringFilter, ReleasesWhatTurnsOutNotToBeAStop) {
  StopStringFilter f({"</s>"});
  EXPECT_EQ(f.push("a</"), "a");  // "</" could begin "</s>"
  EXPECT_EQ(f.push("b"), "</b");  // it did not
  EXPECT_EQ(f.push("<"), "");
  EXPECT_FALSE(f.stopped());
  EXPECT_EQ(f.flush(), "<");  // the end of the generation releases the tail
}

TEST(StopStringFilter, EarliestStopWinsAndNothingAfterIt) {
  StopStringFilter f({"xyz", "bc"});
  EXPECT_EQ(f.push("abcxyz"), "a");
  EXPECT_EQ(f.matched(), "bc");
  EXPECT_EQ(f.push("more"), "");
  EXPECT_EQ(f.flush(), "");
}

TEST(StopStringFilter, NeverSplitsACharacter) {
  const std::string text = "café ☕ déjà vu! ok";
  const std::string want = text.substr(0, text.find("à v"));
  for (const auto& pieces : splits(text, utf8_cuts(text))) {
    StopStringFilter f({"à v", "éjà!"});
    std::string got;
    for (const auto& p : pieces) {
      std::string out = f.push(p);
      EXPECT_TRUE(whole_characters(out)) << out;
      got += out;
    }
    got += f.flush();
    EXPECT_EQ(got, want);
  }
}

TEST(StopStringFilter, RejectsAnEmptyStopString) {
  EXPECT_THROW(StopStringFilter({"ok", ""}), Error);
}

// Reference for the splitter: alternate on the tags in the whole text.
std::vector<ReasoningSplitter::Piece> split_whole(std::string text, bool reasoning) {
  std::vector<ReasoningSplitter::Piece> out;
  for (;;) {
    const std::string tag = reasoning ? "</think>" : "<think>";
    size_t at = text.find(tag);
    std::string part = text.substr(0, at);
    if (!part.empty()) out.push_back({reasoning, part});
    if (at == std::string::npos) return out;
    text = text.substr(at + tag.size());
    reasoning = !reasoning;
  }
}

void expect_same(const std::vector<ReasoningSplitter::Piece>& got,
                 const std::vector<ReasoningSplitter::Piece>& want, const std::string& why) {
  ASSERT_EQ(got.size(), want.size()) << why;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].reasoning, want[i].reasoning) << why;
    EXPECT_EQ(got[i].text, want[i].text) << why;
  }
}

std::vector<ReasoningSplitter::Piece> merged(const std::vector<std::string>& pieces,
                                             bool reasoning) {
  ReasoningSplitter s(reasoning);
  std::vector<ReasoningSplitter::Piece> all;
  auto add = [&](std::vector<ReasoningSplitter::Piece> v) {
    for (auto& p : v) {
      if (!all.empty() && all.back().reasoning == p.reasoning)
        all.back().text += p.text;
      else
        all.push_back(p);
    }
  };
  for (const auto& p : pieces) add(s.push(p));
  add(s.flush());
  return all;
}

TEST(ReasoningSplitter, StartsInsideAfterR1Prompt) {
  const std::string text = "\nLet me think <th.</think>\n\nThe answer is 4.";
  for (const auto& pieces : splits(text, all_cuts(text)))
    expect_same(merged(pieces, true), split_whole(text, true),
                pieces[0] + "|" + pieces[1] + "|" + pieces[2]);
}

TEST(ReasoningSplitter, OpensOnTheTagWhenStartingOutside) {
  const std::string text = "pre<think>why</think>answer<think>again";
  for (const auto& pieces : splits(text, all_cuts(text)))
    expect_same(merged(pieces, false), split_whole(text, false),
                pieces[0] + "|" + pieces[1] + "|" + pieces[2]);
  auto v = merged({text}, false);
  ASSERT_EQ(v.size(), 4u);
  EXPECT_EQ(v[1].text, "why");
  EXPECT_TRUE(v[1].reasoning);
}

TEST(ReasoningSplitter, UnfinishedTagIsReleasedAtTheEnd) {
  ReasoningSplitter s(true);
  EXPECT_TRUE(s.push("abc</thi").size() == 1);
  auto rest = s.flush();
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].text, "</thi");
  EXPECT_TRUE(rest[0].reasoning);
}

}  // namespace
}  // namespace dsv3

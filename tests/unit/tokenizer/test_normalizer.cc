// NFC as Hugging Face computes it (Unicode 9.0 tables): expected strings worked out from the
// Unicode data by hand and checked against npm `tokenizers`' nfcNormalizer.
#include <gtest/gtest.h>

#include "base/json.h"
#include "tokenizer/normalizer.h"

namespace dsv3::tok {
namespace {

Normalizer nfc() {
  const Json j = Json::parse(R"({"type": "Sequence", "normalizers": [{"type": "NFC"}]})");
  return Normalizer::from_json(&j, "test");
}

TEST(Normalizer, NfcComposesAndReorders) {
  const Normalizer n = nfc();
  EXPECT_EQ(n.apply("e\xCC\x81"), "\xC3\xA9");  // e + U+0301 -> U+00E9
  EXPECT_EQ(n.apply("a\xCC\x81\xCC\xA3"),
            "\xE1\xBA\xA1\xCC\x81");               // a U+0301 U+0323 -> U+1EA1 U+0301
  EXPECT_EQ(n.apply("\xE2\x84\xAB"), "\xC3\x85");  // U+212B ANGSTROM -> U+00C5
  EXPECT_EQ(n.apply("\xE1\x84\x80\xE1\x85\xA1"), "\xEA\xB0\x80");  // jamo U+1100 U+1161 -> U+AC00
  EXPECT_EQ(n.apply("plain ascii"), "plain ascii");
  // U+1E94A (Unicode 9.0, class 7) reorders before U+0301, which then composes with a.
  EXPECT_EQ(n.apply("a\xF0\x9E\xA5\x8A\xCC\x81"), "\xC3\xA1\xF0\x9E\xA5\x8A");
}

TEST(Normalizer, CharactersAfterUnicode9AreInertStarters) {
  const Normalizer n = nfc();
  // U+0D3C (Unicode 10, class 9) is unassigned to Hugging Face: it blocks a + U+0301.
  EXPECT_EQ(n.apply("a\xE0\xB4\xBC\xCC\x81"), "a\xE0\xB4\xBC\xCC\x81");
  // U+08D9 U+0D3C stay in order (a newer NFC would swap them by class, 230 > 9).
  EXPECT_EQ(n.apply("\xE0\xA3\x99\xE0\xB4\xBC"), "\xE0\xA3\x99\xE0\xB4\xBC");
  // Text on both sides is still normalized.
  EXPECT_EQ(n.apply("e\xCC\x81\xE0\xB4\xBC"
                    "e\xCC\x81"),
            "\xC3\xA9\xE0\xB4\xBC\xC3\xA9");
}

}  // namespace
}  // namespace dsv3::tok

// Tokenizer on a hand-made byte-level BPE (merge results worked out by hand), added-token flags,
// invalid UTF-8, streaming decode, error messages, and the committed dsv3-en-4k tokenizer.
#include <gtest/gtest.h>

#include <chrono>

#include "base/error.h"
#include "base/json.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer.h"

namespace dsv3 {
namespace {

// ids 0..255: the bytes; then merges. The pre-tokenizer splits on spaces (kept with the next word).
std::string tiny_json(const std::string& merges, const std::string& added = "[]",
                      const std::string& extra_vocab = "") {
  std::string vocab;
  for (int b = 0; b < 256; ++b)
    vocab += json_quote(tok::bytes_to_byte_level(std::string(1, char(b)))) + ": " +
             std::to_string(b) + ", ";
  vocab += extra_vocab.empty() ? R"("<unused>": 299)" : extra_vocab;
  return R"({"added_tokens": )" + added + R"(, "normalizer": null,
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"Regex": " ?[^ ]+| +"}, "behavior": "Isolated", "invert": false},
      {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]},
    "decoder": {"type": "ByteLevel"},
    "model": {"type": "BPE", "vocab": {)" +
         vocab + R"(}, "merges": )" + merges + "}}";
}

const char* kVocab = R"("ab": 256, "abc": 257, "bc": 258, "aa": 259, "aaaa": 260, "Ġa": 261)";

TEST(Tokenizer, MergesByRankThenLeftmost) {
  // ranks: (a,b)=0 (ab,c)=1 (b,c)=2 (a,a)=3 (aa,aa)=4 (Ġ,a)=5
  const Tokenizer t = Tokenizer::from_json(
      tiny_json(R"(["a b", "ab c", "b c", "a a", "aa aa", "Ġ a"])", "[]", kVocab));
  using V = std::vector<int32_t>;
  EXPECT_EQ(t.encode("abc"), (V{257}));        // (a,b) before (b,c), then (ab,c)
  EXPECT_EQ(t.encode("bcab"), (V{258, 256}));  // (a,b) rank 0 first, then (b,c)
  EXPECT_EQ(t.encode("aaa"), (V{259, 'a'}));   // leftmost of two equal-rank pairs
  EXPECT_EQ(t.encode("aaaaa"), (V{260, 'a'}));
  EXPECT_EQ(t.encode("x abc"), (V{'x', ' ', 257}));  // (a,b) rank 0 beats (Ġ,a) rank 5: Ġ|abc
  // The array form of merges gives the same model.
  const Tokenizer u = Tokenizer::from_json(tiny_json(
      R"([["a","b"], ["ab","c"], ["b","c"], ["a","a"], ["aa","aa"], ["Ġ","a"]])", "[]", kVocab));
  for (const char* s : {"abc", "bcab", "aaa", "aaaaa", "x abc"})
    EXPECT_EQ(u.encode(s), t.encode(s)) << s;
  EXPECT_EQ(t.decode(t.encode("x abc bcab")), "x abc bcab");
  EXPECT_EQ(t.encode("x ab"), (V{'x', ' ', 256}));
  EXPECT_EQ(t.encode("x a"), (V{'x', 261}));
  EXPECT_EQ(t.vocab_size(), 262);
  EXPECT_EQ(t.token_to_id("Ġa"), std::optional<int32_t>(261));
  EXPECT_EQ(t.id_to_token(261), "Ġa");
}

TEST(Tokenizer, LongRunsWithoutWhitespaceStayLinear) {
  const Tokenizer t =
      Tokenizer::from_json(tiny_json(R"(["a a", "aa aa"])", "[]", R"("aa": 256, "aaaa": 257)"));
  auto time_of = [&](size_t n, std::vector<int32_t>* ids) {
    const auto t0 = std::chrono::steady_clock::now();
    *ids = t.encode(std::string(n, 'a'));
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  std::vector<int32_t> small, big;
  const double ts = time_of(1 << 18, &small), tb = time_of(1 << 20, &big);
  EXPECT_EQ(big.size(), size_t(1 << 18));  // all "aaaa"
  EXPECT_EQ(big[0], 257);
  // 4x the input: about 4x the time; a quadratic merge would take 16x. 10x leaves room for noise.
  EXPECT_LT(tb, 10 * ts + 0.05) << "256 KiB: " << ts << " s, 1 MiB: " << tb << " s";
}

TEST(Tokenizer, AddedTokensWithStripAndSingleWordFlags) {
  const std::string added = R"([
    {"id": 300, "content": "<s>", "special": true, "normalized": false},
    {"id": 301, "content": "<l>", "special": false, "lstrip": true, "normalized": false},
    {"id": 302, "content": "<r>", "special": false, "rstrip": true, "normalized": false},
    {"id": 303, "content": "cat", "special": false, "single_word": true, "normalized": false},
    {"id": 304, "content": "<s>x", "special": false, "normalized": false}])";
  const Tokenizer t = Tokenizer::from_json(tiny_json("[]", added));
  using V = std::vector<int32_t>;
  EXPECT_EQ(t.encode("a<s>b"), (V{'a', 300, 'b'}));
  EXPECT_EQ(t.encode("<s>x"), (V{304}));                 // leftmost, then longest
  EXPECT_EQ(t.encode("a  <l>b"), (V{'a', 301, 'b'}));    // lstrip swallows the spaces
  EXPECT_EQ(t.encode("a<r> \n b"), (V{'a', 302, 'b'}));  // rstrip swallows space and newline
  EXPECT_EQ(t.encode("a cat b"), (V{'a', 32, 303, 32, 'b'}));
  EXPECT_EQ(t.encode("cats"), (V{'c', 'a', 't', 's'}));  // not a single word there
  EXPECT_EQ(t.decode(V{'a', 300, 'b'}), "a<s>b");
  EXPECT_EQ(t.decode(V{'a', 300, 'b'}, /*skip_special=*/true), "ab");
  EXPECT_TRUE(t.is_special(300));
  EXPECT_FALSE(t.is_special(301));
  EXPECT_EQ(t.vocab_size(), 305);
}

TEST(Tokenizer, InvalidUtf8IsReadAsReplacementCharacters) {
  const Tokenizer t = Tokenizer::from_json(tiny_json("[]"));
  EXPECT_EQ(t.encode("a\xFF\xC3"), t.encode("a\xEF\xBF\xBD\xEF\xBF\xBD"));
  EXPECT_EQ(t.decode(std::vector<int32_t>{'a', 0xE2, 0x82}), "a\xEF\xBF\xBD");  // cut character
}

TEST(Tokenizer, StreamDecoderWaitsForWholeCharacters) {
  const Tokenizer t = Tokenizer::from_json(tiny_json("[]"));
  StreamDecoder d(t);
  EXPECT_EQ(d.push('x'), "x");
  EXPECT_EQ(d.push(0xF0), "");
  EXPECT_EQ(d.push(0x9F), "");
  EXPECT_EQ(d.push(0x98), "");
  EXPECT_EQ(d.push(0x80), "\xF0\x9F\x98\x80");
  EXPECT_EQ(d.push(0xC3), "");
  EXPECT_EQ(d.flush(), "\xEF\xBF\xBD");     // an unfinished character at the end
  EXPECT_EQ(d.push(0x80), "\xEF\xBF\xBD");  // a stray continuation byte is emitted at once
}

std::string error_of(const std::string& json) {
  try {
    Tokenizer::from_json(json, {}, "bad/tokenizer.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(Tokenizer, ErrorsNameTheFileAndField) {
  EXPECT_NE(error_of(tiny_json(R"(["a q"])")).find("bad/tokenizer.json: model.merges[0]"),
            std::string::npos);
  EXPECT_NE(error_of(tiny_json(R"(["abc"])")).find("merges[0]"), std::string::npos);
  std::string s = tiny_json("[]");
  EXPECT_NE(error_of(std::string(s).replace(s.find("\"normalizer\": null"), 18,
                                            R"("normalizer": {"type": "Lowercase"})"))
                .find("normalizer type 'Lowercase'"),
            std::string::npos);
  EXPECT_NE(
      error_of(std::string(s).replace(s.find("\"BPE\""), 5, "\"Unigram\"")).find("model.type"),
      std::string::npos);
  EXPECT_NE(error_of("{\"model\": 1}").find("pre_tokenizer has no ByteLevel"), std::string::npos);
  EXPECT_NE(error_of("{").find("bad/tokenizer.json: JSON error"), std::string::npos);
  EXPECT_NE(error_of(tiny_json("[]", "[]", R"("huge": 1000000000)")).find("is far past the"),
            std::string::npos);  // no attempt to allocate a billion entries
  EXPECT_NE(
      error_of(tiny_json("[]", R"([{"id": 2000000000, "content": "x"}])")).find("out of range"),
      std::string::npos);
  const Tokenizer t = Tokenizer::from_json(s);
  EXPECT_EQ(t.decode(std::vector<int32_t>{'a', 256, 'b'}),
            "ab");                                           // an unused id: skipped, as HF does
  EXPECT_THROW(t.decode(std::vector<int32_t>{300}), Error);  // past the vocabulary
  EXPECT_THROW(t.decode(std::vector<int32_t>{-1}), Error);
  EXPECT_THROW(Tokenizer::load("/nonexistent/model"), Error);
}

// tiny_json with <s> (300) and </s> (301) as special added tokens and the given post_processor.
std::string with_post_processor(const std::string& post_processor) {
  const std::string added = R"([
    {"id": 300, "content": "<s>", "special": true, "normalized": false},
    {"id": 301, "content": "</s>", "special": true, "normalized": false}])";
  std::string s = tiny_json(R"(["a b"])", added, R"("ab": 256)");
  return s.replace(s.find("\"decoder\""), 0, "\"post_processor\": " + post_processor + ", ");
}

// Llama-3's post_processor: ByteLevel, then a template putting <|begin_of_text|> before $A.
const char* kLlamaStylePost = R"({"type": "Sequence", "processors": [
  {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
  {"type": "TemplateProcessing",
   "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
   "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
            {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
   "special_tokens": {"<s>": {"id": "<s>", "ids": [300], "tokens": ["<s>"]}}}]})";

// The ids below are what the Hugging Face tokenizers library (npm tokenizers@0.23.2) gives for
// these tokenizer.json texts: checked once by hand with tests/js/ref_encode.js.
TEST(Tokenizer, TemplateProcessingAddsSpecialTokens) {
  using V = std::vector<int32_t>;
  const Tokenizer t = Tokenizer::from_json(with_post_processor(kLlamaStylePost));
  EXPECT_EQ(t.encode("ab"), (V{300, 256}));
  EXPECT_EQ(t.encode("ab", false), (V{256}));
  EXPECT_EQ(t.encode(""), (V{300}));
  EXPECT_EQ(t.special_prefix(), (V{300}));
  EXPECT_TRUE(t.special_suffix().empty());
  EXPECT_FALSE(t.add_bos_token());  // no tokenizer_config.json: no bos_token known

  // Two ids for one name, a suffix, then ByteLevel (nothing).
  const Tokenizer u =
      Tokenizer::from_json(with_post_processor(R"({"type": "Sequence", "processors": [
    {"type": "TemplateProcessing",
     "single": [{"SpecialToken": {"id": "two", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": "</s>", "type_id": 0}}],
     "special_tokens": {"two": {"id": "two", "ids": [300, 97], "tokens": ["<s>", "a"]},
                        "</s>": {"id": "</s>", "ids": [301], "tokens": ["</s>"]}}},
    {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true}]})"));
  EXPECT_EQ(u.encode("ab"), (V{300, 97, 256, 301}));
  EXPECT_EQ(u.encode(""), (V{300, 97, 301}));
  EXPECT_EQ(u.encode("ab", false), (V{256}));

  const Tokenizer bert = Tokenizer::from_json(with_post_processor(
      R"({"type": "BertProcessing", "sep": ["</s>", 301], "cls": ["<s>", 300]})"));
  EXPECT_EQ(bert.encode("ab"), (V{300, 256, 301}));
  EXPECT_EQ(bert.encode(""), (V{300, 301}));
  const Tokenizer none = Tokenizer::from_json(with_post_processor(
      R"({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true})"));
  EXPECT_EQ(none.encode("ab"), (V{256}));
}

// The rule documented at Tokenizer::encode: a Llama tokenizer class rebuilds the frame from
// add_bos_token / add_eos_token (transformers' LlamaTokenizerFast); other classes keep
// tokenizer.json's post_processor (transformers' PreTrainedTokenizerFast and the tokenizers
// library).
TEST(Tokenizer, TokenizerConfigDecidesOverPostProcessorForLlamaClass) {
  using V = std::vector<int32_t>;
  const std::string json = with_post_processor(kLlamaStylePost);
  auto encode = [&](const std::string& config) {
    return Tokenizer::from_json(json, config).encode("ab");
  };
  const std::string llama = R"("tokenizer_class": "LlamaTokenizerFast", "bos_token": "<s>",
                               "eos_token": "</s>")";
  EXPECT_EQ(encode("{" + llama + R"(, "add_bos_token": true})"), (V{300, 256}));  // one BOS only
  EXPECT_EQ(encode("{" + llama + R"(, "add_bos_token": false})"), (V{256}));
  EXPECT_EQ(encode("{" + llama + "}"), (V{300, 256}));  // transformers' default: add BOS
  EXPECT_EQ(encode("{" + llama + R"(, "add_bos_token": false, "add_eos_token": true})"),
            (V{256, 301}));
  EXPECT_EQ(encode(R"({"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>",
                       "add_bos_token": false})"),
            (V{300, 256}));  // the post_processor, as transformers uses it for this class
  EXPECT_EQ(encode(R"({"bos_token": "<s>"})"), (V{300, 256}));  // no class, no flag
  EXPECT_EQ(encode(R"({"bos_token": "<s>", "add_bos_token": false})"), (V{256}));
  const Tokenizer t = Tokenizer::from_json(json, "{" + llama + "}");
  EXPECT_TRUE(t.add_bos_token());
  EXPECT_EQ(t.bos_id(), 300);
  EXPECT_THROW(Tokenizer::from_json(json, R"({"tokenizer_class": "LlamaTokenizerFast"})"), Error);
}

TEST(Tokenizer, PostProcessorErrorsNameTheField) {
  auto error = [](const std::string& post_processor) {
    return error_of(with_post_processor(post_processor));
  };
  EXPECT_NE(error(R"({"type": "Fancy"})").find("bad/tokenizer.json: post_processor type 'Fancy'"),
            std::string::npos);
  const std::string a = R"({"Sequence": {"id": "A", "type_id": 0}})";
  auto tp = [&](const std::string& single, const std::string& specials) {
    return R"({"type": "TemplateProcessing", "single": )" + single + R"(, "special_tokens": )" +
           specials + "}";
  };
  EXPECT_NE(error(tp(R"([{"SpecialToken": {"id": "x", "type_id": 0}}, )" + a + "]", "{}"))
                .find("special token 'x' is missing"),
            std::string::npos);
  EXPECT_NE(error(tp(R"([{"SpecialToken": {"id": "x", "type_id": 0}}, )" + a + "]",
                     R"({"x": {"id": "x", "ids": [302], "tokens": ["x"]}})"))
                .find("post_processor.special_tokens.x.ids[] 302 is not a token id"),
            std::string::npos);
  EXPECT_NE(error(tp(R"([{"Sequence": {"id": "B", "type_id": 0}}])", "{}")).find("sequence 'B'"),
            std::string::npos);
  EXPECT_NE(error(tp("[]", "{}")).find("has no $A"), std::string::npos);
  EXPECT_NE(error(R"({"type": "Sequence", "processors": [)" + tp("[" + a + "]", "{}") + ", " +
                  tp("[" + a + "]", "{}") + "]}")
                .find("a second token-adding processor (TemplateProcessing)"),
            std::string::npos);
  EXPECT_NE(error(R"({"type": "BertProcessing", "sep": ["</s>", 301], "cls": ["<s>", 9999]})")
                .find("post_processor.cls[1] 9999 is not a token id"),
            std::string::npos);
}

TEST(Tokenizer, CommittedEnglish4kTokenizer) {
  const Tokenizer t = Tokenizer::load(DSV3_SOURCE_DIR "/assets/tokenizers/dsv3-en-4k");
  EXPECT_EQ(t.vocab_size(), 4096);
  EXPECT_EQ(t.bos_id(), 0);
  EXPECT_EQ(t.eos_id(), 1);
  EXPECT_TRUE(t.add_bos_token());
  EXPECT_EQ(t.token_to_id("<｜User｜>"), std::optional<int32_t>(3));
  EXPECT_EQ(t.token_to_id("<｜Assistant｜>"), std::optional<int32_t>(4));
  EXPECT_EQ(t.token_to_id("<think>"), std::optional<int32_t>(5));
  EXPECT_EQ(t.token_to_id("</think>"), std::optional<int32_t>(6));
  EXPECT_NE(t.chat_template().find("<｜Assistant｜><think>"), std::string::npos);
  const std::vector<int32_t> ids = t.encode("The whale<｜end▁of▁sentence｜>");
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(ids.front(), 0);
  EXPECT_EQ(ids.back(), 1);
  EXPECT_EQ(t.encode("The whale", false), std::vector<int32_t>(ids.begin() + 1, ids.end() - 1));
  EXPECT_EQ(t.decode(ids, /*skip_special=*/true), "The whale");
}

}  // namespace
}  // namespace dsv3

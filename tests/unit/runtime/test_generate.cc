// Generator and ChatSession on a small random model with a freshly trained tokenizer: the stop
// reasons (token limit, EOS, full context, interrupt), the cache bookkeeping, prompts that do not
// fit, and a chat turn that fails leaving the conversation as it was.
#include "runtime/generate.h"

#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/file.h"
#include "base/thread_pool.h"
#include "model/model.h"
#include "model/presets.h"
#include "model/weights.h"
#include "runtime/chat_session.h"
#include "unit/runtime/test_tokenizer_util.h"

namespace dsv3 {
namespace {

constexpr int64_t kContext = 40;

// A byte-level BPE tokenizer learned from a few sentences (DeepSeek-V3's special tokens).
const Tokenizer& tokenizer() {
  static Tokenizer tok = test::train_test_tokenizer(
      "test_generate_tokenizer",
      "the model keeps the cache of the conversation and writes the next token");
  return tok;
}

struct Fixture {
  static ModelConfig config(int64_t context) {
    ModelConfig c = preset_config("tiny");
    c.vocab_size = 320;  // past the tokenizer's ids: padding rows are never sampled
    c.num_hidden_layers = 2;
    c.num_nextn_predict_layers = 0;
    c.max_position_embeddings = context;
    return c;
  }
  explicit Fixture(int64_t context = kContext)
      : pool(1),
        weights(ModelWeights::random(config(context), 3, DType::F32)),
        model(make_model(weights, ComputeContext{ref_kernels(), pool})),
        gen(*model, tokenizer()) {}
  ThreadPool pool;
  ModelWeights weights;
  std::unique_ptr<Model> model;
  Generator gen;
};

std::vector<int32_t> prompt(size_t n) {
  std::vector<int32_t> ids = tokenizer().encode("the model keeps the cache of the conversation");
  ids.resize(n, ids.back());
  return ids;
}

SamplingParams sampling(double temperature = 1.0) {
  SamplingParams p;
  p.temperature = temperature;
  p.seed = 9;
  return p;
}

TEST(Generator, TokenLimitAndTheCacheHoldsAllButTheLastToken) {
  Fixture f;
  Sampler s(sampling());
  StopConditions stop;
  stop.max_new_tokens = 7;
  auto r = f.gen.generate(prompt(5), s, stop, nullptr);
  EXPECT_EQ(r.reason, StopReason::MaxTokens);
  ASSERT_EQ(r.tokens.size(), 7u);
  EXPECT_EQ(r.prompt_tokens, 5);
  EXPECT_EQ(r.decode_tokens, 6);
  // The last token is never fed: nothing would read its logits.
  std::vector<int32_t> want = prompt(5);
  want.insert(want.end(), r.tokens.begin(), r.tokens.end() - 1);
  EXPECT_EQ(f.gen.cached_ids(), want);
  EXPECT_EQ(f.gen.cache().length(), 11);
  for (int32_t t : r.tokens) EXPECT_LT(t, tokenizer().vocab_size());
}

TEST(Generator, ZeroTokensSamplesNothing) {
  Fixture f;
  Sampler s(sampling());
  StopConditions stop;
  stop.max_new_tokens = 0;
  auto r = f.gen.generate(prompt(4), s, stop, nullptr);
  EXPECT_TRUE(r.tokens.empty());
  EXPECT_EQ(r.reason, StopReason::MaxTokens);
  EXPECT_EQ(f.gen.cached_ids().size(), 4u);
}

TEST(Generator, EosEndsTheTextUnshown) {
  Fixture f;
  Sampler s(sampling(0));
  StopConditions stop;
  for (int32_t id = 0; id < tokenizer().vocab_size(); ++id) stop.eos_ids.push_back(id);
  std::string shown;
  auto r = f.gen.generate(prompt(4), s, stop, [&](std::string_view t) { shown += t; });
  EXPECT_EQ(r.reason, StopReason::Eos);
  EXPECT_EQ(r.tokens.size(), 1u);
  EXPECT_EQ(shown, "");
  EXPECT_EQ(r.text, "");
}

TEST(Generator, StopsWhenTheContextIsFull) {
  Fixture f;
  Sampler s(sampling());
  StopConditions stop;
  stop.max_new_tokens = 1000;
  auto r = f.gen.generate(prompt(10), s, stop, nullptr);
  EXPECT_EQ(r.reason, StopReason::ContextFull);
  EXPECT_EQ(f.gen.cache().length(), kContext);
  // 30 tokens fill the context; the 31st is sampled from the last position's logits.
  EXPECT_EQ(r.tokens.size(), static_cast<size_t>(kContext - 10 + 1));
  // A new prompt cannot fit any more: a named error, the cache untouched.
  EXPECT_THROW(f.gen.generate(prompt(1), s, stop, nullptr), Error);
  EXPECT_EQ(f.gen.cache().length(), kContext);
}

TEST(Generator, RefusesAPromptLongerThanTheContext) {
  Fixture f;
  Sampler s(sampling());
  try {
    f.gen.generate(prompt(kContext + 1), s, StopConditions{}, nullptr);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("context"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(f.gen.cached_ids().empty());
}

TEST(Generator, AnIdOutsideTheModelLeavesTheCacheAsItWas) {
  Fixture f(2 * kPrefillChunk);
  Sampler s(sampling());
  StopConditions stop;
  stop.max_new_tokens = 2;
  f.gen.generate(prompt(3), s, stop, nullptr);
  const auto before = f.gen.cached_ids();
  // The bad id is the last of two prefill chunks: the first chunk is in the cache when it throws.
  std::vector<int32_t> ids(kPrefillChunk + 2, 5);
  ids.back() = 100000;
  EXPECT_THROW(f.gen.generate(ids, s, stop, nullptr), Error);
  EXPECT_EQ(f.gen.cached_ids(), before);
  EXPECT_EQ(f.gen.cache().length(), static_cast<int64_t>(before.size()));
}

TEST(Generator, InterruptStopsAfterTheCurrentStep) {
  Fixture f;
  Sampler s(sampling());
  StopConditions stop;
  stop.max_new_tokens = 30;
  std::atomic<bool> flag{false};
  int calls = 0;
  auto r = f.gen.generate(
      prompt(4), s, stop,
      [&](std::string_view) {
        ++calls;
        flag = true;
      },
      &flag);
  EXPECT_EQ(r.reason, StopReason::Interrupted);
  EXPECT_EQ(calls, 1);
  EXPECT_LT(r.tokens.size(), 30u);
  EXPECT_EQ(f.gen.cached_ids().size(), 4 + r.tokens.size() - 1);
  // Set before the call: the prompt is not even prefilled, and the cache stays consistent.
  Fixture g;
  auto r2 = g.gen.generate(prompt(4), s, stop, nullptr, &flag);
  EXPECT_EQ(r2.reason, StopReason::Interrupted);
  EXPECT_TRUE(r2.tokens.empty());
  EXPECT_EQ(static_cast<int64_t>(g.gen.cached_ids().size()), g.gen.cache().length());
}

TEST(Generator, SameSeedSameTokensAfterTruncate) {
  Fixture f;
  StopConditions stop;
  stop.max_new_tokens = 12;
  Sampler a(sampling());
  auto r1 = f.gen.generate(prompt(6), a, stop, nullptr);
  f.gen.truncate(3);  // roll back into the prompt, then redo the rest
  Sampler b(sampling());
  const std::vector<int32_t> all = prompt(6);
  std::vector<int32_t> rest(all.begin() + 3, all.end());
  b.add_context(f.gen.cached_ids());
  auto r2 = f.gen.generate(rest, b, stop, nullptr);
  EXPECT_EQ(r1.tokens, r2.tokens);
}

// generate streams with special tokens left out; the reasoning tags are added tokens that are not
// special (DeepSeek's layout, ids 5 and 6), so they must reach the <think> splitter.
TEST(Generator, StreamedTextKeepsTheThinkTagsAndDropsSpecialTokens) {
  const Tokenizer& tok = tokenizer();
  ASSERT_EQ(tok.token_to_id("</think>"), std::optional<int32_t>(6));
  StreamDecoder dec(tok, /*skip_special=*/true);
  EXPECT_EQ(dec.push(6), "</think>");
  EXPECT_EQ(dec.push(tok.eos_id()), "");
}

TEST(ChatSession, AFailedTurnLeavesTheConversationAsItWas) {
  Fixture f;
  int renders = 0;
  ChatSession chat(f.gen, tokenizer(), [&](const Json& messages, bool) {
    if (++renders == 2) throw Error("template error");
    std::string text = tokenizer().bos_token();
    for (const Json& m : messages.as_array()) text += m.at("content").as_string() + "\n";
    return text;
  });
  StopConditions stop;
  stop.max_new_tokens = 3;
  Sampler s1(sampling());
  ChatTurn t1 = chat.send("the model", s1, stop, nullptr);
  EXPECT_EQ(t1.reused_tokens, 0);
  EXPECT_EQ(chat.history().size(), 2u);
  const auto cached = f.gen.cached_ids();
  Sampler s2(sampling());
  EXPECT_THROW(chat.send("the cache", s2, stop, nullptr), Error);
  EXPECT_EQ(chat.history().size(), 2u);
  EXPECT_EQ(f.gen.cached_ids(), cached);
  // The next turn starts from the cache: at least the first turn's prompt is reused.
  Sampler s3(sampling());
  ChatTurn t3 = chat.send("the cache", s3, stop, nullptr);
  EXPECT_GE(t3.reused_tokens, t1.prefilled_tokens);
  EXPECT_EQ(chat.history().size(), 4u);
  chat.reset();
  EXPECT_EQ(chat.history().size(), 0u);
  EXPECT_TRUE(f.gen.cached_ids().empty());
}

}  // namespace
}  // namespace dsv3

// BPE training on a small text: deterministic to the byte, the special-token layout, merges in
// frequency order (counted by hand below), and the result loads and round-trips.
#include <gtest/gtest.h>

#include <unistd.h>

#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "tokenizer/tokenizer.h"

namespace dsv3 {
namespace {

std::string temp_dir(const std::string& name) {
  const std::string d =
      std::string(DSV3_BINARY_DIR) + "/test_bpe_trainer." + std::to_string(::getpid()) + "." + name;
  make_dirs(d);
  return d;
}

TEST(BpeTrainer, DeterministicLayoutAndRoundTrip) {
  const std::string dir = temp_dir("a");
  const std::string input = path_join(dir, "in.txt");
  // Counted by hand over the pieces: (h, e) occurs 10 times ("The", " the" x5, " Then", " then",
  // "the", " other"), (Ġ, t) 9 times (" the" x5, " then", " to" x3): (h, e) is merge 0, id 263.
  write_file_atomic(
      input,
      "The cat saw the dog, the bird, the fish, the end, the sea. Then to then to to.\n"
      "\x1e\nthe other document\n\x1e\n");
  BpeTrainOptions opt;
  opt.inputs = {input};
  opt.vocab_size = 300;
  opt.progress = false;
  const BpeTrainReport r1 = train_bpe_tokenizer(opt, path_join(dir, "one"));
  const BpeTrainReport r2 = train_bpe_tokenizer(opt, path_join(dir, "two"));
  EXPECT_EQ(r1.documents, 2u);
  EXPECT_EQ(r1.merges, r2.merges);
  EXPECT_LT(r1.vocab_size, 300);  // a short text runs out of pairs seen twice
  EXPECT_EQ(read_file(path_join(dir, "one/tokenizer.json")),
            read_file(path_join(dir, "two/tokenizer.json")));
  EXPECT_EQ(read_file(path_join(dir, "one/tokenizer_config.json")),
            read_file(path_join(dir, "two/tokenizer_config.json")));

  const Json j = Json::parse(read_file(path_join(dir, "one/tokenizer.json")));
  const Json::Array& merges = j.at("model").at("merges").as_array();
  ASSERT_FALSE(merges.empty());
  EXPECT_EQ(merges[0].as_array()[0].as_string(), "h");
  EXPECT_EQ(merges[0].as_array()[1].as_string(), "e");
  EXPECT_EQ(j.at("added_tokens").size(), 7u);

  const Tokenizer t = Tokenizer::load(path_join(dir, "one"));
  EXPECT_EQ(t.vocab_size(), r1.vocab_size);
  EXPECT_EQ(t.id_to_token(7), "\xC4\x80");  // byte 0x00 is the first byte token
  EXPECT_EQ(t.token_to_id("he"), std::optional<int32_t>(263));
  const std::string text = "the sea, then <think>why</think> \xF0\x9F\x90\xB3 caf\xC3\xA9";
  EXPECT_EQ(t.decode(t.encode(text)), "<｜begin▁of▁sentence｜>" + text);
  EXPECT_EQ(t.encode("<｜User｜><｜Assistant｜>", false), (std::vector<int32_t>{3, 4}));
}

TEST(BpeTrainer, RejectsBadOptions) {
  BpeTrainOptions opt;
  opt.progress = false;
  opt.vocab_size = 100;
  opt.inputs = {"/nonexistent"};
  EXPECT_THROW(train_bpe_tokenizer(opt, temp_dir("b")), Error);  // vocabulary below 263
  opt.vocab_size = 1000;
  EXPECT_THROW(train_bpe_tokenizer(opt, temp_dir("b")), Error);  // missing input
}

}  // namespace
}  // namespace dsv3

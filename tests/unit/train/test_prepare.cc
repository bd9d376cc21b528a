// dsv3 data prepare's library: documents as the corpus files separate them, the hash split, the
// token stream (each document's encoding + EOS, in order), the same bytes on any thread count,
// shards cut anywhere, and the output folder's rules.
#include <gtest/gtest.h>

#include <filesystem>

#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "train/data.h"
#include "train/prepare.h"
#include "train/token_file.h"
#include "unit/tensor/temp_dir.h"

namespace dsv3 {
namespace {

using test::TempDir;
namespace fs = std::filesystem;

const std::string kTok = std::string(DSV3_SOURCE_DIR) + "/assets/tokenizers/dsv3-en-4k";

std::vector<std::string> docs_of(std::string_view text, DocSeparator sep) {
  std::vector<std::string> out;
  for_each_document(text, sep, [&](std::string_view d, size_t) { out.emplace_back(d); });
  return out;
}

using V = std::vector<std::string>;

TEST(Documents, RecordSeparators) {
  EXPECT_EQ(docs_of("one\ntwo\n\x1e\nthree\n\x1e\n", DocSeparator::Record),
            (V{"one\ntwo", "three"}));
  // CRLF, a stray separator (an empty document, skipped) and a last document without one.
  EXPECT_EQ(docs_of("a\r\n\x1e\r\n\x1e\n\nb\n\n", DocSeparator::Record), (V{"a", "\nb\n"}));
  EXPECT_EQ(docs_of("no separator here\n\nat all\n", DocSeparator::Record),
            (V{"no separator here\n\nat all"}));
  EXPECT_EQ(docs_of("x \x1e y\n", DocSeparator::Record), (V{"x \x1e y"}));  // not a line of its own
  EXPECT_EQ(docs_of("", DocSeparator::Record), V{});
}

TEST(Documents, BlankLinesAndLines) {
  EXPECT_EQ(docs_of("p1 a\np1 b\n\n \t\n\np2\n", DocSeparator::Blank), (V{"p1 a\np1 b", "p2"}));
  EXPECT_EQ(docs_of("l1\n\nl2\r\nl3", DocSeparator::Line), (V{"l1", "l2", "l3"}));
  EXPECT_EQ(parse_doc_separator("blank", "x"), DocSeparator::Blank);
  EXPECT_THROW(parse_doc_separator("para", "x"), Error);
}

TEST(ValSplit, StableAndNearTheFraction) {
  int val = 0;
  for (int i = 0; i < 20000; ++i) val += in_val_split("document " + std::to_string(i), 0.05);
  EXPECT_NEAR(val / 20000.0, 0.05, 0.006);
  EXPECT_EQ(in_val_split("same text", 0.3), in_val_split("same text", 0.3));
  EXPECT_FALSE(in_val_split("anything", 0.0));
}

std::string corpus(int n_docs) {
  std::string s;
  for (int i = 0; i < n_docs; ++i)
    s += "Document " + std::to_string(i) + ": the whale swam " + std::string(i % 7, 'o') +
         "n and on.\nSecond line " + std::to_string(i * 37) + ".\n\x1e\n";
  return s;
}

std::string read_all(const std::string& dir) {
  std::string all;
  for (const char* f : {"meta.json", "train-00000.bin", "val-00000.bin"})
    if (file_exists(path_join(dir, f))) all += read_file(path_join(dir, f));
  return all;
}

TEST(Prepare, TokensAreEachDocumentThenEos) {
  TempDir t;
  write_file_atomic(t.file("in.txt"), corpus(300));
  PrepareOptions opt;
  opt.tokenizer = kTok;
  opt.inputs = {t.file("in.txt")};
  opt.out_dir = t.file("data");
  opt.val_fraction = 0.1;
  opt.progress = false;
  ThreadPool pool(2);
  const PrepareReport r = prepare_dataset(opt, pool);
  EXPECT_EQ(r.train.documents + r.val.documents, 300);
  EXPECT_GT(r.val.documents, 10);
  EXPECT_LT(r.val.documents, 60);

  // The expected streams, document by document, from the tokenizer directly.
  const Tokenizer tok = Tokenizer::load(kTok);
  std::vector<int32_t> want_train, want_val;
  for (const std::string& d : docs_of(corpus(300), DocSeparator::Record)) {
    auto& dst = in_val_split(d, 0.1) ? want_val : want_train;
    const auto ids = tok.encode(d, false);
    dst.insert(dst.end(), ids.begin(), ids.end());
    dst.push_back(tok.eos_id());
  }
  TokenDataset data(opt.out_dir, tok.vocab_size());
  EXPECT_EQ(data.eos_id(), tok.eos_id());
  EXPECT_EQ(data.tokenizer_hash(), tokenizer_file_hash(kTok));
  EXPECT_NO_THROW(data.check_tokenizer(kTok));
  EXPECT_THROW(
      data.check_tokenizer(std::string(DSV3_SOURCE_DIR) + "/assets/tokenizers/dsv3-en-16k"), Error);
  std::vector<int32_t> got(static_cast<size_t>(data.train().size()));
  data.train().copy(0, data.train().size(), got.data());
  EXPECT_EQ(got, want_train);
  got.resize(static_cast<size_t>(data.val().size()));
  data.val().copy(0, data.val().size(), got.data());
  EXPECT_EQ(got, want_val);
}

TEST(Prepare, SameBytesOnAnyThreadCountAndShardSize) {
  TempDir t;
  write_file_atomic(t.file("a.txt"), corpus(200));
  write_file_atomic(t.file("b.txt"), "A plain text without separators.\nTwo lines.\n");
  write_file_atomic(t.file("v.txt"), corpus(5));
  PrepareOptions opt;
  opt.tokenizer = kTok;
  opt.inputs = {t.file("a.txt"), t.file("b.txt")};
  opt.valid = {t.file("v.txt")};
  opt.progress = false;
  std::string first;
  for (int threads : {1, 3}) {
    ThreadPool pool(threads);
    opt.out_dir = t.file("out" + std::to_string(threads));
    const PrepareReport r = prepare_dataset(opt, pool);
    EXPECT_EQ(r.train.documents, 201);  // b.txt is one document
    EXPECT_EQ(r.val.documents, 5);
    if (first.empty())
      first = read_all(opt.out_dir);
    else
      EXPECT_EQ(read_all(opt.out_dir), first);
  }
  // Small shards: the same stream, cut in many files.
  ThreadPool pool(2);
  opt.out_dir = t.file("small");
  opt.shard_tokens = 333;
  const PrepareReport r = prepare_dataset(opt, pool);
  EXPECT_GT(r.train.shards.size(), 5u);
  TokenDataset big(t.file("out1")), small(t.file("small"));
  ASSERT_EQ(big.train().size(), small.train().size());
  std::vector<int32_t> x(static_cast<size_t>(big.train().size())), y(x.size());
  big.train().copy(0, big.train().size(), x.data());
  small.train().copy(0, small.train().size(), y.data());
  EXPECT_EQ(x, y);
}

TEST(Prepare, OutputFolderRules) {
  TempDir t;
  write_file_atomic(t.file("in.txt"), corpus(50));
  PrepareOptions opt;
  opt.tokenizer = kTok;
  opt.inputs = {t.file("in.txt")};
  opt.out_dir = t.file("data");
  opt.val_fraction = 0;
  opt.shard_tokens = 100;
  opt.progress = false;
  ThreadPool pool(1);
  const PrepareReport many = prepare_dataset(opt, pool);
  ASSERT_GT(many.train.shards.size(), 3u);
  write_file_atomic(t.file("data/notes.txt"), "mine");
  try {
    prepare_dataset(opt, pool);
    FAIL() << "wrote into a non-empty folder";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is not empty"), std::string::npos);
  }
  // --force: fewer shards now; the stale ones go, the user's file stays.
  opt.force = true;
  opt.shard_tokens = 1 << 20;
  prepare_dataset(opt, pool);
  EXPECT_TRUE(file_exists(t.file("data/train-00000.bin")));
  EXPECT_FALSE(file_exists(t.file("data/train-00001.bin")));
  EXPECT_TRUE(file_exists(t.file("data/notes.txt")));
  EXPECT_NO_THROW(TokenDataset(t.file("data")));
  // A bad input is found before anything is removed.
  opt.inputs = {t.file("missing.txt")};
  EXPECT_THROW(prepare_dataset(opt, pool), Error);
  EXPECT_TRUE(file_exists(t.file("data/meta.json")));
  // The same file as input and validation text.
  opt.inputs = {t.file("in.txt")};
  opt.valid = {t.path() + "/./in.txt"};
  EXPECT_THROW(prepare_dataset(opt, pool), Error);
  opt.valid.clear();
  // Every document in val leaves an empty train split: an error, not an empty data set.
  opt.val_fraction = 0.999999;
  EXPECT_THROW(prepare_dataset(opt, pool), Error);
}

}  // namespace
}  // namespace dsv3

// TokenDataset, BatchSampler and ValWindows on data folders written here shard by shard (so the
// tests control every byte): damaged folders fail at open with a named error, windows are real
// slices of the stream, a restored sampler draws the same windows as the one it was saved from.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>

#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "train/data.h"
#include "train/token_file.h"
#include "unit/tensor/temp_dir.h"

namespace dsv3 {
namespace {

using test::TempDir;

// Writes a data folder whose train split is `train` cut into shards of `shard` tokens and whose
// val split is `val` (one shard), as dsv3 data prepare lays it out.
void make_dataset(const std::string& dir, const std::vector<uint32_t>& train,
                  const std::vector<uint32_t>& val, uint32_t vocab, size_t shard = 1000) {
  auto split = [&](const char* name, const std::vector<uint32_t>& t, size_t per) {
    Json shards = Json::array();
    for (size_t at = 0, i = 0; at < t.size(); at += per, ++i) {
      const std::string file = std::string(name) + "-0000" + std::to_string(i) + ".bin";
      const size_t n = std::min(per, t.size() - at);
      const uint64_t sum = write_shard(path_join(dir, file), {t.data() + at, n}, vocab);
      Json s = Json::object();
      s["file"] = file;
      s["tokens"] = static_cast<int64_t>(n);
      s["fnv1a64"] = hex64(sum);
      shards.push_back(std::move(s));
    }
    Json j = Json::object();
    j["documents"] = 1;
    j["tokens"] = static_cast<int64_t>(t.size());
    j["shards"] = std::move(shards);
    return j;
  };
  Json meta = Json::object();
  meta["format"] = "dsv3-tokens";
  meta["version"] = 1;
  meta["dtype"] = "uint32";
  Json tok = Json::object();
  tok["path"] = "/nowhere/tokenizer.json";
  tok["fnv1a64"] = hex64(fnv1a64("{}", 2));
  meta["tokenizer"] = std::move(tok);
  meta["vocab_size"] = static_cast<int64_t>(vocab);
  meta["eos_id"] = 1;
  meta["train"] = split("train", train, shard);
  meta["val"] = split("val", val, val.size() ? val.size() : 1);
  write_file_atomic(path_join(dir, "meta.json"), meta.dump(2));
}

// Tokens equal to their position (mod vocab): a window shows where it was taken from.
std::vector<uint32_t> iota_tokens(size_t n, uint32_t vocab = 1u << 30) {
  std::vector<uint32_t> t(n);
  for (size_t i = 0; i < n; ++i) t[i] = static_cast<uint32_t>(i % vocab);
  return t;
}

std::string open_error(const std::string& dir, int64_t model_vocab = 0) {
  try {
    TokenDataset d(dir, model_vocab);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void patch_file(const std::string& path, size_t offset, char byte) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(offset));
  f.put(byte);
}

TEST(TokenDataset, OpensAndReadsAcrossShards) {
  TempDir t;
  const auto train = iota_tokens(2500), val = iota_tokens(300);
  make_dataset(t.path(), train, val, 1u << 30);
  TokenDataset d(t.path());
  EXPECT_EQ(d.train().size(), 2500);
  EXPECT_EQ(d.val().size(), 300);
  EXPECT_EQ(d.train_info().shards.size(), 3u);
  EXPECT_EQ(d.max_id(), 2499);
  std::vector<int32_t> got(700);
  d.train().copy(800, 700, got.data());  // spans shards 0, 1 and 2
  for (int i = 0; i < 700; ++i) ASSERT_EQ(got[i], 800 + i);
}

TEST(TokenDataset, CorruptShardIsNamed) {
  TempDir t;
  make_dataset(t.path(), iota_tokens(2000), iota_tokens(10), 1u << 30);
  patch_file(t.file("train-00001.bin"), kShardHeaderBytes + 17, 0x5a);
  const std::string e = open_error(t.path());
  EXPECT_NE(e.find("train-00001.bin is corrupt"), std::string::npos) << e;
}

TEST(TokenDataset, TruncatedShardIsNamed) {
  TempDir t;
  make_dataset(t.path(), iota_tokens(2000), iota_tokens(10), 1u << 30);
  std::filesystem::resize_file(t.file("train-00000.bin"), kShardHeaderBytes + 4 * 999);
  std::string e = open_error(t.path());
  EXPECT_NE(e.find("train-00000.bin is truncated"), std::string::npos) << e;
  std::filesystem::resize_file(t.file("train-00000.bin"), 10);  // not even a header
  e = open_error(t.path());
  EXPECT_NE(e.find("train-00000.bin is truncated"), std::string::npos) << e;
}

TEST(TokenDataset, OtherDamageIsNamed) {
  TempDir t;
  make_dataset(t.path(), iota_tokens(2000), iota_tokens(10), 1u << 30);
  {  // bytes after the last token
    std::ofstream f(t.file("val-00000.bin"), std::ios::app | std::ios::binary);
    f << "xyz";
  }
  EXPECT_NE(open_error(t.path()).find("3 bytes after its last token"), std::string::npos);
  make_dataset(t.path(), iota_tokens(2000), iota_tokens(10), 1u << 30);
  patch_file(t.file("train-00000.bin"), 0, 'X');
  EXPECT_NE(open_error(t.path()).find("does not start with the magic"), std::string::npos);
  make_dataset(t.path(), iota_tokens(2000), iota_tokens(10), 1u << 30);
  std::filesystem::remove(t.file("train-00001.bin"));
  EXPECT_NE(open_error(t.path()).find("train-00001.bin"), std::string::npos);
  std::filesystem::remove(t.file("meta.json"));
  EXPECT_NE(open_error(t.path()).find("has no meta.json"), std::string::npos);
}

TEST(TokenDataset, MetaMismatchesAreNamed) {
  TempDir t;
  auto edit = [&](const std::function<void(Json&)>& fn) {
    make_dataset(t.path(), iota_tokens(2000), iota_tokens(10), 1u << 30);
    Json m = Json::parse(read_file(t.file("meta.json")));
    fn(m);
    write_file_atomic(t.file("meta.json"), m.dump());
    return open_error(t.path());
  };
  EXPECT_NE(edit([](Json& m) {
              m["train"]["shards"].as_array()[0]["tokens"] = 999;
              m["train"]["tokens"] = 1999;
            }).find("holds 1000 tokens, meta.json says 999"),
            std::string::npos);
  EXPECT_NE(edit([](Json& m) {
              m["train"]["shards"].as_array()[0]["file"] = "../x.bin";
            }).find("not a plain file name"),
            std::string::npos);
  EXPECT_NE(edit([](Json& m) { m["train"]["tokens"] = 5; }).find("but its shards hold 2000"),
            std::string::npos);
  EXPECT_NE(edit([](Json& m) { m["vocab_size"] = 77; }).find("vocabulary of 1073741824"),
            std::string::npos);
  EXPECT_NE(edit([](Json& m) { m["version"] = 2; }).find("version 2"), std::string::npos);
  EXPECT_NE(edit([](Json& m) {
              m["train"]["shards"].as_array()[1]["fnv1a64"] = "0123456789abcdef";
            }).find("is corrupt"),
            std::string::npos);
}

TEST(TokenDataset, IdsOutsideTheVocabularyAreRejected) {
  TempDir t;
  make_dataset(t.path(), iota_tokens(2000, 500), iota_tokens(10), 500);
  EXPECT_EQ(open_error(t.path(), 500), "");
  const std::string e = open_error(t.path(), 300);
  EXPECT_NE(e.find("holds token id 300"), std::string::npos) << e;
  EXPECT_NE(e.find("vocabulary has 300 ids"), std::string::npos) << e;
  // An id at or above the shard's own vocabulary (a shard written wrongly) is corrupt data.
  std::vector<uint32_t> bad = iota_tokens(20);
  bad[7] = 600;
  make_dataset(t.path(), bad, iota_tokens(10), 500);
  EXPECT_NE(open_error(t.path()).find("holds id 600 at token 7"), std::string::npos);
}

TEST(BatchSampler, WindowsAreSlicesDrawnDeterministically) {
  TempDir t;
  make_dataset(t.path(), iota_tokens(5000), iota_tokens(10), 1u << 30, 777);
  TokenDataset d(t.path());
  BatchSampler a(d, 16, 42), b(d, 16, 42), c(d, 16, 43);
  std::vector<int32_t> wa, wb, wc;
  std::set<int32_t> starts;
  for (int step = 0; step < 50; ++step) {
    a.next(8, wa);
    b.next(8, wb);
    c.next(8, wc);
    ASSERT_EQ(wa.size(), 8u * 17);
    EXPECT_EQ(wa, wb);
    EXPECT_NE(wa, wc);
    for (int w = 0; w < 8; ++w) {
      const int32_t s = wa[w * 17];
      starts.insert(s);
      ASSERT_LE(s, 5000 - 17);
      for (int i = 0; i < 17; ++i) ASSERT_EQ(wa[w * 17 + i], s + i);  // contiguous, across shards
    }
  }
  EXPECT_EQ(a.windows_drawn(), 400);
  EXPECT_GT(starts.size(), 350u);  // 400 draws from 4984 starts: few repeats
}

TEST(BatchSampler, CoversEveryStart) {
  // 4 tokens, windows of 3: starts 0 and 1 only, both drawn.
  TokenStream s;
  const std::vector<uint32_t> t = {10, 11, 12, 13};
  s.append(t);
  BatchSampler smp(s, 2, 7);
  std::vector<int32_t> w;
  smp.next(200, w);
  int seen[2] = {0, 0};
  for (int i = 0; i < 200; ++i) ++seen[w[i * 3] - 10];
  EXPECT_GT(seen[0], 60);
  EXPECT_GT(seen[1], 60);
  EXPECT_THROW(BatchSampler(s, 4, 7), Error);  // 5 tokens needed
}

TEST(BatchSampler, RestoreDrawsTheSameWindows) {
  TempDir t;
  make_dataset(t.path(), iota_tokens(5000), iota_tokens(10), 1u << 30);
  TokenDataset d(t.path());
  BatchSampler a(d, 32, 9);
  std::vector<int32_t> w, after_a, after_b;
  for (int i = 0; i < 3; ++i) a.next(5, w);
  const std::string blob = a.state();
  EXPECT_EQ(blob.size(), 104u);
  a.next(7, after_a);

  BatchSampler b(d, 32, 9);
  b.restore(blob);
  EXPECT_EQ(b.windows_drawn(), 15);
  b.next(7, after_b);
  EXPECT_EQ(after_a, after_b);
  EXPECT_EQ(b.state(), a.state());

  // The JSON form restores the same state.
  BatchSampler c(d, 32, 9);
  c.restore_json(Json::parse(Json(a.state_json()).dump()));
  EXPECT_EQ(c.state(), a.state());
  Json broken = a.state_json();
  broken["rng2"] = "xyz";
  EXPECT_THROW(c.restore_json(broken), Error);

  BatchSampler other_len(d, 31, 9), other_seed(d, 32, 10);
  EXPECT_THROW(other_len.restore(blob), Error);
  EXPECT_THROW(other_seed.restore(blob), Error);
  EXPECT_THROW(b.restore(blob.substr(0, 50)), Error);
  TempDir t2;
  make_dataset(t2.path(), iota_tokens(5000, 4000), iota_tokens(10), 1u << 30);
  TokenDataset d2(t2.path());
  BatchSampler other_data(d2, 32, 9);
  try {
    other_data.restore(blob);
    FAIL() << "restored a state saved on other data";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("other training data"), std::string::npos);
  }
}

TEST(ValWindows, ConsecutiveWindowsScoreEveryTokenOnce) {
  TokenStream s;
  const std::vector<uint32_t> t = iota_tokens(103);
  s.append({t.data(), 50});
  s.append({t.data() + 50, 53});
  ValWindows all(s, 10);
  EXPECT_EQ(all.count(), 10);  // (103 - 1) / 10
  std::vector<int32_t> w;
  all.get(0, 10, w);
  for (int i = 0; i < 10; ++i)
    for (int j = 0; j < 11; ++j) ASSERT_EQ(w[i * 11 + j], i * 10 + j);
  ValWindows first3(s, 10, 3);
  EXPECT_EQ(first3.count(), 3);
  ValWindows one(s, 102);
  EXPECT_EQ(one.count(), 1);
  EXPECT_EQ(ValWindows(s, 103).count(), 0);
  EXPECT_THROW(first3.get(2, 2, w), Error);
}

}  // namespace
}  // namespace dsv3

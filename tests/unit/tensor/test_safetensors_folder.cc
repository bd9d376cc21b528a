// TensorStore over the three folder layouts, index validation, and ShardedWriter's output read
// back (shard packing, index contents).
#include "tensor/safetensors_folder.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <numeric>

#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "temp_dir.h"

namespace dsv3 {
namespace {

// A tensor of n F32 values i + base.
struct Values {
  std::vector<float> v;
  Values(size_t n, float base) : v(n) { std::iota(v.begin(), v.end(), base); }
  std::span<const std::byte> bytes() const { return std::as_bytes(std::span(v)); }
};

void write_one(const std::string& path,
               const std::vector<std::pair<std::string, const Values*>>& ts) {
  SafetensorsWriter w;
  for (const auto& [name, vals] : ts)
    w.add_bytes(name, DType::F32, {static_cast<int64_t>(vals->v.size())}, vals->bytes());
  w.write(path);
}

void expect_error(const std::string& dir, std::vector<std::string> parts) {
  try {
    TensorStore::open(dir);
    ADD_FAILURE() << "opened; expected an error containing " << parts.at(0);
  } catch (const Error& e) {
    for (const auto& p : parts)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos)
          << "want '" << p << "' in: " << e.what();
  }
}

const Values kA(3, 0), kB(5, 10), kC(2, 100);

TEST(TensorStore, SingleFile) {
  test::TempDir d;
  write_one(d.file("model.safetensors"), {{"a", &kA}, {"b", &kB}});
  write_one(d.file("other.safetensors"), {{"c", &kC}});  // ignored: model.safetensors wins
  const TensorStore s = TensorStore::open(d.path());
  EXPECT_EQ(s.names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(s.total_bytes(), 32u);
  auto b = s.find("b");
  ASSERT_TRUE(b);
  EXPECT_EQ(*b->file, d.file("model.safetensors"));
  ASSERT_EQ(b->data.size(), 20u);
  EXPECT_EQ(std::memcmp(b->data.data(), kB.v.data(), 20), 0);
  EXPECT_FALSE(s.find("c"));
}

TEST(TensorStore, AllSafetensorsFilesWithoutIndex) {
  test::TempDir d;
  write_one(d.file("x.safetensors"), {{"a", &kA}});
  write_one(d.file("y.safetensors"), {{"b", &kB}, {"c", &kC}});
  write_file_atomic(d.file("notes.txt"), "not a tensor file");
  const TensorStore s = TensorStore::open(d.path());
  EXPECT_EQ(s.names(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(*s.find("c")->file, d.file("y.safetensors"));

  write_one(d.file("z.safetensors"), {{"a", &kA}});
  expect_error(d.path(), {"tensor \"a\" is in two shards", "x.safetensors", "z.safetensors"});
}

TEST(TensorStore, EmptyOrMissingFolder) {
  test::TempDir d;
  expect_error(d.path(), {"no model.safetensors.index.json"});
  expect_error(d.file("nope"), {"is not a directory"});
}

std::string index_json(const std::string& weight_map) {
  return "{\"metadata\":{\"total_size\":0},\"weight_map\":{" + weight_map + "}}";
}

TEST(TensorStore, IndexValidation) {
  test::TempDir d;
  write_one(d.file("s1.safetensors"), {{"a", &kA}, {"b", &kB}});
  write_one(d.file("s2.safetensors"), {{"c", &kC}});
  const std::string idx = d.file("model.safetensors.index.json");

  write_file_atomic(
      idx, index_json(R"("a":"s1.safetensors","b":"s1.safetensors","c":"s2.safetensors")"));
  {  // closed before s2 is rewritten below: a file mapped as an input is never written over
    const TensorStore ok = TensorStore::open(d.path());
    EXPECT_EQ(ok.names().size(), 3u);
    EXPECT_EQ(*ok.find("c")->file, d.file("s2.safetensors"));
  }

  write_file_atomic(
      idx, index_json(R"("a":"s1.safetensors","b":"s1.safetensors","c":"s3.safetensors")"));
  expect_error(d.path(), {"shard s3.safetensors is missing"});

  write_file_atomic(
      idx, index_json(R"("a":"s1.safetensors","b":"s2.safetensors","c":"s2.safetensors")"));
  expect_error(d.path(), {"tensor \"b\" should be in s2.safetensors", "s1.safetensors"});

  write_file_atomic(
      idx,
      index_json(
          R"("a":"s1.safetensors","b":"s1.safetensors","c":"s2.safetensors","d":"s2.safetensors")"));
  expect_error(d.path(), {"tensor \"d\"", "no shard has it"});

  write_file_atomic(idx, index_json(R"("a":"s1.safetensors","c":"s2.safetensors")"));
  expect_error(d.path(), {"tensor \"b\"", "not listed in the weight_map"});

  write_file_atomic(idx, index_json(R"("a":"../s1.safetensors")"));
  expect_error(d.path(), {"not a plain file name"});

  write_file_atomic(idx, index_json(R"("a":1)"));
  expect_error(d.path(), {"weight_map entry \"a\""});

  write_file_atomic(idx, "{\"metadata\":{}}");
  expect_error(d.path(), {"missing \"weight_map\""});

  write_file_atomic(idx, index_json(R"("a":"s1.safetensors","a":"s1.safetensors")"));
  expect_error(d.path(), {"duplicate key \"a\""});

  // A tensor in two shards, both listed shards.
  write_one(d.file("s2.safetensors"), {{"c", &kC}, {"a", &kA}});
  write_file_atomic(
      idx, index_json(R"("a":"s1.safetensors","b":"s1.safetensors","c":"s2.safetensors")"));
  expect_error(d.path(), {"tensor \"a\" is in two shards"});
}

TEST(ShardedWriter, SplitsIntoShardsWithIndex) {
  test::TempDir d;
  const Values big(8, 0);  // 32 bytes
  ShardedWriter w(39);     // shards: {a(12)+b(20)=32}, {big(32)}, {c(8)}: 32+8 > 39
  w.add_bytes("a", DType::F32, {3}, kA.bytes());
  w.add_bytes("b", DType::F32, {5}, kB.bytes());
  w.add("big", DType::F32, {8}, [&](std::byte* dst) { std::memcpy(dst, big.v.data(), 32); });
  w.add_bytes("c", DType::F32, {2}, kC.bytes());
  w.set_metadata("format", "pt");
  EXPECT_EQ(w.data_bytes(), 72u);
  w.write(d.path());

  for (const char* f : {"model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                        "model-00003-of-00003.safetensors", "model.safetensors.index.json"})
    EXPECT_TRUE(file_exists(d.file(f))) << f;
  EXPECT_FALSE(file_exists(d.file("model.safetensors")));
  const Json index = Json::parse(read_file(d.file("model.safetensors.index.json")));
  EXPECT_EQ(index.at("metadata").at("total_size").as_int(), 72);
  EXPECT_EQ(index.at("weight_map").at("big").as_string(), "model-00002-of-00003.safetensors");
  EXPECT_EQ(SafetensorsFile(d.file("model-00003-of-00003.safetensors"))
                .metadata()
                .at("format")
                .as_string(),
            "pt");

  const TensorStore s = TensorStore::open(d.path());
  EXPECT_EQ(s.names(), (std::vector<std::string>{"a", "b", "big", "c"}));
  EXPECT_EQ(s.total_bytes(), 72u);
  EXPECT_EQ(std::memcmp(s.find("big")->data.data(), big.v.data(), 32), 0);
  EXPECT_EQ(std::memcmp(s.find("c")->data.data(), kC.v.data(), 8), 0);
}

TEST(ShardedWriter, OneShardWritesModelSafetensorsAndDropsStaleIndex) {
  test::TempDir d;
  write_file_atomic(d.file("model.safetensors.index.json"),
                    index_json(R"("x":"gone.safetensors")"));
  ShardedWriter w;
  w.add_bytes("a", DType::F32, {3}, kA.bytes());
  w.write(d.path());
  EXPECT_TRUE(file_exists(d.file("model.safetensors")));
  EXPECT_FALSE(file_exists(d.file("model.safetensors.index.json")));
  EXPECT_EQ(TensorStore::open(d.path()).names(), std::vector<std::string>{"a"});
}

}  // namespace
}  // namespace dsv3

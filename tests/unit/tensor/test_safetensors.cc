// safetensors reader: every RELIABILITY §1 rule has a file built byte by byte here that must be
// refused with an Error naming the file (and the tensor); valid edge cases must load. Writer:
// round trip through the reader, streaming order, atomicity.
#include "tensor/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "base/error.h"
#include "base/file.h"
#include "temp_dir.h"

namespace dsv3 {
namespace {

const std::string kSource = "bad.safetensors";

// 8-byte little-endian length (the header's, unless `len` overrides it), header, data bytes.
std::vector<std::byte> make_file(const std::string& header, size_t data_bytes,
                                 std::optional<uint64_t> len = std::nullopt) {
  const uint64_t n = len.value_or(header.size());
  std::vector<std::byte> out(8 + header.size() + data_bytes, std::byte{0});
  for (int i = 0; i < 8; ++i) out[i] = static_cast<std::byte>((n >> (8 * i)) & 0xFF);
  std::memcpy(out.data() + 8, header.data(), header.size());
  for (size_t i = 0; i < data_bytes; ++i) out[8 + header.size() + i] = static_cast<std::byte>(i);
  return out;
}

SafetensorsHeader parse(const std::vector<std::byte>& f) {
  return parse_safetensors_header(f, kSource);
}

// The error must name the file and contain each of `parts` (the tensor, the failed check).
void expect_error(const std::vector<std::byte>& f, std::vector<std::string> parts) {
  try {
    parse(f);
    ADD_FAILURE() << "accepted; expected an error containing " << parts.at(0);
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(kSource), std::string::npos) << msg;
    for (const auto& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos) << "want '" << p << "' in: " << msg;
  }
}

std::string entry(const std::string& name, const std::string& dtype, const std::string& shape,
                  uint64_t begin, uint64_t end) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
         ",\"data_offsets\":[" + std::to_string(begin) + "," + std::to_string(end) + "]}";
}

TEST(SafetensorsRead, ShorterThanEightBytes) {
  expect_error({}, {"shorter than the 8-byte"});
  expect_error(std::vector<std::byte>(7), {"7 bytes"});
}

TEST(SafetensorsRead, HeaderLengthTooLargeOrPastEnd) {
  expect_error(make_file("{}", 0, 100'000'001), {"exceeds the limit"});
  expect_error(make_file("{}", 0, ~uint64_t{0}), {"exceeds the limit"});  // would overflow 8 + n
  expect_error(make_file("{}", 0, 3), {"runs past the end"});
  expect_error(make_file("{}", 0, 99'999'999), {"runs past the end"});
}

TEST(SafetensorsRead, HeaderNotUtf8) {
  expect_error(make_file("{\"a\xff\":{}}", 0), {"not valid UTF-8", "byte 3"});
  expect_error(make_file("{\"\xc0\xaf\":{}}", 0), {"not valid UTF-8"});          // overlong '/'
  expect_error(make_file("{\"\xed\xa0\x80\":{}}", 0), {"not valid UTF-8"});      // surrogate
  expect_error(make_file("{\"\xe2\x82\":{}}", 0), {"not valid UTF-8"});          // truncated
  expect_error(make_file("{\"\xf4\x90\x80\x80\":{}}", 0), {"not valid UTF-8"});  // > U+10FFFF
}

TEST(SafetensorsRead, HeaderNotJsonOrNotObject) {
  expect_error(make_file("{\"a\":", 0), {"JSON error"});
  expect_error(make_file("", 0), {"JSON error"});
  expect_error(make_file("[1,2]", 0), {"must be a JSON object"});
  expect_error(make_file("\"x\"", 0), {"must be a JSON object"});
  expect_error(make_file("{} {}", 0), {"JSON error"});
}

TEST(SafetensorsRead, AcceptsSurroundingWhitespaceAndUtf8Names) {
  const auto h = parse(make_file(" \n\t{" + entry("wé", "F32", "[1]", 0, 4) + "}   \r\n", 4));
  ASSERT_EQ(h.tensors.size(), 1u);
  EXPECT_EQ(h.tensors[0].name, "wé");
}

TEST(SafetensorsRead, MetadataMustBeObjectOfStrings) {
  expect_error(make_file("{\"__metadata__\":[1]}", 0), {"__metadata__ must be an object"});
  expect_error(make_file("{\"__metadata__\":{\"format\":\"pt\",\"n\":1}}", 0),
               {"__metadata__ value \"n\" must be a string"});
  const auto h = parse(make_file("{\"__metadata__\":{\"format\":\"pt\"}}", 0));
  EXPECT_EQ(h.metadata.at("format").as_string(), "pt");
  EXPECT_TRUE(h.tensors.empty());
}

TEST(SafetensorsRead, EntryShape) {
  expect_error(make_file("{\"w\":5}", 0), {"tensor \"w\"", "must be an object"});
  expect_error(make_file("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
               {"tensor \"w\"", "missing field \"dtype\""});
  expect_error(make_file("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4),
               {"tensor \"w\"", "missing field \"shape\""});
  expect_error(make_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4),
               {"tensor \"w\"", "missing field \"data_offsets\""});
  expect_error(
      make_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4),
      {"tensor \"w\"", "unexpected field \"x\""});
  expect_error(make_file("{\"w\":{\"dtype\":3,\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
               {"tensor \"w\"", "dtype must be a string"});
  expect_error(make_file("{\"w\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}}", 4),
               {"tensor \"w\"", "shape must be an array"});
  expect_error(make_file("{" + entry("w", "F32", "[1.5]", 0, 4) + "}", 4),
               {"tensor \"w\"", "shape dimension must be an integer"});
  expect_error(make_file("{" + entry("w", "F32", "[\"1\"]", 0, 4) + "}", 4),
               {"tensor \"w\"", "shape dimension must be an integer"});
  expect_error(make_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 4),
               {"tensor \"w\"", "data_offsets must be an array [begin, end]"});
  expect_error(make_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0.0,4]}}", 4),
               {"tensor \"w\"", "begin must be an integer"});
  expect_error(make_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,1e30]}}", 4),
               {"tensor \"w\"", "end must be an integer"});
  expect_error(make_file("{" + entry("", "F32", "[1]", 0, 4) + "}", 4), {"empty name"});
}

TEST(SafetensorsRead, UnknownDType) {
  expect_error(make_file("{" + entry("w", "F8_E4M3FNUZ", "[1]", 0, 1) + "}", 1),
               {"tensor \"w\"", "unknown dtype \"F8_E4M3FNUZ\""});
  expect_error(make_file("{" + entry("w", "f32", "[1]", 0, 4) + "}", 4), {"unknown dtype \"f32\""});
}

TEST(SafetensorsRead, NegativeDimsAndOffsets) {
  expect_error(make_file("{" + entry("w", "F32", "[-1,2]", 0, 4) + "}", 4),
               {"tensor \"w\"", "shape dimension is negative"});
  expect_error(make_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4),
               {"tensor \"w\"", "begin is negative"});
  // -1 as an unsigned 64-bit number (2^64-1) does not fit in int64: not an integer to us.
  expect_error(make_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,"
                         "18446744073709551615]}}",
                         4),
               {"tensor \"w\"", "end must be an integer"});
}

TEST(SafetensorsRead, EndBeforeBeginAndSizeMismatch) {
  expect_error(make_file("{" + entry("w", "F32", "[1]", 4, 0) + "}", 4),
               {"tensor \"w\"", "end 0 < begin 4"});
  expect_error(make_file("{" + entry("w", "F32", "[2]", 0, 4) + "}", 4),
               {"tensor \"w\"", "span 4 bytes", "needs 8"});
  expect_error(make_file("{" + entry("w", "BF16", "[3]", 0, 4) + "}", 4), {"needs 6"});
}

TEST(SafetensorsRead, ShapeProductOverflow) {
  expect_error(make_file("{" + entry("w", "F32", "[4294967296,4294967296,16]", 0, 0) + "}", 0),
               {"tensor \"w\"", "overflow"});
  // 2^61 F32 elements: the element count fits, the byte count does not.
  expect_error(make_file("{" + entry("w", "F32", "[2305843009213693952]", 0, 0) + "}", 0),
               {"tensor \"w\"", "overflow"});
}

TEST(SafetensorsRead, GapsOverlapsAndStart) {
  expect_error(
      make_file("{" + entry("a", "F32", "[1]", 0, 4) + "," + entry("b", "F32", "[1]", 8, 12) + "}",
                12),
      {"tensor \"b\"", "gap", "\"a\""});
  expect_error(
      make_file("{" + entry("a", "F32", "[2]", 0, 8) + "," + entry("b", "F32", "[2]", 4, 12) + "}",
                12),
      {"tensor \"b\"", "overlapping", "\"a\""});
  expect_error(make_file("{" + entry("a", "F32", "[1]", 4, 8) + "}", 8),
               {"tensor \"a\"", "gap", "data start"});
  // The same range twice is an overlap too.
  expect_error(
      make_file("{" + entry("a", "F32", "[1]", 0, 4) + "," + entry("b", "F32", "[1]", 0, 4) + "}",
                4),
      {"overlapping"});
}

TEST(SafetensorsRead, TrailingBytesAndShortData) {
  expect_error(make_file("{" + entry("a", "F32", "[1]", 0, 4) + "}", 5), {"1 trailing bytes"});
  expect_error(make_file("{}", 3), {"3 trailing bytes"});
  expect_error(make_file("{" + entry("a", "F32", "[2]", 0, 8) + "}", 7),
               {"tensor \"a\"", "ends at 8", "data section is 7 bytes"});
}

TEST(SafetensorsRead, DuplicateNamesAreAnError) {
  expect_error(
      make_file("{" + entry("a", "F32", "[1]", 0, 4) + "," + entry("a", "F32", "[1]", 4, 8) + "}",
                8),
      {"duplicate key \"a\""});
}

TEST(SafetensorsRead, AcceptsEmptyTensorsScalarsAndNoTensors) {
  EXPECT_TRUE(parse(make_file("{}", 0)).tensors.empty());
  // Tensors listed out of data order, a [2,0] tensor at the same offset as a real one, a scalar.
  const std::string header =
      "{" + entry("s", "F64", "[]", 4, 12) + "," + entry("z", "F32", "[2,0]", 4, 4) + "," +
      entry("a", "I32", "[1]", 0, 4) + "," + entry("end0", "U8", "[0]", 12, 12) + "}";
  const auto h = parse(make_file(header, 12));
  ASSERT_EQ(h.tensors.size(), 4u);
  EXPECT_EQ(h.tensors[0].name, "s");
  EXPECT_EQ(h.tensors[0].shape, Shape{});
  EXPECT_EQ(h.tensors[0].offset, 4u);
  EXPECT_EQ(h.tensors[0].nbytes, 8u);
  EXPECT_EQ(h.tensors[1].shape, (Shape{2, 0}));
  EXPECT_EQ(h.tensors[1].nbytes, 0u);
  EXPECT_EQ(h.tensors[2].dtype, DType::I32);
  EXPECT_EQ(h.data_offset, 8 + header.size());
}

TEST(SafetensorsWrite, RoundTripThroughReader) {
  test::TempDir dir;
  const std::string path = dir.file("m.safetensors");
  std::vector<float> w = {1.5f, -2.0f, 3.25f, 0.0f, 5.0f, 6.0f};
  std::vector<std::byte> fp8 = {std::byte{0x7E}, std::byte{0x80}, std::byte{0x01}};
  std::vector<std::string> fill_order;
  SafetensorsWriter wr;
  wr.add_bytes("layer.w", DType::F32, {2, 3}, std::as_bytes(std::span(w)));
  wr.add("layer.scale", DType::F8_E4M3, {3}, [&](std::byte* dst) {
    fill_order.push_back("layer.scale");
    std::memcpy(dst, fp8.data(), 3);
  });
  wr.add("empty", DType::BF16, {2, 0}, [&](std::byte*) { fill_order.push_back("empty"); });
  wr.add("scalar", DType::I64, {}, [&](std::byte* dst) {
    fill_order.push_back("scalar");
    int64_t v = -7;
    std::memcpy(dst, &v, 8);
  });
  wr.set_metadata("format", "pt");
  wr.set_metadata("format", "dsv3");  // last value wins
  EXPECT_EQ(wr.data_bytes(), 24u + 3 + 0 + 8);
  wr.write(path);
  EXPECT_EQ(fill_order, (std::vector<std::string>{"layer.scale", "scalar"}));  // empty: no fill

  SafetensorsFile f(path);
  EXPECT_EQ(f.path(), path);
  ASSERT_EQ(f.tensors().size(), 4u);
  EXPECT_EQ(f.tensors()[0].name, "layer.w");  // order kept
  EXPECT_EQ(f.metadata().at("format").as_string(), "dsv3");
  const auto* t = f.find("layer.w");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->shape, (Shape{2, 3}));
  auto d = f.data(*t);
  ASSERT_EQ(d.size(), 24u);
  EXPECT_EQ(std::memcmp(d.data(), w.data(), 24), 0);
  EXPECT_EQ(std::memcmp(f.data(*f.find("layer.scale")).data(), fp8.data(), 3), 0);
  int64_t s;
  std::memcpy(&s, f.data(*f.find("scalar")).data(), 8);
  EXPECT_EQ(s, -7);
  EXPECT_EQ(f.find("empty")->nbytes, 0u);
  EXPECT_EQ(f.find("missing"), nullptr);

  // Header padded with spaces so the data section starts 8-byte aligned.
  const std::string bytes = read_file(path);
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + n + wr.data_bytes());
}

TEST(SafetensorsWrite, RejectsBadInput) {
  SafetensorsWriter wr;
  std::vector<std::byte> b(8);
  EXPECT_THROW(wr.add_bytes("a", DType::F32, {3}, b), Error);  // 8 bytes for 12 needed
  wr.add_bytes("a", DType::F32, {2}, b);
  EXPECT_THROW(wr.add_bytes("a", DType::F32, {2}, b), Error);  // duplicate
  EXPECT_THROW(wr.add_bytes("__metadata__", DType::F32, {2}, b), Error);
  EXPECT_THROW(wr.add_bytes("", DType::F32, {2}, b), Error);
  EXPECT_THROW(wr.add("neg", DType::F32, {-1}, [](std::byte*) {}), Error);
}

TEST(SafetensorsWrite, FailedFillLeavesPreviousFileUntouched) {
  test::TempDir dir;
  const std::string path = dir.file("m.safetensors");
  std::vector<float> w = {1, 2};
  SafetensorsWriter good;
  good.add_bytes("w", DType::F32, {2}, std::as_bytes(std::span(w)));
  good.write(path);
  const std::string before = read_file(path);

  SafetensorsWriter bad;
  bad.add_bytes("w", DType::F32, {2}, std::as_bytes(std::span(w)));
  bad.add("boom", DType::F32, {1}, [](std::byte*) { throw Error("fill failed"); });
  EXPECT_THROW(bad.write(path), Error);
  EXPECT_EQ(read_file(path), before);
  size_t files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++files;
  EXPECT_EQ(files, 1u);  // no temp file left behind
}

TEST(SafetensorsFile, ErrorsNameThePath) {
  test::TempDir dir;
  const std::string path = dir.file("trunc.safetensors");
  write_file_atomic(path, std::string_view("\x10\0\0\0\0\0\0\0{}", 10));
  try {
    SafetensorsFile f(path);
    ADD_FAILURE() << "accepted a truncated file";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  EXPECT_THROW(SafetensorsFile(dir.file("missing.safetensors")), Error);
}

}  // namespace
}  // namespace dsv3

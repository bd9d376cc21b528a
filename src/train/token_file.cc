#include "train/token_file.h"

#include <bit>
#include <cstring>
#include <filesystem>

#include "base/error.h"
#include "base/file.h"

namespace dsv3 {

// Shards hold the tokens as the machine's uint32 and are read in place.
static_assert(std::endian::native == std::endian::little,
              "token shards assume a little-endian host");

namespace {
void put_u32(std::byte* p, uint32_t v) {
  std::memcpy(p, &v, 4);
}
void put_u64(std::byte* p, uint64_t v) {
  std::memcpy(p, &v, 8);
}
uint32_t get_u32(const std::byte* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t get_u64(const std::byte* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
}  // namespace

uint64_t fnv1a64(const void* data, size_t n, uint64_t h) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

std::string hex64(uint64_t v) {
  static const char kDigits[] = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) s[i] = kDigits[v & 15];
  return s;
}

uint64_t tokenizer_file_hash(const std::string& path) {
  const std::string file =
      std::filesystem::is_directory(path) ? path_join(path, "tokenizer.json") : path;
  const std::string text = read_file(file);
  return fnv1a64(text.data(), text.size());
}

void encode_shard_header(const ShardHeader& h, std::byte out[kShardHeaderBytes]) {
  std::memcpy(out, kShardMagic, 8);
  put_u32(out + 8, h.version);
  put_u32(out + 12, h.vocab_size);
  put_u64(out + 16, h.tokens);
  put_u64(out + 24, h.checksum);
}

ShardHeader decode_shard_header(std::span<const std::byte> bytes, const std::string& path) {
  DSV3_CHECK(bytes.size() >= kShardHeaderBytes,
             "token shard " + path + " is truncated: " + std::to_string(bytes.size()) +
                 " bytes, shorter than its " + std::to_string(kShardHeaderBytes) + "-byte header",
             "prepare the data again (dsv3 data prepare --force)");
  DSV3_CHECK(std::memcmp(bytes.data(), kShardMagic, 8) == 0,
             "token shard " + path + " does not start with the magic DSV3TOK: not a dsv3 shard",
             "prepare the data again (dsv3 data prepare --force)");
  ShardHeader h;
  h.version = get_u32(bytes.data() + 8);
  h.vocab_size = get_u32(bytes.data() + 12);
  h.tokens = get_u64(bytes.data() + 16);
  h.checksum = get_u64(bytes.data() + 24);
  DSV3_CHECK(h.version == kShardVersion,
             "token shard " + path + " has format version " + std::to_string(h.version) +
                 "; this dsv3 reads version " + std::to_string(kShardVersion),
             "prepare the data again with this dsv3");
  return h;
}

uint64_t write_shard(const std::string& path, std::span<const uint32_t> tokens,
                     uint32_t vocab_size) {
  ShardHeader h;
  h.vocab_size = vocab_size;
  h.tokens = tokens.size();
  h.checksum = fnv1a64(tokens.data(), tokens.size_bytes());
  std::byte header[kShardHeaderBytes];
  encode_shard_header(h, header);
  write_file_atomic(path, [&](FileWriter& w) {
    w.write(header, sizeof header);
    w.write(tokens.data(), tokens.size_bytes());
  });
  return h.checksum;
}

}  // namespace dsv3

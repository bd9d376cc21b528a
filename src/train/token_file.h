// The files of a prepared data set (dsv3 data prepare): token shards and DATA_DIR/meta.json.
//
// A shard: a 32-byte header, then the tokens as uint32 little-endian (4-byte aligned, so a mapped
// shard is read in place):
//   bytes  0..7   magic "DSV3TOK\0"
//   bytes  8..11  u32 version (kShardVersion)
//   bytes 12..15  u32 vocabulary size of the tokenizer (every id is below it)
//   bytes 16..23  u64 token count n (the file is exactly 32 + 4 n bytes)
//   bytes 24..31  u64 FNV-1a 64 of the 4 n payload bytes
// All integers little-endian. meta.json (version 1) names the tokenizer, the vocabulary, EOS and
// each split's shards:
//   {"format": "dsv3-tokens", "version": 1, "dtype": "uint32",
//    "tokenizer": {"path": "...", "fnv1a64": "hex of tokenizer.json"},
//    "vocab_size": V, "eos_id": E,
//    "split": {"method": "hash" | "file", "val_fraction": f},
//    "train": {"documents": D, "tokens": N, "shards": [{"file": "train-00000.bin",
//              "tokens": n, "fnv1a64": "hex"}, ...]},
//    "val": {... the same ...}}
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace dsv3 {

inline constexpr char kShardMagic[8] = {'D', 'S', 'V', '3', 'T', 'O', 'K', '\0'};
inline constexpr uint32_t kShardVersion = 1;
inline constexpr size_t kShardHeaderBytes = 32;
inline constexpr int64_t kMetaVersion = 1;
inline constexpr char kMetaFormat[] = "dsv3-tokens";

// FNV-1a 64 of bytes, continuing from `h` (the offset basis starts a new hash).
inline constexpr uint64_t kFnvBasis = 0xcbf29ce484222325ull;
uint64_t fnv1a64(const void* data, size_t n, uint64_t h = kFnvBasis);
std::string hex64(uint64_t v);  // 16 lowercase hex digits
// FNV-1a 64 of a tokenizer.json: the folder's tokenizer.json, or `path` itself when it is a file.
uint64_t tokenizer_file_hash(const std::string& path);

struct ShardHeader {
  uint32_t version = kShardVersion, vocab_size = 0;
  uint64_t tokens = 0, checksum = 0;
};
void encode_shard_header(const ShardHeader& h, std::byte out[kShardHeaderBytes]);
// Throws Error naming `path` for a wrong magic or version.
ShardHeader decode_shard_header(std::span<const std::byte> bytes, const std::string& path);

// Writes a shard atomically (temp file + rename). Returns the payload checksum.
uint64_t write_shard(const std::string& path, std::span<const uint32_t> tokens,
                     uint32_t vocab_size);

}  // namespace dsv3

// The BPE model of a byte-level tokenizer.json: vocabulary and merge ranks, and the merge loop that
// turns one pre-tokenized piece (raw bytes) into ids. Merges apply lowest rank first, leftmost
// first among equal ranks, exactly as Hugging Face's BPE::merge_word; short pieces use a linear
// scan, long ones (runs without whitespace) a heap over a linked list, so cost stays O(n log n).
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/json.h"

namespace dsv3::tok {

// (left id, right id) -> (rank, merged id); open addressing on a 64-bit key.
class MergeTable {
 public:
  struct Entry {
    uint64_t key;
    int32_t rank, merged;
  };
  void reserve(size_t n);
  bool insert(int32_t left, int32_t right, int32_t rank,
              int32_t merged);  // false if already present
  const Entry* find(int32_t left, int32_t right) const {
    const uint64_t key = (uint64_t(uint32_t(left)) << 32) | uint32_t(right);
    for (size_t i = slot(key);; i = (i + 1) & mask_) {
      const Entry& e = table_[i];
      if (e.key == key) return &e;
      if (e.key == kEmpty) return nullptr;
    }
  }
  size_t size() const { return size_; }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  size_t slot(uint64_t key) const { return (key * 0x9E3779B97F4A7C15ull) >> shift_; }
  std::vector<Entry> table_;
  size_t mask_ = 0, size_ = 0;
  int shift_ = 64;
};

// Piece -> ids memo: open addressing over flat arenas (one probe, no allocation per entry).
// Bounded: cleared when full (cheap, and prose re-fills it at once). Pieces over kMaxPiece bytes
// are not kept.
class WordCache {
 public:
  WordCache();
  // Appends the ids of piece to out and returns true when cached.
  bool find(std::string_view piece, std::vector<int32_t>& out) const;
  void insert(std::string_view piece, const int32_t* ids, size_t n);
  static constexpr size_t kMaxPiece = 64;

 private:
  struct Slot {
    uint64_t hash;      // 0: empty
    uint32_t key, ids;  // offsets into keys_ and ids_
    uint16_t key_len, n_ids;
  };
  static constexpr size_t kSlots = size_t{1} << 17, kMaxEntries = kSlots / 2;
  static uint64_t hash_of(std::string_view s);
  std::vector<Slot> slots_;
  std::string keys_;
  std::vector<int32_t> ids_;
  size_t entries_ = 0;
};

class BpeModel {
 public:
  // model: the tokenizer.json "model" object; source names the file in errors.
  static BpeModel from_json(const Json& model, std::string_view source);

  // Appends the ids of one piece of raw bytes to out.
  void encode_piece(std::string_view bytes, std::vector<int32_t>& out, WordCache* cache) const;

  int32_t id_limit() const { return static_cast<int32_t>(tokens_.size()); }  // 1 + highest id
  bool has_id(int32_t id) const { return id >= 0 && id < id_limit() && present_[id]; }
  const std::string& token(int32_t id) const {
    return tokens_[id];
  }  // as written in tokenizer.json
  const std::string& token_bytes(int32_t id) const { return bytes_[id]; }
  const std::unordered_map<std::string, int32_t>& vocab() const { return vocab_; }
  size_t merge_count() const { return merges_.size(); }

 private:
  void merge_short(std::vector<int32_t>& ids) const;
  void merge_long(std::vector<int32_t>& ids) const;

  std::unordered_map<std::string, int32_t> vocab_;        // token (tokenizer.json form) -> id
  std::unordered_map<std::string, int32_t> vocab_bytes_;  // raw bytes -> id, for ignore_merges
  std::vector<std::string> tokens_, bytes_;
  std::vector<bool> present_;
  std::array<int32_t, 256> byte_ids_{};
  MergeTable merges_;
  bool ignore_merges_ = false;
};

}  // namespace dsv3::tok

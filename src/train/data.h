// Training data: a prepared data set (token_file.h) opened and checked, random training windows
// that a resumed run draws again exactly, and the fixed validation windows of eval.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/file.h"
#include "base/json.h"
#include "base/rng.h"

namespace dsv3 {

// A split's tokens: the payloads of its shards (or any spans the owner keeps alive) read as one
// stream. Documents are packed back to back, each followed by EOS.
class TokenStream {
 public:
  void append(std::span<const uint32_t> chunk);
  int64_t size() const { return total_; }
  // Tokens [start, start + n) as int32 (every id was checked against the vocabulary at open).
  void copy(int64_t start, int64_t n, int32_t* out) const;

 private:
  std::vector<std::span<const uint32_t>> chunks_;
  std::vector<int64_t> starts_;  // stream offset of each chunk
  int64_t total_ = 0;
};

struct SplitInfo {
  int64_t documents = 0, tokens = 0;
  std::vector<std::string> shards;  // file names inside the data folder
};

// A data folder written by `dsv3 data prepare`. Opening validates everything before any batch is
// drawn, each failure a named Error: meta.json's fields, every shard's header, exact size (a
// truncated shard) and checksum (a corrupt one), agreement with meta.json, and every id below the
// tokenizer's vocabulary and below `model_vocab` (when > 0: the model the data is for).
class TokenDataset {
 public:
  explicit TokenDataset(const std::string& dir, int64_t model_vocab = 0, bool progress = false);
  TokenDataset(const TokenDataset&) = delete;
  TokenDataset& operator=(const TokenDataset&) = delete;

  const std::string& dir() const { return dir_; }
  int64_t vocab_size() const { return vocab_; }
  int32_t eos_id() const { return eos_; }
  int64_t max_id() const { return max_id_; }  // the largest id in any shard (-1: no tokens)
  const std::string& tokenizer_path() const { return tok_path_; }
  uint64_t tokenizer_hash() const { return tok_hash_; }  // FNV-1a 64 of tokenizer.json
  const TokenStream& train() const { return train_; }
  const TokenStream& val() const { return val_; }
  const SplitInfo& train_info() const { return train_info_; }
  const SplitInfo& val_info() const { return val_info_; }
  // Identifies the train split's content (its shards' checksums and sizes): a sampler state
  // saved on other data is refused.
  uint64_t train_fingerprint() const { return train_fp_; }

  // Throws Error when the tokenizer.json at `path` (a model folder or the file) is not the one the
  // data was tokenised with: ids would mean other tokens, a silently wrong loss.
  void check_tokenizer(const std::string& path) const;

 private:
  std::string dir_, tok_path_;
  uint64_t tok_hash_ = 0, train_fp_ = 0;
  int64_t vocab_ = 0, max_id_ = -1;
  int32_t eos_ = -1;
  std::vector<MappedFile> files_;
  TokenStream train_, val_;
  SplitInfo train_info_, val_info_;
};

// Random training windows of seq_len + 1 tokens (inputs: the first seq_len, targets: the last
// seq_len), each starting at a uniform position of the train split, drawn with a seeded Rng.
// Windows run across document boundaries without masking (V3 packs documents). The stream (or
// data set) must outlive the sampler.
class BatchSampler {
 public:
  BatchSampler(const TokenStream& train, int64_t seq_len, uint64_t seed,
               uint64_t data_fingerprint = 0);
  BatchSampler(const TokenDataset& data, int64_t seq_len, uint64_t seed)
      : BatchSampler(data.train(), seq_len, seed, data.train_fingerprint()) {}

  int64_t seq_len() const { return seq_len_; }
  int64_t windows_drawn() const { return drawn_; }
  // out = n_windows windows, row-major [n_windows, seq_len + 1].
  void next(int64_t n_windows, std::vector<int32_t>& out);

  // A 96-byte blob (see data.cc): the Rng state and windows drawn, with the seed, seq_len and
  // data fingerprint, so that restore() refuses a state from another configuration.
  std::string state() const;
  void restore(std::string_view blob);
  // The same state as a JSON object of 16-digit hex strings (for trainer_state.json).
  Json state_json() const;
  void restore_json(const Json& state);

 private:
  const TokenStream& train_;
  int64_t seq_len_;
  uint64_t seed_, fingerprint_;
  Rng rng_;
  int64_t drawn_ = 0;
};

// The first windows of a split, in order: window i is tokens [i * seq_len, i * seq_len + seq_len
// + 1), so consecutive windows share one token and every target after the first token is scored
// once. Tokens after the last whole window are not scored.
class ValWindows {
 public:
  // max_windows < 0: all whole windows.
  ValWindows(const TokenStream& split, int64_t seq_len, int64_t max_windows = -1);
  int64_t seq_len() const { return seq_len_; }
  int64_t count() const { return count_; }
  int64_t split_tokens() const { return split_.size(); }
  // Windows [first, first + n) (within count()), row-major [n, seq_len + 1].
  void get(int64_t first, int64_t n, std::vector<int32_t>& out) const;

 private:
  const TokenStream& split_;
  int64_t seq_len_, count_;
};

}  // namespace dsv3

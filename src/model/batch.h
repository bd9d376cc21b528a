// A batch: the tokens of several sequences in one forward pass, as llama.cpp's llama_batch. Each
// token has an id, a position and a sequence; each sequence has its rows (contiguous, in position
// order), its cache or none, and which of its rows want logits. Norms, projections, the MoE and
// the head run over all rows at once; RoPE uses each token's own position; attention runs per
// sequence over its own cache. A training batch [B, T] is B cache-less sequences of T tokens; a
// server step mixes one decode row of each running sequence with chunks of waiting prompts; a
// speculative verification scores the last accepted token plus the drafts of each sequence.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "model/model.h"

namespace dsv3 {

struct BatchSeq {
  // Null: a cache-less row (training), positions 0 .. count - 1, causal within itself. Otherwise
  // the rows continue the cache at positions cache->length() ..; the forward pass puts them in and
  // commits them. A cache appears in at most one sequence of a batch.
  AttentionCache* cache = nullptr;
  int64_t begin = 0, count = 0;  // rows [begin, begin + count) of the batch
  int64_t pos0 = 0;              // position of row `begin`
};

class Batch {
 public:
  // Appends a sequence's tokens as the next rows; returns its index. The positions follow the
  // cache (or start at 0).
  int64_t add(AttentionCache* cache, std::span<const int32_t> ids, LogitsRows logits);
  // The same, with logits for the listed rows of the sequence (offsets in [0, ids.size())).
  int64_t add(AttentionCache* cache, std::span<const int32_t> ids,
              std::span<const int64_t> logit_rows);
  void clear();

  int64_t rows() const { return static_cast<int64_t>(ids_.size()); }
  int64_t n_seqs() const { return static_cast<int64_t>(seqs_.size()); }
  const std::vector<int32_t>& ids() const { return ids_; }
  const std::vector<int64_t>& positions() const { return pos_; }
  const std::vector<int32_t>& seq_of_row() const { return seq_; }
  const std::vector<BatchSeq>& seqs() const { return seqs_; }
  // Rows whose logits are computed, in batch order: logits[i] is row logit_rows()[i].
  const std::vector<int64_t>& logit_rows() const { return logit_rows_; }
  // The row of logits (an index into logit_rows()) of a sequence's last row, -1 when it has none.
  int64_t last_logit_index(int64_t seq) const;

 private:
  int64_t add_rows(AttentionCache* cache, std::span<const int32_t> ids);

  std::vector<int32_t> ids_;
  std::vector<int64_t> pos_;
  std::vector<int32_t> seq_;
  std::vector<BatchSeq> seqs_;
  std::vector<int64_t> logit_rows_;
};

// The key rows of sequence s in a layer: its cache's positions [0, S) once this batch's rows are
// put (through `scratch` when the cache converts), or its own rows of `own` [rows, row_elems].
const float* seq_keys(const BatchSeq& s, int64_t layer, const float* own, int64_t row_elems,
                      std::vector<float>& scratch, int64_t& S);
// AttentionArgs for sequence s's query rows against S keys; the caller sets pointers and widths.
AttentionArgs seq_attention_args(const BatchSeq& s, int64_t S, int64_t n_heads, int64_t n_kv_heads,
                                 float scale);

}  // namespace dsv3

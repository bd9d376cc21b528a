// Batch construction.
#include "model/batch.h"

#include <algorithm>

#include "base/error.h"

namespace dsv3 {

int64_t Batch::add_rows(AttentionCache* cache, std::span<const int32_t> ids) {
  DSV3_CHECK(!ids.empty(), "batch: a sequence needs at least one token");
  if (cache)
    for (const BatchSeq& s : seqs_)
      DSV3_CHECK(s.cache != cache, "batch: a cache appears in two sequences of one batch",
                 "put all of a sequence's new tokens in one add()");
  BatchSeq s;
  s.cache = cache;
  s.begin = rows();
  s.count = static_cast<int64_t>(ids.size());
  s.pos0 = cache ? cache->length() : 0;
  const auto index = static_cast<int32_t>(seqs_.size());
  for (int64_t i = 0; i < s.count; ++i) {
    ids_.push_back(ids[i]);
    pos_.push_back(s.pos0 + i);
    seq_.push_back(index);
  }
  seqs_.push_back(s);
  return index;
}

int64_t Batch::add(AttentionCache* cache, std::span<const int32_t> ids, LogitsRows logits) {
  const int64_t seq = add_rows(cache, ids);
  const BatchSeq& s = seqs_.back();
  if (logits == LogitsRows::All)
    for (int64_t i = 0; i < s.count; ++i) logit_rows_.push_back(s.begin + i);
  if (logits == LogitsRows::Last) logit_rows_.push_back(s.begin + s.count - 1);
  return seq;
}

int64_t Batch::add(AttentionCache* cache, std::span<const int32_t> ids,
                   std::span<const int64_t> logit_rows) {
  for (size_t i = 0; i < logit_rows.size(); ++i)
    DSV3_CHECK(logit_rows[i] >= 0 && logit_rows[i] < static_cast<int64_t>(ids.size()) &&
                   (i == 0 || logit_rows[i] > logit_rows[i - 1]),
               "batch: logit rows must be increasing offsets into the sequence's " +
                   std::to_string(ids.size()) + " tokens");
  const int64_t seq = add_rows(cache, ids);
  for (int64_t r : logit_rows) logit_rows_.push_back(seqs_.back().begin + r);
  return seq;
}

void Batch::clear() {
  ids_.clear();
  pos_.clear();
  seq_.clear();
  seqs_.clear();
  logit_rows_.clear();
}

int64_t Batch::last_logit_index(int64_t seq) const {
  const BatchSeq& s = seqs_.at(static_cast<size_t>(seq));
  auto it = std::lower_bound(logit_rows_.begin(), logit_rows_.end(), s.begin + s.count - 1);
  if (it == logit_rows_.end() || *it != s.begin + s.count - 1) return -1;
  return it - logit_rows_.begin();
}

const float* seq_keys(const BatchSeq& s, int64_t layer, const float* own, int64_t row_elems,
                      std::vector<float>& scratch, int64_t& S) {
  if (!s.cache) {
    S = s.count;
    return own + s.begin * row_elems;
  }
  S = s.cache->length() + s.count;
  return s.cache->rows_f32(layer, S, scratch);
}

AttentionArgs seq_attention_args(const BatchSeq& s, int64_t S, int64_t n_heads, int64_t n_kv_heads,
                                 float scale) {
  AttentionArgs at;
  at.T = s.count;
  at.S = S;
  at.n_heads = n_heads;
  at.n_kv_heads = n_kv_heads;
  at.scale = scale;
  return at;
}

}  // namespace dsv3

#include "tokenizer/bpe.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <queue>

#include "base/error.h"
#include "tokenizer/byte_level.h"

namespace dsv3::tok {

void MergeTable::reserve(size_t n) {
  size_t cap = 16;
  shift_ = 60;
  while (cap < 2 * n) cap <<= 1, --shift_;
  table_.assign(cap, Entry{kEmpty, 0, 0});
  mask_ = cap - 1;
  size_ = 0;
}

bool MergeTable::insert(int32_t left, int32_t right, int32_t rank, int32_t merged) {
  if (2 * (size_ + 1) > table_.size()) {  // grow: rehash everything
    std::vector<Entry> old;
    old.swap(table_);
    reserve(2 * (size_ + 1));
    for (const Entry& e : old)
      if (e.key != kEmpty) insert(int32_t(e.key >> 32), int32_t(uint32_t(e.key)), e.rank, e.merged);
  }
  const uint64_t key = (uint64_t(uint32_t(left)) << 32) | uint32_t(right);
  size_t i = slot(key);
  for (; table_[i].key != kEmpty; i = (i + 1) & mask_)
    if (table_[i].key == key) return false;
  table_[i] = Entry{key, rank, merged};
  ++size_;
  return true;
}

WordCache::WordCache() : slots_(kSlots, Slot{0, 0, 0, 0, 0}) {}

uint64_t WordCache::hash_of(std::string_view s) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ s.size();
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = (h ^ w) * 0xFF51AFD7ED558CCDull;
    h ^= h >> 32;
  }
  uint64_t tail = 0;
  std::memcpy(&tail, s.data() + i, s.size() - i);
  h = (h ^ tail) * 0xC4CEB9FE1A85EC53ull;
  h ^= h >> 29;
  return h | 1;  // never 0, the empty mark
}

bool WordCache::find(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.size() > kMaxPiece) return false;
  const uint64_t h = hash_of(piece);
  for (size_t i = h & (kSlots - 1);; i = (i + 1) & (kSlots - 1)) {
    const Slot& s = slots_[i];
    if (s.hash == 0) return false;
    if (s.hash == h && s.key_len == piece.size() &&
        std::memcmp(keys_.data() + s.key, piece.data(), piece.size()) == 0) {
      out.insert(out.end(), ids_.begin() + s.ids, ids_.begin() + s.ids + s.n_ids);
      return true;
    }
  }
}

void WordCache::insert(std::string_view piece, const int32_t* ids, size_t n) {
  if (piece.size() > kMaxPiece) return;
  if (entries_ >= kMaxEntries) {
    std::fill(slots_.begin(), slots_.end(), Slot{0, 0, 0, 0, 0});
    keys_.clear();
    ids_.clear();
    entries_ = 0;
  }
  const uint64_t h = hash_of(piece);
  size_t i = h & (kSlots - 1);
  while (slots_[i].hash != 0) i = (i + 1) & (kSlots - 1);
  slots_[i] = Slot{h, static_cast<uint32_t>(keys_.size()), static_cast<uint32_t>(ids_.size()),
                   static_cast<uint16_t>(piece.size()), static_cast<uint16_t>(n)};
  keys_.append(piece);
  ids_.insert(ids_.end(), ids, ids + n);
  ++entries_;
}

BpeModel BpeModel::from_json(const Json& model, std::string_view source) {
  const std::string where = std::string(source) + ": model";
  BpeModel m;
  const std::string& type = model.at("type").as_string(where + ".type");
  if (type != "BPE")
    throw Error(where + ".type is '" + type + "'", "dsv3 supports byte-level BPE tokenizers only");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const Json* v = model.find(key);
    if (v && !v->is_null() && !v->as_string(where + "." + key).empty())
      throw Error(where + "." + key + " is set",
                  "dsv3 supports byte-level BPE without subword affixes");
  }
  if (const Json* d = model.find("dropout");
      d && !d->is_null() && d->as_double(where + ".dropout") != 0.0)
    throw Error(where + ".dropout is set", "BPE dropout is a training-time option; remove it");
  if (const Json* b = model.find("byte_fallback"); b && b->as_bool(where + ".byte_fallback"))
    throw Error(where + ".byte_fallback is true",
                "dsv3 supports byte-level BPE, not SentencePiece-style BPE");
  if (const Json* im = model.find("ignore_merges"))
    m.ignore_merges_ = im->as_bool(where + ".ignore_merges");

  const Json::Object& vocab = model.at("vocab").as_object(where + ".vocab");
  int64_t max_id = -1;
  for (const auto& [tok, id] : vocab)
    max_id = std::max(max_id, id.as_int(where + ".vocab[" + tok + "]"));
  // Ids are dense in real vocabularies; a stray huge id must not allocate gigabytes.
  DSV3_CHECK(max_id < 2 * static_cast<int64_t>(vocab.size()) + 65536,
             where + ".vocab: id " + std::to_string(max_id) + " is far past the " +
                 std::to_string(vocab.size()) + " entries",
             "token ids must be dense: 0 .. number of tokens - 1");
  m.tokens_.resize(max_id + 1);
  m.bytes_.resize(max_id + 1);
  m.present_.assign(max_id + 1, false);
  m.byte_ids_.fill(-1);
  m.vocab_.reserve(vocab.size());
  for (const auto& [tok, idj] : vocab) {
    const int64_t id = idj.as_int();
    DSV3_CHECK(id >= 0, where + ".vocab[" + tok + "]: negative id");
    DSV3_CHECK(!m.present_[id], where + ".vocab: id " + std::to_string(id) + " is used twice");
    m.present_[id] = true;
    m.tokens_[id] = tok;
    auto raw = byte_level_to_bytes(tok);
    m.bytes_[id] = raw ? *raw : tok;  // outside the alphabet: the decoder passes the UTF-8 through
    m.vocab_.emplace(tok, int32_t(id));
    if (raw && raw->size() == 1) m.byte_ids_[static_cast<uint8_t>((*raw)[0])] = int32_t(id);
    if (m.ignore_merges_ && raw) m.vocab_bytes_.emplace(*raw, int32_t(id));
  }

  const Json::Array& merges = model.at("merges").as_array(where + ".merges");
  m.merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const Json& mj = merges[rank];
    std::string left, right;
    const std::string what = where + ".merges[" + std::to_string(rank) + "]";
    if (mj.is_string()) {  // "a b"
      const std::string& s = mj.as_string();
      const size_t sp = s.find(' ');
      DSV3_CHECK(sp != std::string::npos && s.find(' ', sp + 1) == std::string::npos,
                 what + ": '" + s + "' is not two tokens separated by one space");
      left = s.substr(0, sp);
      right = s.substr(sp + 1);
    } else {  // ["a", "b"]
      const Json::Array& pair = mj.as_array(what);
      DSV3_CHECK(pair.size() == 2, what + ": a merge has two tokens");
      left = pair[0].as_string(what);
      right = pair[1].as_string(what);
    }
    auto l = m.vocab_.find(left), r = m.vocab_.find(right), lr = m.vocab_.find(left + right);
    DSV3_CHECK(l != m.vocab_.end() && r != m.vocab_.end() && lr != m.vocab_.end(),
               what + ": '" + left + "' + '" + right + "': a token is missing from the vocab");
    // A repeated merge keeps its first (lowest) rank, as a map built in file order with
    // insert-if-absent would; Hugging Face overwrites, but no published tokenizer repeats one.
    m.merges_.insert(l->second, r->second, int32_t(rank), lr->second);
  }
  return m;
}

void BpeModel::merge_short(std::vector<int32_t>& ids) const {
  constexpr int32_t kNone = std::numeric_limits<int32_t>::max();
  // rank[i]: rank of the pair (ids[i], ids[i+1]); merged[i]: its result.
  int32_t rank[64], merged[64];
  auto pair_at = [&](size_t i) {
    const MergeTable::Entry* e = merges_.find(ids[i], ids[i + 1]);
    rank[i] = e ? e->rank : kNone;
    merged[i] = e ? e->merged : -1;
  };
  size_t n = ids.size();
  for (size_t i = 0; i + 1 < n; ++i) pair_at(i);
  while (n > 1) {
    size_t best = 0;
    for (size_t i = 1; i + 1 < n; ++i)
      if (rank[i] < rank[best]) best = i;
    if (rank[best] == kNone) break;
    ids[best] = merged[best];
    for (size_t i = best + 1; i + 1 < n; ++i) {
      ids[i] = ids[i + 1];
      rank[i] = rank[i + 1];
      merged[i] = merged[i + 1];
    }
    --n;
    if (best > 0) pair_at(best - 1);
    if (best + 1 < n) pair_at(best);
  }
  ids.resize(n);
}

void BpeModel::merge_long(std::vector<int32_t>& ids) const {
  const int32_t n = static_cast<int32_t>(ids.size());
  std::vector<int32_t> prev(n), next(n);
  std::vector<bool> alive(n, true);
  for (int32_t i = 0; i < n; ++i) prev[i] = i - 1, next[i] = i + 1 < n ? i + 1 : -1;
  struct Cand {
    int32_t rank, pos;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto push = [&](int32_t i) {
    if (i < 0 || next[i] < 0) return;
    if (const MergeTable::Entry* e = merges_.find(ids[i], ids[next[i]])) heap.push({e->rank, i});
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    const Cand c = heap.top();
    heap.pop();
    if (!alive[c.pos] || next[c.pos] < 0) continue;
    const int32_t r = next[c.pos];
    const MergeTable::Entry* e = merges_.find(ids[c.pos], ids[r]);
    if (!e || e->rank != c.rank) continue;  // stale: a neighbour changed since it was queued
    ids[c.pos] = e->merged;
    alive[r] = false;
    next[c.pos] = next[r];
    if (next[r] >= 0) prev[next[r]] = c.pos;
    push(prev[c.pos]);
    push(c.pos);
  }
  size_t k = 0;
  for (int32_t i = 0; i >= 0 && i < n; i = next[i]) ids[k++] = ids[i];
  ids.resize(k);
}

void BpeModel::encode_piece(std::string_view bytes, std::vector<int32_t>& out,
                            WordCache* cache) const {
  if (bytes.size() == 1) {
    const int32_t id = byte_ids_[static_cast<uint8_t>(bytes[0])];
    if (id >= 0) out.push_back(id);
    return;
  }
  if (cache && cache->find(bytes, out)) return;
  if (ignore_merges_) {
    if (auto it = vocab_bytes_.find(std::string(bytes)); it != vocab_bytes_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  std::vector<int32_t> ids;
  ids.clear();
  for (char c : bytes) {
    const int32_t id = byte_ids_[static_cast<uint8_t>(c)];
    if (id >= 0)
      ids.push_back(id);  // a byte missing from the vocab is dropped, as with no unk_token
  }
  if (ids.size() <= 64)
    merge_short(ids);
  else
    merge_long(ids);
  if (cache) cache->insert(bytes, ids.data(), ids.size());
  out.insert(out.end(), ids.begin(), ids.end());
}

}  // namespace dsv3::tok

#include "train/data.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include "base/error.h"
#include "base/json.h"
#include "base/progress.h"
#include "train/token_file.h"

namespace dsv3 {

void TokenStream::append(std::span<const uint32_t> chunk) {
  if (chunk.empty()) return;
  chunks_.push_back(chunk);
  starts_.push_back(total_);
  total_ += static_cast<int64_t>(chunk.size());
}

void TokenStream::copy(int64_t start, int64_t n, int32_t* out) const {
  DSV3_CHECK(start >= 0 && n >= 0 && start + n <= total_,
             "internal: tokens [" + std::to_string(start) + ", " + std::to_string(start + n) +
                 ") outside a stream of " + std::to_string(total_));
  if (n == 0) return;
  // The chunk holding `start`: the last one starting at or before it.
  size_t c = static_cast<size_t>(std::upper_bound(starts_.begin(), starts_.end(), start) -
                                 starts_.begin()) -
             1;
  while (n > 0) {
    const int64_t off = start - starts_[c];
    const int64_t take = std::min<int64_t>(n, static_cast<int64_t>(chunks_[c].size()) - off);
    const uint32_t* src = chunks_[c].data() + off;
    for (int64_t i = 0; i < take; ++i) out[i] = static_cast<int32_t>(src[i]);
    out += take;
    start += take;
    n -= take;
    ++c;
  }
}

namespace {

const char kReprepare[] = "prepare the data again (dsv3 data prepare --force)";

int64_t int_field(const Json& obj, std::string_view key, const std::string& where, int64_t lo,
                  int64_t hi) {
  const Json* v = obj.find(key);
  const std::string name = where + ": " + std::string(key);
  DSV3_CHECK(v != nullptr, name + " is missing", kReprepare);
  DSV3_CHECK(v->is_int(), name + " must be an integer", kReprepare);
  const int64_t x = v->as_int(name);
  DSV3_CHECK(x >= lo && x <= hi,
             name + " is " + std::to_string(x) + ", outside [" + std::to_string(lo) + ", " +
                 std::to_string(hi) + "]",
             kReprepare);
  return x;
}

const std::string& string_field(const Json& obj, std::string_view key, const std::string& where,
                                const char* hint = kReprepare) {
  const Json* v = obj.find(key);
  const std::string name = where + ": " + std::string(key);
  DSV3_CHECK(v != nullptr && v->is_string(), name + " must be a string", hint);
  return v->as_string();
}

uint64_t hex_field(const Json& obj, std::string_view key, const std::string& where,
                   const char* hint = kReprepare) {
  const std::string& s = string_field(obj, key, where, hint);
  DSV3_CHECK(s.size() == 16 && s.find_first_not_of("0123456789abcdef") == std::string::npos,
             where + ": " + std::string(key) + " must be 16 lowercase hex digits, not '" + s + "'",
             hint);
  return std::stoull(s, nullptr, 16);
}

// FNV-1a 64 of the payload and its largest id, in one pass over the mapped shard.
void scan_payload(const uint32_t* p, uint64_t n, uint64_t& checksum, uint32_t& max_id) {
  uint64_t h = kFnvBasis;
  uint32_t m = 0;
  for (uint64_t i = 0; i < n; ++i) {
    const uint32_t w = p[i];
    h = (h ^ (w & 0xff)) * 0x100000001b3ull;
    h = (h ^ ((w >> 8) & 0xff)) * 0x100000001b3ull;
    h = (h ^ ((w >> 16) & 0xff)) * 0x100000001b3ull;
    h = (h ^ (w >> 24)) * 0x100000001b3ull;
    m = std::max(m, w);
  }
  checksum = h;
  max_id = m;
}

// The first id >= limit, or -1; the scan's max_id spares the search when there is none.
int64_t first_at_least(const uint32_t* p, uint64_t n, uint32_t max_id, uint64_t limit) {
  if (max_id < limit) return -1;
  for (uint64_t i = 0; i < n; ++i)
    if (p[i] >= limit) return static_cast<int64_t>(i);
  return -1;
}

}  // namespace

TokenDataset::TokenDataset(const std::string& dir, int64_t model_vocab, bool progress) : dir_(dir) {
  const std::string meta_path = path_join(dir, "meta.json");
  DSV3_CHECK(file_exists(meta_path), dir + " has no meta.json: not a prepared data folder",
             "create one with dsv3 data prepare --tokenizer DIR --input FILE -o " + dir);
  const Json meta = Json::parse(read_file(meta_path, uint64_t{64} << 20), meta_path);
  DSV3_CHECK(meta.is_object(), meta_path + " is not a JSON object", kReprepare);
  DSV3_CHECK(meta.find("format") && meta.at("format").is_string() &&
                 meta.at("format").as_string() == kMetaFormat,
             meta_path + ": format is not \"" + std::string(kMetaFormat) + "\"", kReprepare);
  const int64_t version = int_field(meta, "version", meta_path, 0, INT64_MAX);
  DSV3_CHECK(version == kMetaVersion,
             meta_path + " has version " + std::to_string(version) + "; this dsv3 reads version " +
                 std::to_string(kMetaVersion),
             kReprepare);
  DSV3_CHECK(string_field(meta, "dtype", meta_path) == "uint32",
             meta_path + ": dtype must be \"uint32\"", kReprepare);
  vocab_ = int_field(meta, "vocab_size", meta_path, 1, INT32_MAX);
  eos_ = static_cast<int32_t>(int_field(meta, "eos_id", meta_path, 0, vocab_ - 1));
  const Json* tok = meta.find("tokenizer");
  DSV3_CHECK(tok && tok->is_object(), meta_path + ": tokenizer must be an object", kReprepare);
  tok_path_ = string_field(*tok, "path", meta_path + ": tokenizer");
  tok_hash_ = hex_field(*tok, "fnv1a64", meta_path + ": tokenizer");

  // The shards, checked before anything is handed out.
  struct Pending {
    std::string name, path;
    int64_t tokens;
    uint64_t checksum;
    bool train;
  };
  std::vector<Pending> shards;
  for (const char* split : {"train", "val"}) {
    const std::string where = meta_path + ": " + split;
    const Json* s = meta.find(split);
    DSV3_CHECK(s && s->is_object(), where + " must be an object", kReprepare);
    SplitInfo& info = std::string_view(split) == "train" ? train_info_ : val_info_;
    info.documents = int_field(*s, "documents", where, 0, INT64_MAX);
    info.tokens = int_field(*s, "tokens", where, 0, INT64_MAX / 8);
    const Json* list = s->find("shards");
    DSV3_CHECK(list && list->is_array(), where + ": shards must be an array", kReprepare);
    int64_t sum = 0;
    for (const Json& sh : list->as_array()) {
      DSV3_CHECK(sh.is_object(), where + ": each shard must be an object", kReprepare);
      const std::string& file = string_field(sh, "file", where + " shard");
      // A plain name inside the folder: meta.json cannot point elsewhere.
      DSV3_CHECK(
          !file.empty() && file != "." && file != ".." && file.find('/') == std::string::npos,
          where + ": shard file '" + file + "' is not a plain file name", kReprepare);
      const int64_t n = int_field(sh, "tokens", where + " shard " + file, 0, INT64_MAX / 8);
      DSV3_CHECK(sum <= INT64_MAX / 8 - n, where + ": the shards hold too many tokens", kReprepare);
      sum += n;
      shards.push_back({file, path_join(dir, file), n,
                        hex_field(sh, "fnv1a64", where + " shard " + file),
                        std::string_view(split) == "train"});
      info.shards.push_back(file);
    }
    DSV3_CHECK(sum == info.tokens,
               where + ": tokens is " + std::to_string(info.tokens) + " but its shards hold " +
                   std::to_string(sum),
               kReprepare);
  }

  uint64_t total_bytes = 0;
  for (const Pending& p : shards) total_bytes += kShardHeaderBytes + 4 * uint64_t(p.tokens);
  std::optional<ProgressBar> bar;  // constructed only when wanted: it draws at once
  if (progress) bar.emplace("checking data", total_bytes >> 20, "MiB");
  uint64_t done = 0;
  train_fp_ = kFnvBasis;
  files_.reserve(shards.size());
  for (const Pending& p : shards) {
    MappedFile f(p.path);
    const ShardHeader h = decode_shard_header(f.bytes(), p.path);
    DSV3_CHECK(h.vocab_size == static_cast<uint64_t>(vocab_),
               "token shard " + p.path + " was written for a vocabulary of " +
                   std::to_string(h.vocab_size) + ", meta.json says " + std::to_string(vocab_),
               kReprepare);
    DSV3_CHECK(h.tokens == static_cast<uint64_t>(p.tokens),
               "token shard " + p.path + " holds " + std::to_string(h.tokens) +
                   " tokens, meta.json says " + std::to_string(p.tokens),
               kReprepare);
    const uint64_t want = kShardHeaderBytes + 4 * h.tokens;
    DSV3_CHECK(f.size() >= want,
               "token shard " + p.path + " is truncated: " + std::to_string(f.size()) +
                   " bytes, its header needs " + std::to_string(want),
               kReprepare);
    DSV3_CHECK(f.size() == want,
               "token shard " + p.path + " has " + std::to_string(f.size() - want) +
                   " bytes after its last token",
               kReprepare);
    const auto* tokens = reinterpret_cast<const uint32_t*>(f.data() + kShardHeaderBytes);
    uint64_t sum = 0;
    uint32_t max_id = 0;
    scan_payload(tokens, h.tokens, sum, max_id);
    DSV3_CHECK(sum == h.checksum && sum == p.checksum,
               "token shard " + p.path + " is corrupt: its tokens hash to " + hex64(sum) +
                   ", the header says " + hex64(h.checksum) + " and meta.json " + hex64(p.checksum),
               kReprepare);
    if (h.tokens > 0) {
      const int64_t bad = first_at_least(tokens, h.tokens, max_id, static_cast<uint64_t>(vocab_));
      DSV3_CHECK(bad < 0,
                 "token shard " + p.path + " holds id " +
                     std::to_string(bad < 0 ? 0 : tokens[bad]) + " at token " +
                     std::to_string(bad) + ", outside its vocabulary of " + std::to_string(vocab_),
                 kReprepare);
      max_id_ = std::max<int64_t>(max_id_, max_id);
      if (model_vocab > 0) {
        const int64_t over =
            first_at_least(tokens, h.tokens, max_id, static_cast<uint64_t>(model_vocab));
        DSV3_CHECK(over < 0,
                   "the data in " + dir + " holds token id " +
                       std::to_string(over < 0 ? 0 : tokens[over]) + " (" + p.name + ", token " +
                       std::to_string(over) + ") but the model's vocabulary has " +
                       std::to_string(model_vocab) + " ids",
                   "prepare the data with the model's own tokenizer");
      }
    }
    if (p.train) {
      const uint64_t rec[2] = {h.tokens, h.checksum};
      train_fp_ = fnv1a64(rec, sizeof rec, train_fp_);
    }
    (p.train ? train_ : val_).append({tokens, h.tokens});
    files_.push_back(std::move(f));  // the mapping moves; the spans stay valid
    done += want;
    if (bar) bar->set(done >> 20);
  }
  if (bar) bar->finish();
}

void TokenDataset::check_tokenizer(const std::string& path) const {
  const uint64_t h = tokenizer_file_hash(path);
  DSV3_CHECK(
      h == tok_hash_,
      "the tokenizer of " + path + " (tokenizer.json FNV-1a " + hex64(h) + ") is not the one " +
          dir_ + " was prepared with (" + tok_path_ + ", " + hex64(tok_hash_) + ")",
      "prepare the data with this model's tokenizer (dsv3 data prepare --tokenizer " + path + ")");
}

BatchSampler::BatchSampler(const TokenStream& train, int64_t seq_len, uint64_t seed,
                           uint64_t data_fingerprint)
    : train_(train), seq_len_(seq_len), seed_(seed), fingerprint_(data_fingerprint), rng_(seed) {
  DSV3_CHECK(seq_len >= 1,
             "the sequence length must be at least 1, not " + std::to_string(seq_len));
  DSV3_CHECK(train.size() >= seq_len + 1,
             "the train split holds " + std::to_string(train.size()) +
                 " tokens, fewer than one window of seq_len + 1 = " + std::to_string(seq_len + 1),
             "use more text or a shorter sequence length");
}

void BatchSampler::next(int64_t n_windows, std::vector<int32_t>& out) {
  DSV3_CHECK(n_windows >= 0, "internal: a negative window count");
  const int64_t w = seq_len_ + 1;
  out.resize(static_cast<size_t>(n_windows * w));
  // Start positions 0 .. size - w, each equally likely.
  const uint64_t starts = static_cast<uint64_t>(train_.size() - w + 1);
  for (int64_t i = 0; i < n_windows; ++i) {
    const int64_t s = static_cast<int64_t>(rng_.below(starts));
    train_.copy(s, w, out.data() + i * w);
  }
  drawn_ += n_windows;
}

namespace {
constexpr char kSamplerMagic[8] = {'D', 'S', 'V', '3', 'S', 'M', 'P', '1'};
constexpr size_t kSamplerFields = 6 + 6;  // 6 header words + the Rng's 6 words
}  // namespace

// Layout: "DSV3SMP1", then little-endian u64 words: version (1), seed, seq_len, data
// fingerprint, train tokens, windows drawn, the Rng state (6 words).
std::string BatchSampler::state() const {
  const Rng::State rs = rng_.state();
  const uint64_t words[kSamplerFields] = {1,
                                          seed_,
                                          static_cast<uint64_t>(seq_len_),
                                          fingerprint_,
                                          static_cast<uint64_t>(train_.size()),
                                          static_cast<uint64_t>(drawn_),
                                          rs[0],
                                          rs[1],
                                          rs[2],
                                          rs[3],
                                          rs[4],
                                          rs[5]};
  std::string blob(kSamplerMagic, 8);
  blob.append(reinterpret_cast<const char*>(words), sizeof words);
  return blob;
}

void BatchSampler::restore(std::string_view blob) {
  uint64_t w[kSamplerFields];
  DSV3_CHECK(blob.size() == 8 + sizeof w && std::memcmp(blob.data(), kSamplerMagic, 8) == 0,
             "the batch sampler state is not one BatchSampler::state() wrote (" +
                 std::to_string(blob.size()) + " bytes)",
             "the checkpoint's sampler state is damaged");
  std::memcpy(w, blob.data() + 8, sizeof w);
  DSV3_CHECK(w[0] == 1, "the batch sampler state has version " + std::to_string(w[0]) +
                            "; this dsv3 reads version 1");
  DSV3_CHECK(w[2] == static_cast<uint64_t>(seq_len_),
             "the batch sampler state was saved with sequence length " + std::to_string(w[2]) +
                 ", this run uses " + std::to_string(seq_len_),
             "resume with the sequence length of the checkpoint");
  DSV3_CHECK(w[1] == seed_,
             "the batch sampler state was saved with seed " + std::to_string(w[1]) +
                 ", this run uses " + std::to_string(seed_),
             "resume with the seed of the checkpoint");
  DSV3_CHECK(w[4] == static_cast<uint64_t>(train_.size()) &&
                 (w[3] == fingerprint_ || w[3] == 0 || fingerprint_ == 0),
             "the batch sampler state was saved on other training data (" + std::to_string(w[4]) +
                 " train tokens, fingerprint " + hex64(w[3]) +
                 "; this data: " + std::to_string(train_.size()) + ", " + hex64(fingerprint_) + ")",
             "resume with the data folder the run started with");
  DSV3_CHECK(w[5] <= static_cast<uint64_t>(INT64_MAX), "the batch sampler state is damaged");
  rng_.set_state({w[6], w[7], w[8], w[9], w[10], w[11]});
  drawn_ = static_cast<int64_t>(w[5]);
}

namespace {
const char* const kSamplerKeys[kSamplerFields] = {
    "version",      "seed",          "seq_len", "data_fingerprint",
    "train_tokens", "windows_drawn", "rng0",    "rng1",
    "rng2",         "rng3",          "rng4",    "rng5"};
}  // namespace

Json BatchSampler::state_json() const {
  const std::string blob = state();
  uint64_t w[kSamplerFields];
  std::memcpy(w, blob.data() + 8, sizeof w);
  Json j = Json::object();
  for (size_t i = 0; i < kSamplerFields; ++i) j[kSamplerKeys[i]] = hex64(w[i]);
  return j;
}

void BatchSampler::restore_json(const Json& state) {
  const char kWhat[] = "the batch sampler state";
  DSV3_CHECK(state.is_object(), std::string(kWhat) + " is not a JSON object",
             "the checkpoint's sampler state is damaged");
  uint64_t w[kSamplerFields];
  for (size_t i = 0; i < kSamplerFields; ++i)
    w[i] = hex_field(state, kSamplerKeys[i], kWhat, "the checkpoint's sampler state is damaged");
  std::string blob(kSamplerMagic, 8);
  blob.append(reinterpret_cast<const char*>(w), sizeof w);
  restore(blob);
}

ValWindows::ValWindows(const TokenStream& split, int64_t seq_len, int64_t max_windows)
    : split_(split), seq_len_(seq_len) {
  DSV3_CHECK(seq_len >= 1,
             "the sequence length must be at least 1, not " + std::to_string(seq_len));
  count_ = split.size() >= 2 ? (split.size() - 1) / seq_len : 0;
  if (max_windows >= 0) count_ = std::min(count_, max_windows);
}

void ValWindows::get(int64_t first, int64_t n, std::vector<int32_t>& out) const {
  DSV3_CHECK(first >= 0 && n >= 0 && first + n <= count_,
             "internal: validation windows [" + std::to_string(first) + ", " +
                 std::to_string(first + n) + ") of " + std::to_string(count_));
  const int64_t w = seq_len_ + 1;
  out.resize(static_cast<size_t>(n * w));
  for (int64_t i = 0; i < n; ++i) split_.copy((first + i) * seq_len_, w, out.data() + i * w);
}

}  // namespace dsv3

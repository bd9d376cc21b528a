#include "train/prepare.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "base/progress.h"
#include "base/staged_folder.h"
#include "base/strings.h"
#include "train/token_file.h"

namespace dsv3 {

namespace fs = std::filesystem;

DocSeparator parse_doc_separator(std::string_view s, std::string_view what) {
  if (s == "record") return DocSeparator::Record;
  if (s == "blank") return DocSeparator::Blank;
  if (s == "line") return DocSeparator::Line;
  throw Error(std::string(what) + " '" + std::string(s) + "' is not one of record, blank, line");
}

namespace {

std::string_view strip_cr(std::string_view line) {
  return !line.empty() && line.back() == '\r' ? line.substr(0, line.size() - 1) : line;
}

bool is_separator(std::string_view line, DocSeparator sep) {
  line = strip_cr(line);
  if (sep == DocSeparator::Record) return line == "\x1e";
  return line.find_first_not_of(" \t") == std::string_view::npos;  // Blank
}

// The document in text[a, b): without the line break ending its last line.
std::string_view document_at(std::string_view text, size_t a, size_t b) {
  std::string_view d = text.substr(a, b - a);
  if (!d.empty() && d.back() == '\n') d.remove_suffix(1);
  return strip_cr(d);
}

}  // namespace

void for_each_document(std::string_view text, DocSeparator sep,
                       const std::function<void(std::string_view doc, size_t end)>& fn) {
  size_t pos = 0, start = 0;
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    const size_t line_end = nl == std::string_view::npos ? text.size() : nl;
    const size_t next = nl == std::string_view::npos ? text.size() : nl + 1;
    const std::string_view line = text.substr(pos, line_end - pos);
    if (sep == DocSeparator::Line) {
      if (!strip_cr(line).empty()) fn(strip_cr(line), next);
    } else if (is_separator(line, sep)) {
      const std::string_view d = document_at(text, start, pos);
      if (!d.empty()) fn(d, next);
      start = next;
    }
    pos = next;
  }
  if (sep != DocSeparator::Line && start < text.size()) {
    const std::string_view d = document_at(text, start, text.size());
    if (!d.empty()) fn(d, text.size());
  }
}

bool in_val_split(std::string_view document, double val_fraction) {
  uint64_t h = fnv1a64(document.data(), document.size());
  // FNV's high bits mix poorly for short inputs: a splitmix64 finaliser spreads them.
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
  h ^= h >> 31;
  return static_cast<double>(h >> 11) * 0x1.0p-53 < val_fraction;
}

ParallelEncoder::ParallelEncoder(const std::string& tokenizer_path, ThreadPool& pool)
    : pool_(pool) {
  // Loaded in parallel: a large vocabulary takes a while to parse.
  toks_.resize(static_cast<size_t>(std::max(1, pool.size())));
  pool.parallel_for(static_cast<int64_t>(toks_.size()), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      toks_[i] = std::make_unique<Tokenizer>(Tokenizer::load(tokenizer_path));
  });
}

void ParallelEncoder::encode(const std::vector<std::string_view>& documents,
                             std::vector<std::vector<int32_t>>& ids) {
  ids.assign(documents.size(), {});
  // Documents differ in size by orders of magnitude: workers take the next one from a counter
  // rather than a fixed range. Each result lands in its own slot, so the order never varies.
  std::atomic<size_t> next{0};
  const int64_t workers = static_cast<int64_t>(toks_.size());
  pool_.parallel_for(workers, [&](int64_t begin, int64_t end) {
    for (int64_t w = begin; w < end; ++w)
      for (size_t i; (i = next.fetch_add(1)) < documents.size();)
        ids[i] = toks_[w]->encode(documents[i], /*add_special_tokens=*/false);
  });
}

std::vector<uint32_t> tokenize_text(ParallelEncoder& enc, std::string_view text, DocSeparator sep) {
  const int32_t eos = enc.tokenizer().eos_id();
  DSV3_CHECK(eos >= 0, "the tokenizer has no end-of-sentence token to end documents with");
  std::vector<std::string_view> docs;
  for_each_document(text, sep, [&](std::string_view d, size_t) { docs.push_back(d); });
  std::vector<std::vector<int32_t>> ids;
  enc.encode(docs, ids);
  std::vector<uint32_t> out;
  for (const auto& v : ids) {
    out.insert(out.end(), v.begin(), v.end());
    out.push_back(static_cast<uint32_t>(eos));
  }
  return out;
}

namespace {

// One split's token stream, cut into shards of opt.shard_tokens as it grows.
class SplitWriter {
 public:
  SplitWriter(std::string dir, std::string name, int64_t shard_tokens, uint32_t vocab)
      : dir_(std::move(dir)), name_(std::move(name)), shard_tokens_(shard_tokens), vocab_(vocab) {}

  void add(const std::vector<int32_t>& ids, int32_t eos) {
    buf_.insert(buf_.end(), ids.begin(), ids.end());
    buf_.push_back(static_cast<uint32_t>(eos));
    info.tokens += static_cast<int64_t>(ids.size()) + 1;
    ++info.documents;
    size_t at = 0;
    while (static_cast<int64_t>(buf_.size() - at) >= shard_tokens_) {
      write(std::span<const uint32_t>(buf_).subspan(at, static_cast<size_t>(shard_tokens_)));
      at += static_cast<size_t>(shard_tokens_);
    }
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<ptrdiff_t>(at));
  }
  void finish() {
    if (!buf_.empty()) write(buf_);
    buf_.clear();
  }
  Json meta() const {
    Json shards = Json::array();
    for (size_t i = 0; i < info.shards.size(); ++i) {
      Json s = Json::object();
      s["file"] = info.shards[i];
      s["tokens"] = counts_[i];
      s["fnv1a64"] = hex64(sums_[i]);
      shards.push_back(std::move(s));
    }
    Json j = Json::object();
    j["documents"] = info.documents;
    j["tokens"] = info.tokens;
    j["shards"] = std::move(shards);
    return j;
  }

  SplitInfo info;

 private:
  void write(std::span<const uint32_t> tokens) {
    std::string n = std::to_string(info.shards.size());
    const std::string file =
        name_ + "-" + std::string(n.size() < 5 ? 5 - n.size() : 0, '0') + n + ".bin";
    sums_.push_back(write_shard(path_join(dir_, file), tokens, vocab_));
    counts_.push_back(static_cast<int64_t>(tokens.size()));
    info.shards.push_back(file);
  }

  std::string dir_, name_;
  int64_t shard_tokens_;
  uint32_t vocab_;
  std::vector<uint32_t> buf_;
  std::vector<int64_t> counts_;
  std::vector<uint64_t> sums_;
};

// Names prepare writes (shards, their temp files) or that make a folder a data set.
bool ours(const std::string& name) {
  return name == "meta.json" || ((starts_with(name, "train-") || starts_with(name, "val-")) &&
                                 name.find(".bin") != std::string::npos);
}

void check_out_dir(const std::string& dir, bool force) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return;
  DSV3_CHECK(fs::is_directory(dir, ec), dir + " exists and is not a folder",
             "give -o a folder to create or a data folder to replace with --force");
  const Leftovers left = find_leftovers(dir);
  if (!left.empty() && !force) left.refuse();
  bool others = false;
  for (const auto& e : fs::directory_iterator(dir))
    others = others || !is_temporary_name(e.path().filename().string());
  DSV3_CHECK(force || !others, dir + " is not empty",
             "choose an empty folder, or pass --force to replace the data set in it");
}

constexpr size_t kBlockBytes = size_t{8} << 20;  // text tokenised per parallel step

}  // namespace

PrepareReport prepare_dataset(const PrepareOptions& opt, ThreadPool& pool) {
  DSV3_CHECK(!opt.inputs.empty(), "data prepare: no --input files");
  char fraction[32];
  std::snprintf(fraction, sizeof fraction, "%g", opt.val_fraction);
  DSV3_CHECK(opt.val_fraction >= 0 && opt.val_fraction < 1,
             "data prepare: --val-fraction must be in [0, 1), not " + std::string(fraction));
  DSV3_CHECK(opt.shard_tokens >= 1, "data prepare: --shard-tokens must be at least 1");
  // A file both trained on and held out would make the validation loss meaningless.
  for (const std::string& v : opt.valid)
    for (const std::string& in : opt.inputs) {
      std::error_code e1, e2;
      DSV3_CHECK(fs::weakly_canonical(v, e1) != fs::weakly_canonical(in, e2),
                 "data prepare: " + v + " is both an --input and a --valid file");
    }
  // Every check before anything is removed or written: output folder, tokenizer, inputs.
  check_out_dir(opt.out_dir, opt.force);
  ParallelEncoder enc(opt.tokenizer, pool);
  const Tokenizer& tok = enc.tokenizer();
  const int32_t eos = tok.eos_id();
  DSV3_CHECK(eos >= 0, "data prepare: the tokenizer " + opt.tokenizer + " has no EOS token",
             "documents are separated by EOS; use a tokenizer with an end-of-sentence token");
  const uint64_t tok_hash = tokenizer_file_hash(opt.tokenizer);
  struct Input {
    MappedFile file;
    bool val;  // the whole file is val (--valid)
  };
  std::vector<Input> inputs;
  PrepareReport rep;
  for (const auto& f : opt.inputs) inputs.push_back({MappedFile(f), false});
  for (const auto& f : opt.valid) inputs.push_back({MappedFile(f), true});
  for (const Input& in : inputs) rep.bytes += in.file.size();

  // The new data set is written in full into a staging folder; the old one (meta.json and its
  // shards) is replaced only at the end, so a failure on the way leaves it usable.
  find_leftovers(opt.out_dir).remove();  // with --force (check_out_dir refused them otherwise)
  StagedFolder out(opt.out_dir);
  rep.vocab_size = tok.vocab_size();
  rep.eos_id = eos;
  const auto vocab = static_cast<uint32_t>(rep.vocab_size);
  SplitWriter train(out.path(), "train", opt.shard_tokens, vocab);
  SplitWriter val(out.path(), "val", opt.shard_tokens, vocab);

  std::optional<ProgressBar> bar;  // constructed only when wanted: it draws at once
  if (opt.progress) bar.emplace("tokenizing", rep.bytes, "B");
  uint64_t done = 0;
  std::vector<std::string_view> docs;
  std::vector<std::vector<int32_t>> ids;
  for (const Input& in : inputs) {
    const std::string_view text(reinterpret_cast<const char*>(in.file.data()), in.file.size());
    size_t block_bytes = 0, last = 0;  // last: the end of the last document taken
    auto flush = [&] {
      enc.encode(docs, ids);
      for (size_t i = 0; i < docs.size(); ++i) {
        const bool to_val =
            in.val || (opt.valid.empty() && in_val_split(docs[i], opt.val_fraction));
        (to_val ? val : train).add(ids[i], eos);
        for (int32_t id : ids[i])
          if (tok.is_special(id)) {
            ++rep.special_in_text;
            if (rep.first_special < 0) rep.first_special = id;
          }
      }
      docs.clear();
      block_bytes = 0;
      if (bar) bar->set(done + last);
    };
    for_each_document(text, opt.separator, [&](std::string_view d, size_t end) {
      docs.push_back(d);
      block_bytes += end - last;
      last = end;
      if (block_bytes >= kBlockBytes) flush();
    });
    flush();
    done += text.size();
  }
  if (bar) bar->finish();
  train.finish();
  val.finish();
  DSV3_CHECK(train.info.tokens > 0,
             "data prepare: the train split is empty (" + std::to_string(val.info.documents) +
                 " documents, all in val)",
             "give more documents, a smaller --val-fraction, or the validation text as --valid");

  Json meta = Json::object();
  meta["format"] = kMetaFormat;
  meta["version"] = kMetaVersion;
  meta["dtype"] = "uint32";
  Json tj = Json::object();
  std::error_code ec;
  const fs::path abs = fs::absolute(opt.tokenizer, ec);
  tj["path"] = ec ? opt.tokenizer : abs.lexically_normal().string();
  tj["fnv1a64"] = hex64(tok_hash);
  meta["tokenizer"] = std::move(tj);
  meta["vocab_size"] = rep.vocab_size;
  meta["eos_id"] = int64_t{eos};
  Json split = Json::object();
  split["method"] = opt.valid.empty() ? "hash" : "file";
  split["val_fraction"] = opt.valid.empty() ? opt.val_fraction : 0.0;
  meta["split"] = std::move(split);
  meta["special_tokens_in_text"] = rep.special_in_text;
  meta["train"] = train.meta();
  meta["val"] = val.meta();
  write_file_atomic(path_join(out.path(), "meta.json"), meta.dump(2) + "\n");
  out.commit("meta.json", ours);
  rep.train = train.info;
  rep.val = val.info;
  return rep;
}

}  // namespace dsv3

#include "tokenizer/tokenizer.h"

#include <filesystem>
#include <mutex>
#include <unordered_map>

#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/post_processor.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/utf8.h"

namespace dsv3 {

struct Tokenizer::Impl {
  std::string source;
  tok::Normalizer normalizer;
  tok::PreTokenizer pre;
  tok::BpeModel bpe;
  std::vector<tok::AddedToken> added;
  tok::AddedTokenMatcher raw_matcher, normalized_matcher;
  std::unordered_map<std::string, int32_t> added_ids;  // content -> id
  std::vector<std::string> tokens, bytes;  // by id: tokenizer.json spelling, decoded bytes
  std::vector<uint8_t> special;            // by id: an added token with special=true
  int32_t bos = -1, eos = -1;
  tok::SpecialTokenFrame specials;  // encode's special tokens: see the rule in tokenizer.h
  std::string chat_template;
  mutable std::mutex cache_mutex;
  mutable tok::WordCache cache;

  void encode_plain(std::string_view text, std::vector<int32_t>& ids, tok::WordCache* c) const {
    pre.split(text, [&](std::string_view piece) { bpe.encode_piece(piece, ids, c); });
  }
  void load_config(const Json& cfg, const std::string& where);
};

namespace {

// bos_token / eos_token: a string, an {"content": ...} object, or null.
std::optional<std::string> config_token(const Json& cfg, std::string_view key,
                                        const std::string& where) {
  const Json* v = cfg.find(key);
  if (!v || v->is_null()) return std::nullopt;
  if (v->is_object())
    return v->at("content").as_string(where + ": " + std::string(key) + ".content");
  return v->as_string(where + ": " + std::string(key));
}

}  // namespace

void Tokenizer::Impl::load_config(const Json& cfg, const std::string& where) {
  auto lookup = [&](std::string_view key) {
    const auto tok = config_token(cfg, key, where);
    if (!tok) return -1;
    auto it = added_ids.find(*tok);
    if (it != added_ids.end()) return it->second;
    auto v = bpe.vocab().find(*tok);
    DSV3_CHECK(v != bpe.vocab().end(),
               where + ": " + std::string(key) + " '" + *tok + "' is not in the vocabulary");
    return v->second;
  };
  bos = lookup("bos_token");
  eos = lookup("eos_token");
  // The rule in tokenizer.h: a Llama tokenizer class (or no class but an add_*_token flag) rebuilds
  // the frame from the flags, as transformers' LlamaTokenizerFast.update_post_processor does.
  const Json* cls = cfg.find("tokenizer_class");
  const std::string cls_name =
      cls && !cls->is_null() ? cls->as_string(where + ": tokenizer_class") : "";
  const Json* add_bos = cfg.find("add_bos_token");
  const Json* add_eos = cfg.find("add_eos_token");
  if (cls_name == "LlamaTokenizerFast" || cls_name == "LlamaTokenizer" ||
      (cls_name.empty() && (add_bos || add_eos))) {
    auto flag = [&](const Json* v, const char* key, bool dflt) {
      return !v ? dflt : v->is_null() ? false : v->as_bool(where + ": " + key);
    };
    specials = {};
    if (flag(add_bos, "add_bos_token", true)) {
      DSV3_CHECK(bos >= 0, where + ": add_bos_token is true but there is no bos_token");
      specials.prefix.push_back(bos);
    }
    if (flag(add_eos, "add_eos_token", false)) {
      DSV3_CHECK(eos >= 0, where + ": add_eos_token is true but there is no eos_token");
      specials.suffix.push_back(eos);
    }
  }
  if (const Json* t = cfg.find("chat_template"); t && !t->is_null()) {
    if (t->is_string()) {
      chat_template = t->as_string();
    } else {  // [{"name": "default", "template": "..."}, ...]
      for (const Json& e : t->as_array(where + ": chat_template"))
        if (e.at("name").as_string(where + ": chat_template[].name") == "default")
          chat_template = e.at("template").as_string(where + ": chat_template[].template");
    }
  }
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_json(std::string_view tokenizer_json, std::string_view config_json,
                               std::string_view source) {
  auto m = std::make_unique<Impl>();
  m->source = std::string(source);
  const std::string& where = m->source;
  const Json j = Json::parse(tokenizer_json, where);
  DSV3_CHECK(j.is_object(), where + ": not a tokenizer.json object");
  m->normalizer = tok::Normalizer::from_json(j.find("normalizer"), where);
  m->pre = tok::PreTokenizer::from_json(j.find("pre_tokenizer"), where);
  DSV3_CHECK(m->pre.byte_level(), where + ": pre_tokenizer has no ByteLevel step",
             "dsv3 supports byte-level BPE tokenizers (GPT-2, Llama-3, Qwen2, DeepSeek-V3 style)");
  if (const Json* d = j.find("decoder"); d && !d->is_null()) {
    const std::string& type = d->at("type").as_string(where + ": decoder.type");
    DSV3_CHECK(type == "ByteLevel", where + ": decoder type '" + type + "' is not supported",
               "dsv3 supports the ByteLevel decoder");
  }
  m->bpe = tok::BpeModel::from_json(j.at("model"), where);

  int32_t limit = m->bpe.id_limit();
  if (const Json* at = j.find("added_tokens"); at && !at->is_null()) {
    for (const Json& a : at->as_array(where + ": added_tokens")) {
      tok::AddedToken t;
      const std::string what = where + ": added_tokens[]";
      const int64_t id = a.at("id").as_int(what + ".id");
      // Added tokens follow the vocabulary (DeepSeek-V3: 128,000 + 815); far beyond it is an error,
      // not an allocation of gigabytes.
      DSV3_CHECK(id >= 0 && id < 2 * (int64_t{m->bpe.id_limit()} + int64_t(at->size())) + 65536,
                 what + ".id " + std::to_string(id) + " is out of range",
                 "token ids must be dense: 0 .. number of tokens - 1");
      t.id = static_cast<int32_t>(id);
      t.content = a.at("content").as_string(what + ".content");
      DSV3_CHECK(!t.content.empty() && tok::utf8_valid(t.content),
                 what + ": empty or invalid UTF-8 content");
      auto flag = [&](const char* k, bool dflt) {
        const Json* v = a.find(k);
        return v ? v->as_bool(what + "." + k) : dflt;
      };
      t.special = flag("special", false);
      t.normalized = flag("normalized", !t.special);
      t.lstrip = flag("lstrip", false);
      t.rstrip = flag("rstrip", false);
      t.single_word = flag("single_word", false);
      limit = std::max(limit, t.id + 1);
      m->added_ids.emplace(t.content, t.id);
      m->added.push_back(std::move(t));
    }
  }
  m->tokens.resize(limit);
  m->bytes.resize(limit);
  m->special.assign(limit, 0);
  for (int32_t id = 0; id < m->bpe.id_limit(); ++id) {
    if (!m->bpe.has_id(id)) continue;
    m->tokens[id] = m->bpe.token(id);
    m->bytes[id] = m->bpe.token_bytes(id);
  }
  std::vector<tok::AddedToken> raw, norm;
  std::vector<std::string> raw_pat, norm_pat;
  for (const tok::AddedToken& t : m->added) {
    m->tokens[t.id] = t.content;
    auto b = tok::byte_level_to_bytes(t.content);
    m->bytes[t.id] = b ? *b : t.content;
    m->special[t.id] = t.special;
    if (t.normalized) {
      norm.push_back(t);
      norm_pat.push_back(m->normalizer.apply(t.content));
    } else {
      raw.push_back(t);
      raw_pat.push_back(t.content);
    }
  }
  m->raw_matcher = tok::AddedTokenMatcher(raw, raw_pat);
  m->normalized_matcher = tok::AddedTokenMatcher(norm, norm_pat);
  m->specials = tok::post_processor_from_json(j.find("post_processor"), limit, where);
  if (!config_json.empty()) {
    const std::string cwhere = where + " (tokenizer_config.json)";
    m->load_config(Json::parse(config_json, cwhere), cwhere);
  }
  return Tokenizer(std::move(m));
}

Tokenizer Tokenizer::load(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const bool dir = fs::is_directory(path, ec);
  const std::string json_path = dir ? path_join(path, "tokenizer.json") : path;
  DSV3_CHECK(
      file_exists(json_path), json_path + ": no such file",
      "a model folder needs tokenizer.json; scripts/fetch-assets.sh fetches the published ones");
  const std::string cfg_path =
      path_join(fs::path(json_path).parent_path().string(), "tokenizer_config.json");
  const std::string cfg = file_exists(cfg_path) ? read_file(cfg_path) : std::string();
  return from_json(read_file(json_path), cfg, json_path);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  const Impl& m = *impl_;
  std::string repaired;
  if (!tok::utf8_valid(text)) {
    repaired = tok::utf8_lossy(text);
    text = repaired;
  }
  // Every token covers at least one byte, so this bounds the count by INT32_MAX (RELIABILITY §1).
  // Checked again on the normalized text, which can be longer (NFC expands some characters).
  auto check_size = [&](size_t bytes) {
    DSV3_CHECK(bytes < size_t{INT32_MAX} - m.specials.prefix.size() - m.specials.suffix.size(),
               "encode: the text is " + std::to_string(bytes) +
                   " bytes (after normalization); at most 2^31 - 2 bytes can be encoded at once",
               "split the text and encode the parts");
  };
  check_size(text.size());
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 2);
  if (add_special_tokens) ids.assign(m.specials.prefix.begin(), m.specials.prefix.end());
  // One caller at a time uses the cache; a concurrent caller encodes without it.
  std::unique_lock lock(m.cache_mutex, std::try_to_lock);
  tok::WordCache* cache = lock.owns_lock() ? &m.cache : nullptr;
  size_t normalized_bytes = 0;  // the length of the text as normalized so far
  m.raw_matcher.split(text, [&](std::string_view run, int32_t id) {
    if (id >= 0) {
      ids.push_back(id);
      normalized_bytes += run.size();
      return;
    }
    if (m.normalizer.identity() && m.normalized_matcher.empty()) {
      m.encode_plain(run, ids, cache);
      return;
    }
    std::string normalized;
    if (!m.normalizer.identity()) {
      normalized = m.normalizer.apply(run);
      run = normalized;
      normalized_bytes += run.size();
      check_size(normalized_bytes);
    }
    m.normalized_matcher.split(run, [&](std::string_view r, int32_t id2) {
      if (id2 >= 0)
        ids.push_back(id2);
      else
        m.encode_plain(r, ids, cache);
    });
  });
  if (add_special_tokens) ids.insert(ids.end(), m.specials.suffix.begin(), m.specials.suffix.end());
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string bytes;
  for (int32_t id : ids) {
    if (skip_special && is_special(id)) continue;
    bytes += token_bytes(id);
  }
  return tok::utf8_lossy(bytes);
}

std::string Tokenizer::normalize(std::string_view text) const {
  return impl_->normalizer.apply(text);
}

int32_t Tokenizer::vocab_size() const {
  return static_cast<int32_t>(impl_->tokens.size());
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  const std::string t(token);
  if (auto it = impl_->added_ids.find(t); it != impl_->added_ids.end()) return it->second;
  if (auto it = impl_->bpe.vocab().find(t); it != impl_->bpe.vocab().end()) return it->second;
  return std::nullopt;
}

std::string Tokenizer::id_to_token(int32_t id) const {
  return id >= 0 && id < vocab_size() ? impl_->tokens[id] : std::string();
}

const std::string& Tokenizer::token_bytes(int32_t id) const {
  DSV3_CHECK(id >= 0 && id < vocab_size(),
             "token id " + std::to_string(id) + " is out of range for " + impl_->source +
                 " (vocabulary size " + std::to_string(vocab_size()) + ")");
  return impl_->bytes[id];  // "" for an unused id, as Hugging Face skips unknown ids
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < vocab_size() && impl_->special[id];
}

std::vector<int32_t> Tokenizer::special_ids() const {
  std::vector<int32_t> out;
  for (int32_t id = 0; id < vocab_size(); ++id)
    if (impl_->special[id]) out.push_back(id);
  return out;
}

int32_t Tokenizer::bos_id() const {
  return impl_->bos;
}
int32_t Tokenizer::eos_id() const {
  return impl_->eos;
}
std::string Tokenizer::bos_token() const {
  return id_to_token(impl_->bos);
}
std::string Tokenizer::eos_token() const {
  return id_to_token(impl_->eos);
}
bool Tokenizer::add_bos_token() const {
  const std::vector<int32_t>& p = impl_->specials.prefix;
  return impl_->bos >= 0 && !p.empty() && p.front() == impl_->bos;
}
const std::vector<int32_t>& Tokenizer::special_prefix() const {
  return impl_->specials.prefix;
}
const std::vector<int32_t>& Tokenizer::special_suffix() const {
  return impl_->specials.suffix;
}
const std::string& Tokenizer::chat_template() const {
  return impl_->chat_template;
}

std::string StreamDecoder::push(int32_t id) {
  if (skip_special_ && tok_.is_special(id)) return {};
  pending_ += tok_.token_bytes(id);
  const size_t keep = tok::utf8_incomplete_tail(pending_);
  std::string out = tok::utf8_lossy(std::string_view(pending_).substr(0, pending_.size() - keep));
  pending_.erase(0, pending_.size() - keep);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out = tok::utf8_lossy(pending_);
  pending_.clear();
  return out;
}

}  // namespace dsv3

// Byte-level BPE training (dsv3 tokenizer train). The text is cut with DeepSeek-V3's pre-tokenizer,
// identical pieces are counted once with their frequency, and pairs are merged most-frequent first;
// ties go to the lower (left id, right id), so the result depends only on the input bytes.
#include <algorithm>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "base/error.h"
#include "base/file.h"
#include "base/progress.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace dsv3 {
namespace {

// DeepSeek-V3's special-token layout, at the start of the vocabulary. <think> and </think> are not
// special, so decode(skip_special) keeps them, as in DeepSeek-R1.
struct Special {
  const char* content;
  bool special;
};
constexpr Special kSpecials[] = {
    {"<｜begin▁of▁sentence｜>", true},
    {"<｜end▁of▁sentence｜>", true},
    {"<｜▁pad▁｜>", true},
    {"<｜User｜>", true},
    {"<｜Assistant｜>", true},
    {"<think>", false},
    {"</think>", false},
};
constexpr int32_t kNumSpecials = sizeof(kSpecials) / sizeof(kSpecials[0]);
constexpr int32_t kFirstByte = kNumSpecials;  // ids kFirstByte + b for the 256 bytes

// A chat template in DeepSeek-R1's format: BOS, system prompts, <｜User｜>/<｜Assistant｜> turns,
// reasoning stripped from assistant history, and a generation prompt that opens <think>.
constexpr const char* kChatTemplate =
    "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif "
    "%}"
    "{% set ns = namespace(system_prompt='') %}"
    "{% for message in messages %}{% if message['role'] == 'system' %}"
    "{% set ns.system_prompt = ns.system_prompt + message['content'] %}{% endif %}{% endfor %}"
    "{{ bos_token }}{{ ns.system_prompt }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ '<｜User｜>' + message['content'] }}"
    "{% elif message['role'] == 'assistant' %}{% set content = message['content'] %}"
    "{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}"
    "{{ '<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>' }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<｜Assistant｜><think>\\n' }}{% endif %}";

uint64_t pair_key(int32_t a, int32_t b) {
  return (uint64_t(uint32_t(a)) << 32) | uint32_t(b);
}

struct Word {
  std::vector<int32_t> symbols;
  uint64_t count;
};

class Trainer {
 public:
  explicit Trainer(std::vector<Word> words) : words_(std::move(words)) {
    for (size_t w = 0; w < words_.size(); ++w) add_pairs(static_cast<uint32_t>(w), +1);
    for (const auto& [key, count] : counts_) heap_.push({count, key});
  }

  // The most frequent pair (ties: lowest key), or false when none reaches min_count.
  bool best(uint64_t min_count, uint64_t* key, uint64_t* count) {
    while (!heap_.empty()) {
      const Entry e = heap_.top();
      heap_.pop();
      auto it = counts_.find(e.key);
      const uint64_t now = it == counts_.end() ? 0 : it->second;
      if (now != e.count) {  // stale: the count fell since this entry was queued
        if (now > 0) heap_.push({now, e.key});
        continue;
      }
      if (now < min_count) return false;
      *key = e.key;
      *count = now;
      return true;
    }
    return false;
  }

  // Replaces every occurrence of the pair in every word holding it by id.
  void merge(uint64_t key, int32_t id) {
    const int32_t a = int32_t(key >> 32), b = int32_t(uint32_t(key));
    std::vector<uint32_t> ws = std::move(where_[key]);
    where_.erase(key);
    std::sort(ws.begin(), ws.end());
    ws.erase(std::unique(ws.begin(), ws.end()), ws.end());
    std::unordered_set<uint64_t> touched;
    for (uint32_t w : ws) {
      std::vector<int32_t>& s = words_[w].symbols;
      bool has = false;
      for (size_t i = 0; i + 1 < s.size(); ++i) has |= s[i] == a && s[i + 1] == b;
      if (!has) continue;
      add_pairs(w, -1);
      std::vector<int32_t> out;
      for (size_t i = 0; i < s.size(); ++i) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          out.push_back(id);
          ++i;
        } else {
          out.push_back(s[i]);
        }
      }
      s.swap(out);
      add_pairs(w, +1);
      for (size_t i = 0; i + 1 < s.size(); ++i)
        if (s[i] == id || s[i + 1] == id) touched.insert(pair_key(s[i], s[i + 1]));
    }
    counts_.erase(key);
    std::vector<uint64_t> fresh(touched.begin(), touched.end());
    std::sort(fresh.begin(), fresh.end());  // queue order must not depend on hash-set order
    for (uint64_t k : fresh) heap_.push({counts_[k], k});
  }

 private:
  struct Entry {
    uint64_t count, key;
    bool operator<(const Entry& o) const {
      return count != o.count ? count < o.count : key > o.key;
    }
  };
  void add_pairs(uint32_t w, int sign) {
    const Word& word = words_[w];
    for (size_t i = 0; i + 1 < word.symbols.size(); ++i) {
      const uint64_t k = pair_key(word.symbols[i], word.symbols[i + 1]);
      if (sign > 0) {
        counts_[k] += word.count;
        where_[k].push_back(w);
      } else if ((counts_[k] -= word.count) == 0) {
        counts_.erase(k);
      }
    }
  }
  std::vector<Word> words_;
  std::unordered_map<uint64_t, uint64_t> counts_;
  std::unordered_map<uint64_t, std::vector<uint32_t>> where_;
  std::priority_queue<Entry> heap_;
};

void write_tokenizer_json(StagedFiles& out, const std::string& path,
                          const std::vector<std::string>& vocab,
                          const std::vector<std::pair<int32_t, int32_t>>& merges) {
  std::string s =
      "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  "
      "\"added_tokens\": [\n";
  for (int32_t i = 0; i < kNumSpecials; ++i) {
    s += "    {\"id\": " + std::to_string(i) +
         ", \"content\": " + json_quote(kSpecials[i].content) +
         ", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, "
         "\"special\": " +
         (kSpecials[i].special ? "true" : "false") + "}" + (i + 1 < kNumSpecials ? ",\n" : "\n");
  }
  s += "  ],\n  \"normalizer\": null,\n  \"pre_tokenizer\": " +
       tok::PreTokenizer::deepseek_v3_json().dump() +
       ",\n  \"post_processor\": null,\n"
       "  \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": "
       "true, "
       "\"use_regex\": true},\n"
       "  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": null,\n"
       "    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n"
       "    \"fuse_unk\": false,\n    \"byte_fallback\": false,\n    \"ignore_merges\": false,\n"
       "    \"vocab\": {\n";
  for (size_t i = 0; i < vocab.size(); ++i)
    s += "      " + json_quote(vocab[i]) + ": " + std::to_string(i) +
         (i + 1 < vocab.size() ? ",\n" : "\n");
  s += "    },\n    \"merges\": [\n";
  for (size_t i = 0; i < merges.size(); ++i)
    s += "      [" + json_quote(vocab[merges[i].first]) + ", " +
         json_quote(vocab[merges[i].second]) + "]" + (i + 1 < merges.size() ? ",\n" : "\n");
  s += "    ]\n  }\n}\n";
  out.write(path, s);
}

void write_tokenizer_config(StagedFiles& out, const std::string& path) {
  Json cfg = Json::object();
  cfg["add_bos_token"] = true;
  cfg["add_eos_token"] = false;
  cfg["bos_token"] = kSpecials[0].content;
  cfg["eos_token"] = kSpecials[1].content;
  cfg["pad_token"] = kSpecials[2].content;
  cfg["clean_up_tokenization_spaces"] = false;
  cfg["legacy"] = true;
  cfg["model_max_length"] = int64_t{16384};
  cfg["tokenizer_class"] = "LlamaTokenizerFast";
  cfg["chat_template"] = kChatTemplate;
  out.write(path, cfg.dump(2) + "\n");
}

}  // namespace

BpeTrainReport train_bpe_tokenizer(const BpeTrainOptions& opt, const std::string& out_dir) {
  constexpr int32_t kMinVocab = kFirstByte + 256;
  DSV3_CHECK(opt.vocab_size >= kMinVocab && opt.vocab_size <= (1 << 24),
             "tokenizer train: --vocab-size must be between " + std::to_string(kMinVocab) +
                 " and 16777216",
             "the vocabulary holds 7 special tokens and 256 bytes before any merge");
  DSV3_CHECK(!opt.inputs.empty(), "tokenizer train: no --input files");
  BpeTrainReport report;

  // 1. Count pre-tokenized pieces over all documents.
  const tok::PreTokenizer pre = tok::PreTokenizer::deepseek_v3();
  std::unordered_map<std::string, uint64_t> counts;
  uint64_t total = 0;
  for (const std::string& f : opt.inputs) total += file_size(f);
  {
    ProgressBar bar("counting words", total, "B");
    if (!opt.progress) bar.finish();
    for (const std::string& f : opt.inputs) {
      const std::string text = tok::utf8_lossy(read_file(f));
      size_t pos = 0;
      while (pos < text.size()) {  // documents end with a line holding only U+001E
        size_t end = text.find("\n\x1e\n", pos);
        const size_t next = end == std::string::npos ? text.size() : end + 3;
        if (end == std::string::npos) end = text.size();
        if (end > pos) {
          pre.split(std::string_view(text).substr(pos, end - pos), [&](std::string_view p) {
            ++counts[std::string(p)];
            ++report.words;
          });
          ++report.documents;
        }
        if (opt.progress) bar.add(next - pos);
        pos = next;
      }
      report.bytes += text.size();
    }
    bar.finish();
  }
  report.unique_words = counts.size();

  // 2. Words in byte order (so ids never depend on hash order), as byte symbols.
  std::vector<std::pair<std::string, uint64_t>> sorted(counts.begin(), counts.end());
  counts.clear();
  std::sort(sorted.begin(), sorted.end());
  std::vector<Word> words;
  words.reserve(sorted.size());
  for (const auto& [w, c] : sorted) {
    Word word{{}, c};
    for (char ch : w) word.symbols.push_back(kFirstByte + static_cast<uint8_t>(ch));
    words.push_back(std::move(word));
  }
  sorted.clear();

  // 3. Merge until the vocabulary is full.
  std::vector<std::string> vocab, bytes;  // by id: tokenizer.json spelling, raw bytes
  std::unordered_map<std::string, int32_t> id_of_bytes;
  for (const Special& s : kSpecials) vocab.push_back(s.content), bytes.push_back(s.content);
  for (int b = 0; b < 256; ++b) {
    const std::string raw(1, static_cast<char>(b));
    vocab.push_back(tok::bytes_to_byte_level(raw));
    bytes.push_back(raw);
    id_of_bytes.emplace(raw, kFirstByte + b);
  }
  std::vector<std::pair<int32_t, int32_t>> merges;
  for (int32_t i = 0; i < kNumSpecials; ++i) id_of_bytes.emplace(bytes[i], i);  // never respelled
  Trainer trainer(std::move(words));
  {
    ProgressBar bar("merging", opt.vocab_size - kMinVocab, "tokens");
    if (!opt.progress) bar.finish();
    uint64_t key = 0, count = 0;
    while (static_cast<int32_t>(vocab.size()) < opt.vocab_size &&
           trainer.best(static_cast<uint64_t>(std::max(opt.min_frequency, 1)), &key, &count)) {
      const int32_t a = int32_t(key >> 32), b = int32_t(uint32_t(key));
      const std::string joined = bytes[a] + bytes[b];
      auto [it, added] = id_of_bytes.emplace(joined, static_cast<int32_t>(vocab.size()));
      if (added) {  // two merge paths can spell the same token: it keeps its first id
        vocab.push_back(tok::bytes_to_byte_level(joined));
        bytes.push_back(joined);
      }
      merges.emplace_back(a, b);
      trainer.merge(key, it->second);
      if (opt.progress) bar.set(vocab.size() - kMinVocab);
    }
    bar.finish();
  }
  report.merges = static_cast<int32_t>(merges.size());
  report.vocab_size = static_cast<int32_t>(vocab.size());

  // Both files are written before either replaces an old one: a failure leaves the old pair.
  make_dirs(out_dir);
  StagedFiles out;
  write_tokenizer_json(out, path_join(out_dir, "tokenizer.json"), vocab, merges);
  write_tokenizer_config(out, path_join(out_dir, "tokenizer_config.json"));
  out.commit();
  return report;
}

}  // namespace dsv3

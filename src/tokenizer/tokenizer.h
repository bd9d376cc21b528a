// The tokenizer module's public header: Hugging Face tokenizer.json byte-level BPE tokenizers
// (DeepSeek-V3, Qwen2, Llama-3 families), giving the same ids as the Hugging Face tokenizers
// library; a streaming decoder; and a trainer for new byte-level BPE tokenizers.
//
// Invalid UTF-8 given to encode: each maximal ill-formed subpart becomes U+FFFD first (the rule of
// Rust's from_utf8_lossy and Node's TextDecoder), then the text is encoded. decode() applies the
// same rule to the bytes of the tokens (a token may hold part of a character).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dsv3 {

class Tokenizer {
 public:
  // path: a model folder (tokenizer.json + optional tokenizer_config.json) or a tokenizer.json
  // file. Throws dsv3::Error naming the file and field on anything unsupported or malformed.
  static Tokenizer load(const std::string& path);
  // From tokenizer.json text (and optional tokenizer_config.json text); source names them in
  // errors.
  static Tokenizer from_json(std::string_view tokenizer_json, std::string_view config_json = {},
                             std::string_view source = "tokenizer.json");
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // add_special_tokens: put special_prefix() before the text's ids and special_suffix() after
  // them (usually just BOS before). Which tokens those are:
  //  - tokenizer_config.json names tokenizer_class LlamaTokenizerFast or LlamaTokenizer, or names
  //    no class but has add_bos_token / add_eos_token: BOS when add_bos_token (default true, null
  //    = false), EOS after when add_eos_token (default false); tokenizer.json's post_processor is
  //    ignored. This is transformers 4.x, whose LlamaTokenizerFast rebuilds its post-processor
  //    from these flags (DeepSeek-V3, R1-Distill and dsv3-en configs: BOS only).
  //  - otherwise (no tokenizer_config.json; PreTrainedTokenizerFast as Llama-3; Qwen2Tokenizer):
  //    tokenizer.json's post_processor (TemplateProcessing's "single" template, Bert/Roberta
  //    [cls] $A [sep], a Sequence holding at most one of those; ByteLevel adds nothing), exactly
  //    what the Hugging Face tokenizers library adds with add_special_tokens=true and transformers'
  //    PreTrainedTokenizerFast too. The lenml Llama-3 package's is ByteLevel only: no BOS.
  // Thread-safe; concurrent calls on one Tokenizer work, one of them using the word cache.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = true) const;
  // skip_special: leave out added tokens marked special. Throws Error for an id out of range.
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;

  // The tokenizer's normalizer (NFC for Qwen2, none for DeepSeek-V3) on valid UTF-8:
  // decode(encode(x)) == normalize(x) for valid x.
  std::string normalize(std::string_view text) const;

  int32_t vocab_size() const;  // 1 + the highest id of the vocabulary and the added tokens
  std::optional<int32_t> token_to_id(std::string_view token) const;  // tokenizer.json spelling
  std::string id_to_token(int32_t id) const;                         // "" when the id is unused
  const std::string& token_bytes(
      int32_t id) const;              // what decode emits for the id (maybe partial UTF-8)
  bool is_special(int32_t id) const;  // an added token with special=true
  std::vector<int32_t> special_ids() const;

  int32_t bos_id() const;  // -1 when there is none
  int32_t eos_id() const;  // -1 when there is none
  std::string bos_token() const;
  std::string eos_token() const;
  bool add_bos_token() const;  // special_prefix() starts with BOS
  const std::vector<int32_t>& special_prefix() const;
  const std::vector<int32_t>& special_suffix() const;
  // tokenizer_config.json's chat_template (the "default" one when it is a list); "" when absent.
  const std::string& chat_template() const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Decodes ids one at a time, emitting text only at UTF-8 character boundaries: the bytes of an
// unfinished character wait for the next token. Concatenated pushes + flush == decode(all ids).
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool skip_special = false)
      : tok_(tok), skip_special_(skip_special) {}
  std::string push(int32_t id);
  std::string flush();  // whatever is left, with U+FFFD for an unfinished character

 private:
  const Tokenizer& tok_;
  bool skip_special_;
  std::string pending_;
};

// Learns a byte-level BPE with DeepSeek-V3's pre-tokenizer and special-token layout, and writes
// tokenizer.json + tokenizer_config.json (with a chat template) into out_dir, replacing old files
// of those names only once both new ones are written. Deterministic.
struct BpeTrainOptions {
  std::vector<std::string> inputs;  // text files; a line holding only U+001E ends a document
  int32_t vocab_size = 4096;        // total, special tokens included
  int32_t min_frequency = 2;        // stop when the best pair is rarer than this
  bool progress = true;
};
struct BpeTrainReport {
  uint64_t bytes = 0, documents = 0, words = 0, unique_words = 0;
  int32_t merges = 0, vocab_size = 0;
};
BpeTrainReport train_bpe_tokenizer(const BpeTrainOptions& opt, const std::string& out_dir);

}  // namespace dsv3

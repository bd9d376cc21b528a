// dsv3 data prepare: text files -> a data folder of uint32 token shards (token_file.h). Each
// document is encoded without special tokens and followed by the tokenizer's EOS; documents are
// spread over the train and val splits by a hash of their bytes (or a separate validation file).
// The output is the same bytes whatever the thread count.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/thread_pool.h"
#include "tokenizer/tokenizer.h"
#include "train/data.h"

namespace dsv3 {

// Where one document ends and the next begins in a text file.
enum class DocSeparator {
  Record,  // a line holding only U+001E (scripts/fetch-corpus.sh); no such line: one document
  Blank,   // one or more blank (or whitespace-only) lines: paragraphs
  Line,    // every line is a document
};
// "record", "blank", "line"; throws Error naming `what` otherwise.
DocSeparator parse_doc_separator(std::string_view s, std::string_view what);

// Calls fn(document, end) for each non-empty document of `text` in order, `end` being the offset
// just past the document's separator. A document is the text between separators without the line
// break that ends its last line (so "text\n\x1e\n" holds the document "text").
void for_each_document(std::string_view text, DocSeparator sep,
                       const std::function<void(std::string_view doc, size_t end)>& fn);

// Encodes documents with one Tokenizer per pool thread (each keeps its own word cache); ids[i] is
// documents[i]'s encoding without special tokens. The same result on any thread count.
class ParallelEncoder {
 public:
  ParallelEncoder(const std::string& tokenizer_path, ThreadPool& pool);
  const Tokenizer& tokenizer() const { return *toks_.front(); }
  void encode(const std::vector<std::string_view>& documents,
              std::vector<std::vector<int32_t>>& ids);

 private:
  ThreadPool& pool_;
  std::vector<std::unique_ptr<Tokenizer>> toks_;
};

// Every document of `text` encoded and followed by EOS, as prepare writes them (eval --file).
std::vector<uint32_t> tokenize_text(ParallelEncoder& enc, std::string_view text, DocSeparator sep);

struct PrepareOptions {
  std::string tokenizer;            // a folder with tokenizer.json, or the file
  std::vector<std::string> inputs;  // text files
  // Non-empty: these files are the val split and every input document is train. Empty: a
  // document is val when a hash of its bytes falls below val_fraction (stable, order-free).
  std::vector<std::string> valid;
  std::string out_dir;
  double val_fraction = 0.01;
  DocSeparator separator = DocSeparator::Record;
  int64_t shard_tokens = int64_t{1} << 26;  // 256 MiB shards
  bool force = false;  // replace a data set in out_dir (or write into a non-empty folder)
  bool progress = true;
};

struct PrepareReport {
  uint64_t bytes = 0;
  int64_t vocab_size = 0;
  int32_t eos_id = -1;
  SplitInfo train, val;
  // Special tokens the text itself encoded to (it spells them, e.g. "<｜end▁of▁sentence｜>" in a
  // document about tokenizers): kept as the tokenizer encodes them, as Hugging Face's does, and
  // reported, since a spelled EOS reads as a document boundary. first_special: one of them.
  int64_t special_in_text = 0;
  int32_t first_special = -1;
};

// Checks everything (tokenizer, inputs, out_dir) before it removes or writes anything; writes the
// shards one by one (each atomically) and meta.json last, so an interrupted run leaves no
// meta.json and the folder is never taken for a data set.
PrepareReport prepare_dataset(const PrepareOptions& opt, ThreadPool& pool);

// Whether a document of these bytes goes to the val split at this fraction.
bool in_val_split(std::string_view document, double val_fraction);

}  // namespace dsv3

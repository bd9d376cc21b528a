// dsv3 tokenizer train: learn a byte-level BPE tokenizer in DeepSeek-V3's format.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>

#include "apps/dsv3/commands.h"
#include "base/error.h"
#include "base/file.h"
#include "base/progress.h"
#include "base/timer.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::cli {

namespace fs = std::filesystem;
namespace {

const char kUsage[] =
    "usage: dsv3 tokenizer train --input FILE [FILE...] --vocab-size N -o DIR [--min-frequency "
    "N]\n\n"
    "Learns a byte-level BPE tokenizer with DeepSeek-V3's pre-tokenizer and special tokens\n"
    "(ids 0-6: <｜begin▁of▁sentence｜> <｜end▁of▁sentence｜> <｜▁pad▁｜> <｜User｜> "
    "<｜Assistant｜>\n"
    "<think> </think>; ids 7-262: the 256 bytes; then the merges) and writes DIR/tokenizer.json "
    "and\n"
    "DIR/tokenizer_config.json (BOS added, DeepSeek-R1-style chat template). The Hugging Face\n"
    "tokenizers library loads the result and encodes like dsv3. Deterministic: the same input "
    "files\n"
    "give the same bytes. In the input, a line holding only U+001E (record separator) ends a "
    "document\n"
    "(the layout of scripts/fetch-corpus.sh, docs/DATA.md).\n\n"
    "  --input FILE...     training text (repeat --input or list several files)\n"
    "  --vocab-size N      total vocabulary size, special tokens included (at least 263)\n"
    "  -o, --out DIR       output folder (created); one that holds a tokenizer is refused\n"
    "  --force             replace the tokenizer files already in DIR (both are written first\n"
    "                      and replace the old pair together, so a failure leaves it as it was)\n"
    "  --min-frequency N   stop merging when the best pair occurs fewer times (default 2)\n";

}  // namespace

int cmd_tokenizer(Args& a) {
  if (a.help()) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  BpeTrainOptions opt;
  opt.inputs = a.get_all({"--input"});
  // Range-checked before narrowing, which would wrap 2^32 + 4096 to 4096.
  auto int32_option = [&](std::string_view name, int64_t dflt) {
    const int64_t v = a.int_or({name}, dflt);
    DSV3_CHECK(v >= INT32_MIN && v <= INT32_MAX, "tokenizer train: " + std::string(name) + " " +
                                                     std::to_string(v) + " is out of range");
    return static_cast<int32_t>(v);
  };
  opt.vocab_size = int32_option("--vocab-size", 0);
  opt.min_frequency = int32_option("--min-frequency", 2);
  const std::string out = a.require({"-o", "--out"}, "output folder");
  const bool force = a.flag({"--force"});
  std::vector<std::string> pos = a.positionals();
  a.finish();
  DSV3_CHECK(!pos.empty() && pos[0] == "train", "tokenizer: expected the action 'train'",
             "usage: dsv3 tokenizer train --input FILE --vocab-size N -o DIR");
  opt.inputs.insert(opt.inputs.end(), pos.begin() + 1, pos.end());  // --input a.txt b.txt
  DSV3_CHECK(opt.vocab_size > 0, "tokenizer train: --vocab-size is required");
  DSV3_CHECK(opt.min_frequency >= 1, "tokenizer train: --min-frequency must be at least 1");
  // Checked before training, which can take minutes: nothing is replaced unasked, and no input
  // is ever written over (not even with --force).
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) {
    const std::string path = (fs::path(out) / f).string();
    for (const std::string& in : opt.inputs)
      DSV3_CHECK(!same_file(in, path),
                 "tokenizer train: -o " + out + " would write " + path + ", which is the input " +
                     in + ": writing there would destroy it",
                 "choose another output folder");
    DSV3_CHECK(force || !fs::exists(fs::symlink_status(path)),
               "tokenizer train: " + path + " already exists",
               "choose another folder or pass --force to replace it");
  }
  opt.progress = ProgressBar::enabled();
  Timer t;
  const BpeTrainReport r = train_bpe_tokenizer(opt, out);
  std::fprintf(
      stderr,
      "tokenizer train: %llu documents, %.1f MB, %llu words (%llu distinct); %d merges; vocabulary "
      "%d; wrote %s/tokenizer.json and tokenizer_config.json in %.1f s\n",
      static_cast<unsigned long long>(r.documents), r.bytes / 1e6,
      static_cast<unsigned long long>(r.words), static_cast<unsigned long long>(r.unique_words),
      r.merges, r.vocab_size, out.c_str(), t.seconds());
  if (r.vocab_size < opt.vocab_size)
    std::fprintf(
        stderr,
        "warning: the corpus ran out of pairs occurring %d+ times: vocabulary %d < %d requested\n",
        opt.min_frequency, r.vocab_size, opt.vocab_size);
  return 0;
}

}  // namespace dsv3::cli

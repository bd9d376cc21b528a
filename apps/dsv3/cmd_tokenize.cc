// dsv3 tokenize: text -> token ids with the model folder's tokenizer.json.
#include <cstdio>
#include <string>

#include "apps/dsv3/commands.h"
#include "base/error.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::cli {
namespace {

const char kUsage[] = R"(usage: dsv3 tokenize -m DIR (--text STR | --file FILE) [--no-bos]

Encodes text with the tokenizer of DIR (tokenizer.json + tokenizer_config.json) and prints the
token ids on one line, separated by spaces, and nothing else on stdout. The ids are those of
Hugging Face's tokenizers and transformers: the special tokens around the text (BOS, ...) come
from tokenizer.json's post_processor, or, for a Llama tokenizer class, from tokenizer_config.json's
add_bos_token / add_eos_token. Invalid UTF-8 is read as U+FFFD, one per maximal ill-formed
subsequence.

  -m, --model DIR   model folder, or a tokenizer.json file
  --text STR        the text to encode
  --file FILE       encode the bytes of FILE instead ('-' for stdin)
  --no-bos          add no special tokens (no BOS)
)";

}  // namespace

int cmd_tokenize(Args& a) {
  if (a.help()) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  const std::string dir = a.require({"-m", "--model"}, "model folder");
  const auto text = a.get({"--text"});
  const auto file = a.get({"--file"});
  const bool no_bos = a.flag({"--no-bos"});
  a.finish();
  DSV3_CHECK(text.has_value() != file.has_value(),
             "tokenize: give exactly one of --text and --file");
  const Tokenizer tok = Tokenizer::load(dir);
  const std::string input = text ? *text : read_file_or_stdin(*file);
  const std::vector<int32_t> ids = tok.encode(input, !no_bos);
  std::string line;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) line += ' ';
    line += std::to_string(ids[i]);
  }
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stdout);
  return 0;
}

}  // namespace dsv3::cli

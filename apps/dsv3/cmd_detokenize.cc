// dsv3 detokenize: token ids -> text with the model folder's tokenizer.json.
#include <cstdio>
#include <string>

#include "apps/dsv3/commands.h"
#include "base/error.h"
#include "base/strings.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::cli {
namespace {

const char kUsage[] =
    "usage: dsv3 detokenize -m DIR --ids LIST [--skip-special]\n\n"
    "Decodes token ids with the tokenizer of DIR and writes the text to stdout exactly (no "
    "newline\n"
    "is added). Bytes that do not form UTF-8 (a token cut inside a character) become U+FFFD.\n\n"
    "  -m, --model DIR   model folder, or a tokenizer.json file\n"
    "  --ids LIST        token ids separated by commas and/or spaces, e.g. 0,1234,5 or \"0 1234 "
    "5\"\n"
    "  --skip-special    leave out special tokens (BOS, EOS, ...)\n";

}  // namespace

int cmd_detokenize(Args& a) {
  if (a.help()) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  const std::string dir = a.require({"-m", "--model"}, "model folder");
  const std::string list = a.require({"--ids"}, "token ids");
  const bool skip = a.flag({"--skip-special"});
  a.finish();
  const std::vector<int32_t> ids = parse_id_list(list, "detokenize: --ids");
  for (int32_t id : ids)
    DSV3_CHECK(id >= 0, "detokenize: id " + std::to_string(id) + " is out of range");
  const Tokenizer tok = Tokenizer::load(dir);
  const std::string text = tok.decode(ids, skip);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

}  // namespace dsv3::cli

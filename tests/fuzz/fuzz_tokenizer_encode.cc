// libFuzzer target for Tokenizer::encode on arbitrary bytes (invalid UTF-8, embedded special
// tokens, huge runs): it must not crash, decode(encode(x)) must equal x after UTF-8 repair (the
// committed dsv3-en-4k tokenizer has no normalizer), and streaming decode must equal decode.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const dsv3::Tokenizer tok =
      dsv3::Tokenizer::load(DSV3_SOURCE_DIR "/assets/tokenizers/dsv3-en-4k");
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::vector<int32_t> ids = tok.encode(text, size % 2 == 0);
  const std::string back = tok.decode(ids, /*skip_special=*/false);
  const std::string want =
      (size % 2 == 0 ? "<｜begin▁of▁sentence｜>" : "") + dsv3::tok::utf8_lossy(text);
  if (back != want) __builtin_trap();
  dsv3::StreamDecoder stream(tok);
  std::string streamed;
  for (int32_t id : ids) streamed += stream.push(id);
  streamed += stream.flush();
  if (streamed != back) __builtin_trap();
  return 0;
}

// libFuzzer target for loading tokenizer.json (with a fixed tokenizer_config.json): malformed JSON,
// wrong types, bad regexes, merges naming missing tokens, huge ids must give dsv3::Error, never a
// crash; a tokenizer that loads must then encode and decode a sample text.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/error.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  try {
    const dsv3::Tokenizer tok =
        dsv3::Tokenizer::from_json(json, R"({"add_bos_token": false})", "fuzz");
    const std::vector<int32_t> ids =
        tok.encode("Hello, world! 123 <s>\xE4\xB8\xAD\xF0\x9F\x98\x80 \xFF", true);
    (void)tok.decode(ids, true);
  } catch (const dsv3::Error&) {
  }
  return 0;
}

#include "tokenizer/byte_level.h"

#include <array>

#include "base/strings.h"
#include "tokenizer/utf8.h"

namespace dsv3::tok {
namespace {

struct Tables {
  std::array<uint32_t, 256> to_cp{};
  std::array<int16_t, 324> to_byte{};  // the alphabet's highest code point is U+0143
  Tables() {
    to_byte.fill(-1);
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      to_cp[b] = printable ? b : next++;
      to_byte[to_cp[b]] = static_cast<int16_t>(b);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

uint32_t byte_to_codepoint(uint8_t b) {
  return tables().to_cp[b];
}

int codepoint_to_byte(uint32_t cp) {
  return cp < 324 ? tables().to_byte[cp] : -1;
}

std::optional<std::string> byte_level_to_bytes(std::string_view token) {
  if (!utf8_valid(token)) return std::nullopt;
  std::string out;
  size_t i = 0;
  while (i < token.size()) {
    const int b = codepoint_to_byte(utf8_next(token, i));
    if (b < 0) return std::nullopt;
    out += static_cast<char>(b);
  }
  return out;
}

std::string bytes_to_byte_level(std::string_view bytes) {
  std::string out;
  for (char c : bytes) append_utf8(out, byte_to_codepoint(static_cast<uint8_t>(c)));
  return out;
}

}  // namespace dsv3::tok

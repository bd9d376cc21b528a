// The byte-level alphabet of GPT-2-style BPE: every byte is shown as one printable code point, so
// that tokens in tokenizer.json are text. Bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF stand for
// themselves; the other 68 bytes map to U+0100 upwards in byte order.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dsv3::tok {

uint32_t byte_to_codepoint(uint8_t b);
// The byte a code point stands for, or -1 when it is not in the byte-level alphabet.
int codepoint_to_byte(uint32_t cp);
// "Ġthe" -> " the". nullopt when some character is outside the alphabet (e.g. an added token such
// as
// "<｜User｜>"), which the Hugging Face ByteLevel decoder then passes through as its UTF-8 bytes.
std::optional<std::string> byte_level_to_bytes(std::string_view token);
std::string bytes_to_byte_level(std::string_view bytes);  // " the" -> "Ġthe"

}  // namespace dsv3::tok

// UTF-8 helpers for the tokenizer. Invalid input follows one rule everywhere (encode, decode,
// streaming): each maximal ill-formed subpart becomes one U+FFFD (Unicode §3.9 "best practice", the
// rule of Rust's String::from_utf8_lossy and of Node's TextDecoder), so raw bytes given to dsv3
// encode like the string a Hugging Face binding would build from them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace dsv3::tok {

// Length of the well-formed sequence starting at s[i] (1-4), or 0 when ill-formed; *bad gets the
// length of the maximal subpart to replace (>= 1) in that case.
size_t utf8_sequence_length(std::string_view s, size_t i, size_t* bad);
bool utf8_valid(std::string_view s);
std::string utf8_lossy(std::string_view s);
// Bytes at the end of s that form an incomplete but still possibly valid sequence (0-3): what a
// streaming decoder holds back until more bytes arrive.
size_t utf8_incomplete_tail(std::string_view s);
// Decodes the code point at s[i] of valid UTF-8 and advances i.
uint32_t utf8_next(std::string_view s, size_t& i);

}  // namespace dsv3::tok

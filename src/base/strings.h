// Small string helpers shared by the apps and the loaders.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dsv3 {

std::vector<std::string> split(std::string_view s, char sep);
bool starts_with(std::string_view s, std::string_view prefix);
bool ends_with(std::string_view s, std::string_view suffix);
// "1.23 GiB", "512 B": binary units for bytes.
std::string human_bytes(uint64_t bytes);
// "671.0B", "2.4M": decimal units for counts such as parameters.
std::string human_count(uint64_t n);
// Parses a decimal integer; throws Error naming `what` on anything else (including overflow).
int64_t parse_int(std::string_view s, std::string_view what);
double parse_double(std::string_view s, std::string_view what);
// Appends the UTF-8 encoding of code point cp (< 0x110000; the caller rejects anything else).
void append_utf8(std::string& out, uint32_t cp);

}  // namespace dsv3

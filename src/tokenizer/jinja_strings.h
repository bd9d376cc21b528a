// Python's str methods on UTF-8 strings (code points, Python's whitespace set), for the Jinja
// interpreter. Case mapping is ASCII-only: chat templates only change the case of ASCII keywords.
#pragma once
#include <cstdint>
#include <string>

#include "tokenizer/jinja_args.h"

namespace dsv3::jinja {

std::string ascii_lower(std::string s);
std::string ascii_upper(std::string s);
std::string py_capitalize(const std::string& s);  // str.capitalize
std::string jinja_title(
    const std::string& s);  // the title filter (words split at -, space, brackets)
// str.strip / lstrip / rstrip: chars == nullptr strips Python whitespace.
std::string py_strip(const std::string& s, const std::string* chars, bool left = true,
                     bool right = true);
std::string py_replace(const std::string& s, const std::string& from, const std::string& to,
                       int64_t count, Budget& budget);
// str.<name>(...) for the methods find_method binds.
Value call_string_method(const std::string& name, const std::string& self, ArgReader& args,
                         Budget& budget);

}  // namespace dsv3::jinja

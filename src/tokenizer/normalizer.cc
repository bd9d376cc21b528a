#include "tokenizer/normalizer.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>

#include "base/error.h"
#include "tokenizer/utf8.h"

namespace dsv3::tok {
namespace {

// Hugging Face normalizes with Unicode 9.0 tables. A character assigned later is, to it, an
// unassigned starter that never reorders, decomposes or composes; cutting the text at such
// characters and keeping them as they are gives the same result (a starter that composes with
// nothing blocks all interaction).
constexpr uint32_t kUnicode9Delta[][2] = {
#include "tokenizer/unicode9_delta.inc"
};

bool after_unicode9(uint32_t cp) {
  auto it = std::upper_bound(std::begin(kUnicode9Delta), std::end(kUnicode9Delta), cp,
                             [](uint32_t c, const uint32_t(&r)[2]) { return c < r[0]; });
  return it != std::begin(kUnicode9Delta) && cp <= (*(it - 1))[1];
}

}  // namespace

void Normalizer::add(const Json& j, std::string_view source, std::vector<Form>& forms) {
  const std::string& type = j.at("type").as_string("normalizer.type");
  if (type == "Sequence") {
    for (const Json& n : j.at("normalizers").as_array("normalizer.normalizers"))
      add(n, source, forms);
  } else if (type == "NFC") {
    forms.push_back(Form::NFC);
  } else if (type == "NFD") {
    forms.push_back(Form::NFD);
  } else if (type == "NFKC") {
    forms.push_back(Form::NFKC);
  } else if (type == "NFKD") {
    forms.push_back(Form::NFKD);
  } else {
    throw Error(
        std::string(source) + ": normalizer type '" + type + "' is not supported",
        "dsv3 supports the Unicode normalization forms (NFC, NFD, NFKC, NFKD) and Sequence");
  }
}

Normalizer Normalizer::from_json(const Json* j, std::string_view source) {
  Normalizer n;
  if (j && !j->is_null()) add(*j, source, n.forms_);
  return n;
}

std::string Normalizer::apply(std::string_view text) const {
  bool ascii = true;  // every normalization form leaves ASCII unchanged
  for (char c : text) ascii &= static_cast<unsigned char>(c) < 0x80;
  if (ascii || forms_.empty()) return std::string(text);
  std::string out;
  size_t start = 0, i = 0;
  while (i < text.size()) {
    const size_t at = i;
    if (after_unicode9(utf8_next(text, i))) {
      out += apply_forms(text.substr(start, at - start));
      out.append(text.substr(at, i - at));
      start = i;
    }
  }
  out += apply_forms(text.substr(start));
  return out;
}

std::string Normalizer::apply_forms(std::string_view text) const {
  std::string s(text);
  for (Form f : forms_) {
    if (s.empty()) break;
    int options = UTF8PROC_STABLE;
    if (f == Form::NFC || f == Form::NFKC) options |= UTF8PROC_COMPOSE;
    if (f == Form::NFD || f == Form::NFKD) options |= UTF8PROC_DECOMPOSE;
    if (f == Form::NFKC || f == Form::NFKD) options |= UTF8PROC_COMPAT;
    utf8proc_uint8_t* out = nullptr;
    const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                                            static_cast<utf8proc_ssize_t>(s.size()), &out,
                                            static_cast<utf8proc_option_t>(options));
    if (n < 0) throw Error(std::string("Unicode normalization failed: ") + utf8proc_errmsg(n));
    s.assign(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
    std::free(out);
  }
  return s;
}

}  // namespace dsv3::tok

#include "tokenizer/normalizer.h"

#include <utf8proc.h>

#include <cstdlib>

#include "base/error.h"

namespace dsv3::tok {

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
  std::string s(text);
  if (ascii) return s;
  for (Form f : forms_) {
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

// The tokenizer.json "normalizer": a sequence of Unicode normalization forms (NFC for Qwen2;
// DeepSeek-V3 has an empty sequence). Other normalizer types are rejected by name at load time.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "base/json.h"

namespace dsv3::tok {

class Normalizer {
 public:
  // j: the "normalizer" value (null or absent means none); source names the file in errors.
  static Normalizer from_json(const Json* j, std::string_view source);
  bool identity() const { return forms_.empty(); }
  std::string apply(std::string_view text) const;  // valid UTF-8 in, valid UTF-8 out

 private:
  enum class Form { NFC, NFD, NFKC, NFKD };
  static void add(const Json& j, std::string_view source, std::vector<Form>& forms);
  std::string apply_forms(std::string_view text) const;
  std::vector<Form> forms_;
};

}  // namespace dsv3::tok

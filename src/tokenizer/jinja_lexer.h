// Jinja lexer: template text -> tokens, with Hugging Face's environment settings applied here
// (trim_blocks, lstrip_blocks, no kept trailing newline) and the "-"/"+" whitespace control marks.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dsv3::jinja {

struct Token {
  enum class Kind {
    Text,
    VarBegin,
    VarEnd,
    BlockBegin,
    BlockEnd,
    Name,
    String,
    Int,
    Float,
    Op,
    End
  };
  Kind kind;
  std::string
      text;  // Text: the text; Name: the identifier; String: the decoded value; Op: the operator
  int64_t int_value = 0;
  double float_value = 0;
  size_t pos = 0;  // byte offset in the normalized source
};

struct LexedTemplate {
  std::string source;  // newlines normalized to "\n", one trailing newline dropped (as Jinja does)
  std::vector<Token> tokens;  // ends with Kind::End
};

LexedTemplate lex(std::string_view template_text);

// How a token reads in an error message: "'}}'", "end of template", "'foo'".
std::string describe_token(const Token& t);
// "line 3, column 14" for a byte offset in LexedTemplate::source.
std::string describe_position(std::string_view source, size_t pos);

}  // namespace dsv3::jinja

#include "tokenizer/jinja_lexer.h"

#include <cstring>

#include "base/error.h"
#include "base/strings.h"

namespace dsv3::jinja {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_name_char(char c) {
  return is_name_start(c) || is_digit(c);
}

// Jinja normalizes every newline sequence to "\n" and, without keep_trailing_newline, drops one
// trailing newline of the template.
std::string normalize_newlines(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '\r') {
      out += '\n';
      if (i + 1 < in.size() && in[i + 1] == '\n') ++i;
    } else {
      out += in[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

class Lexer {
 public:
  explicit Lexer(std::string src) { out_.source = std::move(src); }

  LexedTemplate run() {
    const std::string& s = out_.source;
    bool strip_all = false, trim_newline = false, line_starting = true;
    size_t pos = 0;
    while (pos <= s.size()) {
      size_t tag = find_tag(pos);
      std::string text = s.substr(pos, tag - pos);
      size_t text_pos = pos;
      if (strip_all) {
        size_t k = 0;
        while (k < text.size() && is_space(text[k])) ++k;
        text.erase(0, k);
        text_pos += k;
      } else if (trim_newline && !text.empty() && text[0] == '\n') {
        text.erase(0, 1);
        ++text_pos;
        line_starting = true;
      }
      if (tag == s.size()) {
        emit_text(std::move(text), text_pos);
        break;
      }
      char type = s[tag + 1];  // '{', '%' or '#'
      char mark = tag + 2 < s.size() ? s[tag + 2] : '\0';
      if (mark == '-') {
        while (!text.empty() && is_space(text.back())) text.pop_back();
      } else if (mark != '+' && type != '{') {
        // lstrip_blocks: spaces and tabs between the start of a line and a block or comment tag.
        size_t line_start = text.rfind('\n');
        line_start = line_start == std::string::npos ? 0 : line_start + 1;
        if (line_start > 0 || line_starting) {
          size_t k = line_start;
          while (k < text.size() && is_space(text[k])) ++k;
          if (k == text.size()) text.erase(line_start);
        }
      }
      emit_text(std::move(text), text_pos);
      pos = tag + 2 + ((mark == '-' || mark == '+') ? 1 : 0);
      char close_mark = '\0';
      if (type == '#') {
        pos = close_comment(tag, pos, close_mark);
      } else {
        pos = lex_tag(tag, pos, type == '{', close_mark);
      }
      strip_all = close_mark == '-';
      // trim_blocks: the first newline after a block or comment tag, unless it ends with "+".
      trim_newline = type != '{' && close_mark != '+';
      line_starting = false;
    }
    out_.tokens.push_back(Token{Token::Kind::End, "", 0, 0, s.size()});
    return std::move(out_);
  }

 private:
  LexedTemplate out_;

  [[noreturn]] void fail(size_t pos, const std::string& msg) {
    throw Error("chat template: " + msg + " at " + describe_position(out_.source, pos));
  }

  size_t find_tag(size_t from) const {
    const std::string& s = out_.source;
    for (size_t i = from; i + 1 < s.size(); ++i) {
      if (s[i] == '{' && (s[i + 1] == '{' || s[i + 1] == '%' || s[i + 1] == '#')) return i;
    }
    return s.size();
  }

  void emit_text(std::string text, size_t pos) {
    if (!text.empty()) out_.tokens.push_back(Token{Token::Kind::Text, std::move(text), 0, 0, pos});
  }

  size_t close_comment(size_t open, size_t pos, char& close_mark) {
    size_t end = out_.source.find("#}", pos);
    if (end == std::string::npos) fail(open, "unclosed comment '{#'");
    if (end > pos && (out_.source[end - 1] == '-' || out_.source[end - 1] == '+')) {
      close_mark = out_.source[end - 1];
    }
    return end + 2;
  }

  // Lexes the inside of {{ ... }} or {% ... %}; returns the offset after the closing delimiter.
  size_t lex_tag(size_t open, size_t pos, bool is_var, char& close_mark) {
    const std::string& s = out_.source;
    out_.tokens.push_back(
        Token{is_var ? Token::Kind::VarBegin : Token::Kind::BlockBegin, "", 0, 0, open});
    const char* close = is_var ? "}}" : "%}";
    int depth = 0;  // brackets open inside the tag: "}}" inside a dict literal does not close it
    while (true) {
      while (pos < s.size() && is_space(s[pos])) ++pos;
      if (pos >= s.size()) fail(open, is_var ? "unclosed '{{'" : "unclosed '{%'");
      if (depth == 0) {
        for (char m : {'-', '+', '\0'}) {
          size_t at = pos + (m ? 1 : 0);
          if ((m == '\0' || s[pos] == m) && s.compare(at, 2, close) == 0) {
            close_mark = m;
            out_.tokens.push_back(
                Token{is_var ? Token::Kind::VarEnd : Token::Kind::BlockEnd, "", 0, 0, pos});
            return at + 2;
          }
        }
      }
      char c = s[pos];
      if (is_name_start(c)) {
        size_t b = pos;
        while (pos < s.size() && is_name_char(s[pos])) ++pos;
        out_.tokens.push_back(Token{Token::Kind::Name, s.substr(b, pos - b), 0, 0, b});
      } else if (is_digit(c)) {
        pos = lex_number(pos);
      } else if (c == '\'' || c == '"') {
        pos = lex_string(pos);
      } else {
        static const char* kOps[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*",
                                     "/",  "%",  "~",  "<",  ">",  "=",  "(", ")", "[",
                                     "]",  "{",  "}",  ",",  ".",  ":",  "|"};
        const char* op = nullptr;
        for (const char* o : kOps) {
          if (s.compare(pos, std::strlen(o), o) == 0) {
            op = o;
            break;
          }
        }
        if (!op) fail(pos, std::string("unexpected character '") + c + "'");
        if (std::strchr("([{", op[0])) ++depth;
        if (std::strchr(")]}", op[0]) && depth > 0) --depth;
        out_.tokens.push_back(Token{Token::Kind::Op, op, 0, 0, pos});
        pos += std::strlen(op);
      }
    }
  }

  size_t lex_number(size_t pos) {
    const std::string& s = out_.source;
    size_t b = pos;
    std::string digits;
    auto take_digits = [&] {
      while (pos < s.size() &&
             (is_digit(s[pos]) || (s[pos] == '_' && pos + 1 < s.size() && is_digit(s[pos + 1])))) {
        if (s[pos] != '_') digits += s[pos];
        ++pos;
      }
    };
    take_digits();
    bool is_float = false;
    if (pos + 1 < s.size() && s[pos] == '.' && is_digit(s[pos + 1])) {
      is_float = true;
      digits += s[pos++];
      take_digits();
    }
    if (pos < s.size() && (s[pos] == 'e' || s[pos] == 'E')) {
      size_t k = pos + 1;
      if (k < s.size() && (s[k] == '+' || s[k] == '-')) ++k;
      if (k < s.size() && is_digit(s[k])) {
        is_float = true;
        digits += 'e';
        digits.append(s, pos + 1, k - pos - 1);
        pos = k;
        take_digits();
      }
    }
    Token t{is_float ? Token::Kind::Float : Token::Kind::Int, s.substr(b, pos - b), 0, 0, b};
    if (is_float) {
      t.float_value = std::strtod(digits.c_str(), nullptr);
    } else {
      errno = 0;
      unsigned long long v = std::strtoull(digits.c_str(), nullptr, 10);
      if (errno == ERANGE || v > uint64_t(INT64_MAX)) fail(b, "integer literal too large");
      t.int_value = int64_t(v);
    }
    out_.tokens.push_back(std::move(t));
    return pos;
  }

  // A quoted string with Python's escapes (\n, \t, \\, \', \", \xhh, \uhhhh, \Uhhhhhhhh, octal);
  // an unknown escape keeps its backslash, as Python does.
  size_t lex_string(size_t pos) {
    const std::string& s = out_.source;
    char q = s[pos];
    size_t b = pos++;
    std::string v;
    while (true) {
      if (pos >= s.size()) fail(b, "unterminated string literal");
      char c = s[pos++];
      if (c == q) break;
      if (c != '\\') {
        v += c;
        continue;
      }
      if (pos >= s.size()) fail(b, "unterminated string literal");
      char e = s[pos++];
      static const char kEscapes[] = "nrtabfv\\'\"";
      static const char kMeanings[] = "\n\r\t\a\b\f\v\\'\"";
      const char* simple = e ? std::strchr(kEscapes, e) : nullptr;
      if (simple) {
        v += kMeanings[simple - kEscapes];
      } else if (e == 'x' || e == 'u' || e == 'U') {
        size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
        if (pos + n > s.size()) fail(pos - 2, "truncated \\" + std::string(1, e) + " escape");
        uint32_t cp = 0;
        for (size_t k = 0; k < n; ++k) {
          char h = s[pos + k];
          int d = is_digit(h)              ? h - '0'
                  : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                  : (h >= 'A' && h <= 'F') ? h - 'A' + 10
                                           : -1;
          if (d < 0) fail(pos - 2, "bad \\" + std::string(1, e) + " escape");
          cp = cp * 16 + uint32_t(d);
        }
        if (cp > 0x10ffff) fail(pos - 2, "escape beyond U+10FFFF");
        append_utf8(v, cp);
        pos += n;
      } else if (e >= '0' && e <= '7') {
        uint32_t cp = uint32_t(e - '0');
        for (int k = 0; k < 2 && pos < s.size() && s[pos] >= '0' && s[pos] <= '7'; ++k)
          cp = cp * 8 + uint32_t(s[pos++] - '0');
        append_utf8(v, cp);
      } else {
        v += '\\';
        v += e;
      }
    }
    out_.tokens.push_back(Token{Token::Kind::String, std::move(v), 0, 0, b});
    return pos;
  }
};

}  // namespace

LexedTemplate lex(std::string_view template_text) {
  return Lexer(normalize_newlines(template_text)).run();
}

std::string describe_token(const Token& t) {
  switch (t.kind) {
    case Token::Kind::Text:
      return "text";
    case Token::Kind::VarBegin:
      return "'{{'";
    case Token::Kind::VarEnd:
      return "'}}'";
    case Token::Kind::BlockBegin:
      return "'{%'";
    case Token::Kind::BlockEnd:
      return "'%}'";
    case Token::Kind::End:
      return "end of template";
    case Token::Kind::String:
      return "string literal";
    default:
      return "'" + t.text + "'";
  }
}

std::string describe_position(std::string_view source, size_t pos) {
  size_t line = 1, col = 1;
  for (size_t i = 0; i < pos && i < source.size(); ++i) {
    if (source[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(col);
}

}  // namespace dsv3::jinja

#include "base/json.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <unordered_set>

#include "base/error.h"
#include "base/strings.h"

namespace dsv3 {
namespace {

const char* type_name(Json::Type t) {
  switch (t) {
    case Json::Type::Null:
      return "null";
    case Json::Type::Bool:
      return "a boolean";
    case Json::Type::Int:
      return "an integer";
    case Json::Type::Double:
      return "a number";
    case Json::Type::String:
      return "a string";
    case Json::Type::Array:
      return "an array";
    case Json::Type::Object:
      return "an object";
  }
  return "?";
}

[[noreturn]] void type_error(std::string_view what, const char* want, Json::Type got) {
  throw Error(std::string(what) + " must be " + want + ", got " + type_name(got));
}

class Parser {
 public:
  Parser(std::string_view s, std::string_view source) : s_(s), source_(source) {}

  Json parse_document() {
    skip_ws();
    Json v = parse_value(0);
    skip_ws();
    if (pos_ != s_.size()) fail("trailing characters after the JSON value");
    return v;
  }

 private:
  static constexpr int kMaxDepth = 256;  // bounds recursion on hostile input
  std::string_view s_;
  std::string_view source_;
  size_t pos_ = 0;

  [[noreturn]] void fail(const std::string& msg) const {
    throw Error(std::string(source_) + ": JSON error at byte " + std::to_string(pos_) + ": " + msg);
  }
  void skip_ws() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' || s_[pos_] == '\t'))
      ++pos_;
  }
  bool eat(char c) {
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  void expect_word(std::string_view w) {
    if (s_.substr(pos_, w.size()) != w) fail("invalid literal");
    pos_ += w.size();
  }

  Json parse_value(int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than 256");
    if (pos_ >= s_.size()) fail("unexpected end of input");
    char c = s_[pos_];
    switch (c) {
      case '{':
        return parse_object(depth);
      case '[':
        return parse_array(depth);
      case '"':
        return Json(parse_string());
      case 't':
        expect_word("true");
        return Json(true);
      case 'f':
        expect_word("false");
        return Json(false);
      case 'n':
        expect_word("null");
        return Json(nullptr);
      default:
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number();
        fail(std::string("unexpected character '") + c + "'");
    }
  }

  Json parse_object(int depth) {
    ++pos_;
    Json::Object obj;
    std::unordered_set<std::string> seen;
    skip_ws();
    if (eat('}')) return Json(std::move(obj));
    for (;;) {
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != '"') fail("expected a string key");
      std::string key = parse_string();
      // Duplicate check: a scan for small objects, a hash set for large ones (a 128k-entry
      // tokenizer vocab would otherwise cost O(n^2)).
      bool dup = false;
      if (obj.size() < 32) {
        for (const auto& kv : obj) dup |= kv.first == key;
      } else {
        if (seen.empty())
          for (const auto& kv : obj) seen.insert(kv.first);
        dup = !seen.insert(key).second;
      }
      if (dup) fail("duplicate key \"" + key + "\"");
      skip_ws();
      if (!eat(':')) fail("expected ':'");
      skip_ws();
      Json v = parse_value(depth + 1);
      obj.emplace_back(std::move(key), std::move(v));
      skip_ws();
      if (eat(',')) continue;
      if (eat('}')) break;
      fail("expected ',' or '}'");
    }
    return Json(std::move(obj));
  }

  Json parse_array(int depth) {
    ++pos_;
    Json::Array arr;
    skip_ws();
    if (eat(']')) return Json(std::move(arr));
    for (;;) {
      skip_ws();
      arr.push_back(parse_value(depth + 1));
      skip_ws();
      if (eat(',')) continue;
      if (eat(']')) break;
      fail("expected ',' or ']'");
    }
    return Json(std::move(arr));
  }

  unsigned hex4() {
    if (pos_ + 4 > s_.size()) fail("truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= c - '0';
      else if (c >= 'a' && c <= 'f')
        v |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F')
        v |= c - 'A' + 10;
      else
        fail("invalid \\u escape");
    }
    return v;
  }

  std::string parse_string() {
    ++pos_;  // opening quote
    std::string out;
    for (;;) {
      if (pos_ >= s_.size()) fail("unterminated string");
      unsigned char c = static_cast<unsigned char>(s_[pos_++]);
      if (c == '"') break;
      if (c < 0x20) fail("control character in string");
      if (c != '\\') {
        out += static_cast<char>(c);
        continue;
      }
      if (pos_ >= s_.size()) fail("unterminated escape");
      char e = s_[pos_++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00) {
            // A high surrogate must pair with a low one; a lone one becomes U+FFFD.
            if (pos_ + 6 <= s_.size() && s_[pos_] == '\\' && s_[pos_ + 1] == 'u') {
              size_t save = pos_;
              pos_ += 2;
              unsigned lo = hex4();
              if (lo >= 0xDC00 && lo < 0xE000) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
              } else {
                pos_ = save;
                cp = 0xFFFD;
              }
            } else {
              cp = 0xFFFD;
            }
          } else if (cp >= 0xDC00 && cp < 0xE000) {
            cp = 0xFFFD;
          }
          append_utf8(out, cp);
          break;
        }
        default:
          fail("invalid escape");
      }
    }
    return out;
  }

  Json parse_number() {
    size_t start = pos_;
    bool is_float = false;
    eat('-');
    if (pos_ >= s_.size() || !(s_[pos_] >= '0' && s_[pos_] <= '9')) fail("invalid number");
    if (s_[pos_] == '0') {
      ++pos_;
    } else {
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    }
    if (pos_ < s_.size() && s_[pos_] == '.') {
      is_float = true;
      ++pos_;
      if (pos_ >= s_.size() || !(s_[pos_] >= '0' && s_[pos_] <= '9')) fail("invalid number");
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      is_float = true;
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (pos_ >= s_.size() || !(s_[pos_] >= '0' && s_[pos_] <= '9')) fail("invalid number");
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    }
    std::string tok(s_.substr(start, pos_ - start));
    if (!is_float) {
      errno = 0;
      char* end = nullptr;
      long long v = std::strtoll(tok.c_str(), &end, 10);
      if (errno == 0) return Json(static_cast<int64_t>(v));
      // out of int64 range: keep it as a double
    }
    return Json(std::strtod(tok.c_str(), nullptr));
  }
};

}  // namespace

bool Json::as_bool(std::string_view what) const {
  if (!is_bool()) type_error(what, "a boolean", type());
  return std::get<bool>(v_);
}
int64_t Json::as_int(std::string_view what) const {
  if (is_int()) return std::get<int64_t>(v_);
  if (type() == Type::Double) {
    double d = std::get<double>(v_);
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.2e18)
      return static_cast<int64_t>(d);
  }
  type_error(what, "an integer", type());
}
double Json::as_double(std::string_view what) const {
  if (is_int()) return static_cast<double>(std::get<int64_t>(v_));
  if (type() == Type::Double) return std::get<double>(v_);
  type_error(what, "a number", type());
}
const std::string& Json::as_string(std::string_view what) const {
  if (!is_string()) type_error(what, "a string", type());
  return std::get<std::string>(v_);
}
const Json::Array& Json::as_array(std::string_view what) const {
  if (!is_array()) type_error(what, "an array", type());
  return std::get<Array>(v_);
}
const Json::Object& Json::as_object(std::string_view what) const {
  if (!is_object()) type_error(what, "an object", type());
  return std::get<Object>(v_);
}
Json::Array& Json::as_array(std::string_view what) {
  if (!is_array()) type_error(what, "an array", type());
  return std::get<Array>(v_);
}
Json::Object& Json::as_object(std::string_view what) {
  if (!is_object()) type_error(what, "an object", type());
  return std::get<Object>(v_);
}

const Json* Json::find(std::string_view key) const {
  if (!is_object()) return nullptr;
  for (const auto& kv : std::get<Object>(v_))
    if (kv.first == key) return &kv.second;
  return nullptr;
}
const Json& Json::at(std::string_view key) const {
  const Json* v = find(key);
  if (!v) throw Error("missing key \"" + std::string(key) + "\"");
  return *v;
}
Json& Json::operator[](std::string_view key) {
  if (is_null()) v_ = Object{};
  auto& obj = as_object("JSON value indexed by key");
  for (auto& kv : obj)
    if (kv.first == key) return kv.second;
  obj.emplace_back(std::string(key), Json());
  return obj.back().second;
}
size_t Json::size() const {
  if (is_array()) return std::get<Array>(v_).size();
  if (is_object()) return std::get<Object>(v_).size();
  return 0;
}

Json Json::parse(std::string_view text, std::string_view source) {
  return Parser(text, source).parse_document();
}

std::string json_quote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':  // the short escapes json.dumps, JSON.stringify and serde_json write
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
  return out;
}

void Json::dump_to(std::string& out, int indent, int depth) const {
  auto newline = [&](int d) {
    if (indent < 0) return;
    out += '\n';
    out.append(static_cast<size_t>(indent * d), ' ');
  };
  switch (type()) {
    case Type::Null:
      out += "null";
      break;
    case Type::Bool:
      out += std::get<bool>(v_) ? "true" : "false";
      break;
    case Type::Int:
      out += std::to_string(std::get<int64_t>(v_));
      break;
    case Type::Double: {
      double d = std::get<double>(v_);
      if (!std::isfinite(d)) {
        out += "null";  // JSON has no NaN/Inf
        break;
      }
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.17g", d);
      // Prefer the shortest representation that round-trips.
      for (int p = 1; p <= 17; ++p) {
        char t[32];
        std::snprintf(t, sizeof t, "%.*g", p, d);
        if (std::strtod(t, nullptr) == d) {
          std::memcpy(buf, t, sizeof t);
          break;
        }
      }
      out += buf;
      if (!std::strpbrk(buf, ".eE")) out += ".0";
      break;
    }
    case Type::String:
      out += json_quote(std::get<std::string>(v_));
      break;
    case Type::Array: {
      const auto& a = std::get<Array>(v_);
      out += '[';
      for (size_t i = 0; i < a.size(); ++i) {
        if (i) out += indent < 0 ? ", " : ",";
        newline(depth + 1);
        a[i].dump_to(out, indent, depth + 1);
      }
      if (!a.empty()) newline(depth);
      out += ']';
      break;
    }
    case Type::Object: {
      const auto& o = std::get<Object>(v_);
      out += '{';
      for (size_t i = 0; i < o.size(); ++i) {
        if (i) out += indent < 0 ? ", " : ",";
        newline(depth + 1);
        out += json_quote(o[i].first);
        out += ": ";
        o[i].second.dump_to(out, indent, depth + 1);
      }
      if (!o.empty()) newline(depth);
      out += '}';
      break;
    }
  }
}

std::string Json::dump(int indent) const {
  std::string out;
  dump_to(out, indent, 0);
  return out;
}

}  // namespace dsv3

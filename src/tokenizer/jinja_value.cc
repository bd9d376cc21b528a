#include "tokenizer/jinja_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "base/error.h"
#include "base/json.h"
#include "tokenizer/utf8.h"

namespace dsv3::jinja {

Value::Value(List l) {
  for (const Value& e : l) {
    depth_ = std::max(depth_, e.depth_ + 1);
    nodes_ += e.nodes_;
  }
  depth_ = std::max<uint32_t>(depth_, 1);
  v_ = std::make_shared<const List>(std::move(l));
}

Value::Value(Dict d) {
  for (const auto& kv : d) {
    depth_ = std::max(depth_, kv.second.depth_ + 1);
    nodes_ += kv.second.nodes_;
  }
  depth_ = std::max<uint32_t>(depth_, 1);
  v_ = std::make_shared<const Dict>(std::move(d));
}

const Value* Value::find(std::string_view key) const {
  const Dict* d = is_dict() ? &as_dict() : is_namespace() ? &as_namespace().attrs : nullptr;
  if (!d) return nullptr;
  for (const auto& [k, v] : *d) {
    if (k == key) return &v;
  }
  return nullptr;
}

const char* type_name(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Undefined:
      return "undefined";
    case Value::Kind::None:
      return "NoneType";
    case Value::Kind::Bool:
      return "bool";
    case Value::Kind::Int:
      return "int";
    case Value::Kind::Float:
      return "float";
    case Value::Kind::String:
      return "str";
    case Value::Kind::List:
      return "list";
    case Value::Kind::Dict:
      return "dict";
    case Value::Kind::Namespace:
      return "Namespace";
    case Value::Kind::Callable:
      return "function";
  }
  return "?";
}

bool truthy(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Undefined:
    case Value::Kind::None:
      return false;
    case Value::Kind::Bool:
      return v.as_bool();
    case Value::Kind::Int:
      return v.as_int() != 0;
    case Value::Kind::Float:
      return v.as_double() != 0.0;
    case Value::Kind::String:
      return !v.as_string().empty();
    case Value::Kind::List:
      return !v.as_list().empty();
    case Value::Kind::Dict:
      return !v.as_dict().empty();
    case Value::Kind::Namespace:
    case Value::Kind::Callable:
      return true;
  }
  return false;
}

bool equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_double() == b.as_double();
    return a.as_int() == b.as_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::Undefined:
    case Value::Kind::None:
      return true;
    case Value::Kind::String:
      return a.as_string() == b.as_string();
    case Value::Kind::List: {
      const List &x = a.as_list(), &y = b.as_list();
      if (a.is_tuple() != b.is_tuple()) return false;
      if (&x == &y) return true;  // the same object, as Python's identity shortcut
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i) {
        if (!equal(x[i], y[i])) return false;
      }
      return true;
    }
    case Value::Kind::Dict: {
      if (&a.as_dict() == &b.as_dict()) return true;
      if (a.as_dict().size() != b.as_dict().size()) return false;
      for (const auto& [k, v] : a.as_dict()) {
        const Value* w = b.find(k);
        if (!w || !equal(v, *w)) return false;
      }
      return true;
    }
    case Value::Kind::Namespace:
      return &a.as_namespace() == &b.as_namespace();
    default:
      return false;
  }
}

std::string float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  // Shortest round-trip digits in scientific form, then laid out as Python's repr does: fixed
  // notation while the decimal exponent is in [-4, 16), scientific with a 2-digit exponent outside.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, std::fabs(d), std::chars_format::scientific);
  std::string_view sci(buf, size_t(res.ptr - buf));
  size_t epos = sci.find('e');
  std::string digits;
  digits += sci[0];
  if (epos > 2) digits.append(sci.substr(2, epos - 2));
  int exp10 = std::atoi(std::string(sci.substr(epos + 1)).c_str());
  int decpt = exp10 + 1;  // digits "123" with decpt 1 means 1.23
  std::string out;
  if (std::signbit(d)) out += '-';
  if (decpt < -3 || decpt > 16) {
    out += digits[0];
    if (digits.size() > 1) {
      out += '.';
      out.append(digits, 1);
    }
    char e[16];
    std::snprintf(e, sizeof e, "e%c%02d", exp10 < 0 ? '-' : '+', std::abs(exp10));
    out += e;
  } else if (decpt <= 0) {
    out += "0.";
    out.append(size_t(-decpt), '0');
    out += digits;
  } else if (size_t(decpt) >= digits.size()) {
    out += digits;
    out.append(size_t(decpt) - digits.size(), '0');
    out += ".0";
  } else {
    out.append(digits, 0, size_t(decpt));
    out += '.';
    out.append(digits, size_t(decpt));
  }
  return out;
}

namespace {

std::string string_repr(const std::string& s) {
  bool has_single = s.find('\'') != std::string::npos,
       has_double = s.find('"') != std::string::npos;
  char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  for (unsigned char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == quote) {
      out += '\\';
      out += char(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      char e[8];
      std::snprintf(e, sizeof e, "\\x%02x", c);
      out += e;
    } else {
      out += char(c);
    }
  }
  return out + quote;
}

void json_string(std::string& out, const std::string& s) {
  out += json_quote(s);
}

// Appends text for nested values, refusing to pass max_bytes or kMaxPrintDepth.
struct Printer {
  std::string out;
  size_t max_bytes;

  void check(int depth) const {
    if (out.size() > max_bytes)
      throw Error("value too large to print (over " + std::to_string(max_bytes) + " bytes)");
    if (depth > kMaxPrintDepth)
      throw Error("value nested too deeply to print (a namespace containing itself?)");
  }

  void json(const Value& v, int indent, int depth) {
    check(depth);
    auto newline = [&](int d) {
      out += '\n';
      out.append(size_t(indent) * size_t(d), ' ');
    };
    const char* item_sep = indent < 0 ? ", " : ",";
    switch (v.kind()) {
      case Value::Kind::None:
        out += "null";
        return;
      case Value::Kind::Bool:
        out += v.as_bool() ? "true" : "false";
        return;
      case Value::Kind::Int:
        out += std::to_string(v.as_int());
        return;
      case Value::Kind::Float: {
        double d = v.as_double();
        out += std::isnan(d)   ? "NaN"
               : std::isinf(d) ? (d < 0 ? "-Infinity" : "Infinity")
                               : float_repr(d);
        return;
      }
      case Value::Kind::String:
        json_string(out, v.as_string());
        return;
      case Value::Kind::List: {
        const List& l = v.as_list();
        out += '[';
        for (size_t i = 0; i < l.size(); ++i) {
          if (i) out += item_sep;
          if (indent >= 0) newline(depth + 1);
          json(l[i], indent, depth + 1);
        }
        if (indent >= 0 && !l.empty()) newline(depth);
        out += ']';
        return;
      }
      case Value::Kind::Dict: {
        const Dict& d = v.as_dict();
        out += '{';
        for (size_t i = 0; i < d.size(); ++i) {
          if (i) out += item_sep;
          if (indent >= 0) newline(depth + 1);
          json_string(out, d[i].first);
          out += ": ";
          json(d[i].second, indent, depth + 1);
        }
        if (indent >= 0 && !d.empty()) newline(depth);
        out += '}';
        return;
      }
      case Value::Kind::Namespace:
        throw Error("tojson: a namespace is not JSON serializable");
      case Value::Kind::Undefined:
        throw Error("tojson: '" + v.undefined_name() + "' is undefined (not JSON serializable)");
      case Value::Kind::Callable:
        throw Error("tojson: function '" + v.as_callable().name + "' is not JSON serializable");
    }
  }

  void str(const Value& v, bool quoted, int depth) {
    check(depth);
    switch (v.kind()) {
      case Value::Kind::Undefined:
        if (quoted) out += "Undefined";  // Jinja's repr of an Undefined inside a list
        return;
      case Value::Kind::None:
        out += "None";
        return;
      case Value::Kind::Bool:
        out += v.as_bool() ? "True" : "False";
        return;
      case Value::Kind::Int:
        out += std::to_string(v.as_int());
        return;
      case Value::Kind::Float:
        out += float_repr(v.as_double());
        return;
      case Value::Kind::String:
        out += quoted ? string_repr(v.as_string()) : v.as_string();
        return;
      case Value::Kind::List:
        out += v.is_tuple() ? '(' : '[';
        for (size_t i = 0; i < v.as_list().size(); ++i) {
          if (i) out += ", ";
          str(v.as_list()[i], true, depth + 1);
        }
        if (v.is_tuple() && v.as_list().size() == 1) out += ',';
        out += v.is_tuple() ? ')' : ']';
        return;
      case Value::Kind::Dict:
      case Value::Kind::Namespace: {
        const Dict& d = v.is_dict() ? v.as_dict() : v.as_namespace().attrs;
        out += v.is_dict() ? "{" : "<Namespace {";
        for (size_t i = 0; i < d.size(); ++i) {
          if (i) out += ", ";
          out += string_repr(d[i].first) + ": ";
          str(d[i].second, true, depth + 1);
        }
        out += v.is_dict() ? "}" : "}>";
        return;
      }
      case Value::Kind::Callable:
        out += "<built-in function " + v.as_callable().name + ">";
        return;
    }
  }
};

}  // namespace

std::string to_str(const Value& v, size_t max_bytes) {
  if (v.is_string()) return v.as_string();
  Printer p{"", max_bytes};
  p.str(v, false, 0);
  p.check(0);
  return std::move(p.out);
}

std::string to_json(const Value& v, int indent, size_t max_bytes) {
  Printer p{"", max_bytes};
  p.json(v, indent, 0);
  p.check(0);
  return std::move(p.out);
}

Value from_json(const Json& j) {
  switch (j.type()) {
    case Json::Type::Null:
      return Value::none();
    case Json::Type::Bool:
      return Value(j.as_bool());
    case Json::Type::Int:
      return Value(j.as_int());
    case Json::Type::Double:
      return Value(j.as_double());
    case Json::Type::String:
      return Value(j.as_string());
    case Json::Type::Array: {
      List l;
      for (const Json& e : j.as_array()) l.push_back(from_json(e));
      return Value(std::move(l));
    }
    case Json::Type::Object: {
      Dict d;
      for (const auto& [k, e] : j.as_object()) d.emplace_back(k, from_json(e));
      return Value(std::move(d));
    }
  }
  return Value();
}

namespace {
// Length of the UTF-8 sequence at s[i]; an ill-formed one counts as its maximal subpart (the
// tokenizer's rule), so any byte string splits into "code points" that concatenate back to it.
size_t utf8_len(std::string_view s, size_t i) {
  size_t bad = 1;
  size_t n = tok::utf8_sequence_length(s, i, &bad);
  return n ? n : bad;
}
}  // namespace

std::vector<std::string_view> code_points(std::string_view s) {
  std::vector<std::string_view> out;
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_len(s, i);
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

size_t code_point_count(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); i += utf8_len(s, i)) ++n;
  return n;
}

}  // namespace dsv3::jinja

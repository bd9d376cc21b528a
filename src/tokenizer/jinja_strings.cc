#include "tokenizer/jinja_strings.h"

#include <algorithm>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace dsv3::jinja {

bool is_python_space(std::string_view cp) {
  // str.isspace(): Unicode White_Space plus the ASCII separators 0x1c-0x1f.
  static const char* kSpaces[] = {"\u0085", "\u00a0", "\u1680", "\u2000", "\u2001",
                                  "\u2002", "\u2003", "\u2004", "\u2005", "\u2006",
                                  "\u2007", "\u2008", "\u2009", "\u200a", "\u2028",
                                  "\u2029", "\u202f", "\u205f", "\u3000"};
  if (cp.size() == 1) {
    unsigned char c = static_cast<unsigned char>(cp[0]);
    return c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f);
  }
  for (const char* s : kSpaces) {
    if (cp == s) return true;
  }
  return false;
}

std::string ascii_lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  }
  return s;
}

std::string ascii_upper(std::string s) {
  for (char& c : s) {
    if (c >= 'a' && c <= 'z') c = char(c - 'a' + 'A');
  }
  return s;
}

std::string py_capitalize(const std::string& s) {
  if (s.empty()) return s;
  return ascii_upper(s.substr(0, 1)) + ascii_lower(s.substr(1));
}

std::string jinja_title(const std::string& s) {
  // jinja2.filters.do_title: re.split(r"([-\s\(\{\[\<]+)"), each piece capitalized.
  std::string out;
  bool word_start = true;
  for (auto cp : code_points(s)) {
    bool sep = is_python_space(cp) ||
               (cp.size() == 1 && std::string_view("-({[<").find(cp[0]) != std::string_view::npos);
    if (sep) {
      out += cp;
      word_start = true;
    } else {
      out += word_start ? ascii_upper(std::string(cp)) : ascii_lower(std::string(cp));
      word_start = false;
    }
  }
  return out;
}

std::string py_strip(const std::string& s, const std::string* chars, bool left, bool right) {
  std::vector<std::string_view> cps = code_points(s), set;
  if (chars) set = code_points(*chars);
  auto strip_it = [&](std::string_view cp) {
    return chars ? std::find(set.begin(), set.end(), cp) != set.end() : is_python_space(cp);
  };
  size_t b = 0, e = cps.size();
  while (left && b < e && strip_it(cps[b])) ++b;
  while (right && e > b && strip_it(cps[e - 1])) --e;
  std::string out;
  for (size_t i = b; i < e; ++i) out += cps[i];
  return out;
}

std::string py_replace(const std::string& s, const std::string& from, const std::string& to,
                       int64_t count, Budget& budget) {
  std::string out;
  if (from.empty()) {  // Python inserts `to` before every code point and at the end
    int64_t n = 0;
    for (auto cp : code_points(s)) {
      if (count < 0 || n++ < count) out += to;
      out += cp;
      budget.check_string(out.size());
    }
    if (count < 0 || n < count) out += to;
    return out;
  }
  size_t pos = 0;
  for (int64_t n = 0; count < 0 || n < count; ++n) {
    size_t at = s.find(from, pos);
    if (at == std::string::npos) break;
    out.append(s, pos, at - pos);
    out += to;
    pos = at + from.size();
    budget.check_string(out.size());
  }
  out.append(s, pos);
  budget.check_string(out.size());
  return out;
}

namespace {

List py_split(const std::string& s, const Value& sep, int64_t maxsplit, bool from_right) {
  std::vector<std::string> parts;
  if (sep.is_none() || sep.is_undefined()) {
    // Runs of whitespace, no empty parts; after maxsplit splits the remainder is kept whole
    // (CPython split_whitespace). rsplit is the mirror image: run on reversed code points.
    std::vector<std::string_view> cps = code_points(s);
    if (from_right) std::reverse(cps.begin(), cps.end());
    auto piece = [&](size_t b, size_t e) {
      std::string out;
      for (size_t k = b; k < e; ++k) out += cps[from_right ? e - 1 - (k - b) : k];
      return out;
    };
    size_t i = 0, n = cps.size();
    while (maxsplit < 0 || int64_t(parts.size()) < maxsplit) {
      while (i < n && is_python_space(cps[i])) ++i;
      if (i == n) break;
      size_t j = i;
      while (j < n && !is_python_space(cps[j])) ++j;
      parts.push_back(piece(i, j));
      i = j;
    }
    while (i < n && is_python_space(cps[i])) ++i;
    if (i < n) parts.push_back(piece(i, n));
    if (from_right) std::reverse(parts.begin(), parts.end());
  } else {
    if (!sep.is_string())
      throw Error(std::string("split(): separator must be a string, not ") + type_name(sep));
    const std::string& d = sep.as_string();
    if (d.empty()) throw Error("split(): empty separator");
    if (!from_right) {
      size_t pos = 0;
      while (maxsplit < 0 || int64_t(parts.size()) < maxsplit) {
        size_t at = s.find(d, pos);
        if (at == std::string::npos) break;
        parts.push_back(s.substr(pos, at - pos));
        pos = at + d.size();
      }
      parts.push_back(s.substr(pos));
    } else {
      size_t end = s.size();
      while (maxsplit < 0 || int64_t(parts.size()) < maxsplit) {
        if (end < d.size()) break;
        size_t at = s.rfind(d, end - d.size());
        if (at == std::string::npos) break;
        parts.push_back(s.substr(at + d.size(), end - at - d.size()));
        end = at;
      }
      parts.push_back(s.substr(0, end));
      std::reverse(parts.begin(), parts.end());
    }
  }
  List out;
  for (auto& p : parts) out.emplace_back(std::move(p));
  return out;
}

bool affix_match(const std::string& s, const Value& affix, bool prefix) {
  auto one = [&](const Value& a) {
    if (!a.is_string())
      throw Error(std::string(prefix ? "startswith" : "endswith") +
                  "(): needs a string or a tuple of strings");
    const std::string& x = a.as_string();
    return x.size() <= s.size() && (prefix ? s.compare(0, x.size(), x) == 0
                                           : s.compare(s.size() - x.size(), x.size(), x) == 0);
  };
  if (affix.is_list()) {
    return std::any_of(affix.as_list().begin(), affix.as_list().end(), one);
  }
  return one(affix);
}

}  // namespace

Value call_string_method(const std::string& name, const std::string& self, ArgReader& a,
                         Budget& budget) {
  if (name == "split" || name == "rsplit") {
    Value sep = a.get(0, "sep", Value::none());
    Value maxsplit = a.get(1, "maxsplit", Value(int64_t{-1}));
    if (!maxsplit.is_int()) throw Error(name + "(): maxsplit must be an integer");
    List parts = py_split(self, sep, maxsplit.as_int(), name == "rsplit");
    budget.charge(parts.size() + 1);
    return Value(std::move(parts));
  }
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    Value chars = a.get(0, "chars", Value::none());
    if (!chars.is_none() && !chars.is_string())
      throw Error(name + "(): chars must be a string or None");
    return Value(py_strip(self, chars.is_string() ? &chars.as_string() : nullptr, name != "rstrip",
                          name != "lstrip"));
  }
  if (name == "startswith" || name == "endswith") {
    return Value(affix_match(self, a.require(0, "prefix"), name == "startswith"));
  }
  if (name == "replace") {
    std::string from = a.string(0, "old", ""), to = a.string(1, "new", "");
    Value count = a.get(2, "count", Value(int64_t{-1}));
    if (!count.is_int()) throw Error("replace(): count must be an integer");
    return Value(py_replace(self, from, to, count.as_int(), budget));
  }
  if (name == "lower") return Value(ascii_lower(self));
  if (name == "upper") return Value(ascii_upper(self));
  if (name == "capitalize") return Value(py_capitalize(self));
  if (name == "title") {
    std::string out;
    bool prev_letter = false;
    for (char c : self) {
      bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
      out += letter ? (prev_letter ? ascii_lower(std::string(1, c))
                                   : ascii_upper(std::string(1, c)))[0]
                    : c;
      prev_letter = letter;
    }
    return Value(std::move(out));
  }
  if (name == "find" || name == "count") {
    std::string sub = a.string(0, "sub", "");
    if (name == "find") {
      size_t at = self.find(sub);
      return Value(at == std::string::npos ? int64_t{-1}
                                           : int64_t(code_point_count(self.substr(0, at))));
    }
    if (sub.empty()) return Value(int64_t(code_point_count(self) + 1));
    int64_t n = 0;
    for (size_t at = self.find(sub); at != std::string::npos; at = self.find(sub, at + sub.size()))
      ++n;
    return Value(n);
  }
  if (name == "join") {
    Value items = a.require(0, "iterable");
    if (!items.is_list()) throw Error("join(): needs a list of strings");
    std::string out;
    for (size_t i = 0; i < items.as_list().size(); ++i) {
      const Value& item = items.as_list()[i];
      if (!item.is_string())
        throw Error(std::string("join(): sequence item ") + std::to_string(i) +
                    ": expected str, found " + type_name(item));
      out += (i ? self : "") + item.as_string();
      budget.check_string(out.size());
    }
    return Value(std::move(out));
  }
  throw Error("unsupported construct: method str." + name + "()");
}

}  // namespace dsv3::jinja

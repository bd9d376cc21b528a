#include "tokenizer/jinja_builtins.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ctime>

#include "base/error.h"
#include "tokenizer/jinja_args.h"
#include "tokenizer/jinja_strings.h"

namespace dsv3::jinja {
namespace {

const std::string& need_string(const std::string& what, const Value& v) {
  if (!v.is_string()) throw Error(what + " needs a string, not " + type_name(v));
  return v.as_string();
}

// Jinja's attribute lookup for filters such as map(attribute="x"): item first, then nothing.
Value attribute_of(const Value& v, const std::string& attr) {
  const Value* f = v.find(attr);
  return f ? *f : Value::undefined(attr);
}

Value select_items(const std::string& name, const Value& subject, const std::vector<Value>& args,
                   const Kwargs& kwargs) {
  bool by_attr = name == "selectattr" || name == "rejectattr";
  bool keep_if = name == "select" || name == "selectattr";
  if (!kwargs.empty()) throw Error(name + ": keyword arguments are not supported");
  size_t first_test_arg = by_attr ? 1 : 0;
  if (by_attr && (args.empty() || !args[0].is_string()))
    throw Error(name + ": needs an attribute name");
  std::string test =
      args.size() > first_test_arg ? need_string(name + " test", args[first_test_arg]) : "";
  std::vector<Value> test_args(args.begin() + std::min(args.size(), first_test_arg + 1),
                               args.end());
  List out;
  if (!truthy(subject)) return Value(std::move(out));  // Jinja: "if value: for item in value"
  for (const Value& item : iterate(name, subject)) {
    Value probe = by_attr ? attribute_of(item, args[0].as_string()) : item;
    bool pass = test.empty() ? truthy(probe) : apply_test(test, probe, test_args);
    if (pass == keep_if) out.push_back(item);
  }
  return Value(std::move(out));
}

Value first_or_last(const Value& v, bool first) {
  List items = iterate(first ? "first" : "last", v);
  if (items.empty()) return Value::undefined(first ? "first" : "last");
  return first ? items.front() : items.back();
}

Value sort_filter(const Value& subject, ArgReader& a) {
  bool reverse = truthy(a.get(0, "reverse", Value(false)));
  bool case_sensitive = truthy(a.get(1, "case_sensitive", Value(false)));
  Value attr = a.get(2, "attribute");
  a.finish();
  List items = iterate("sort", subject);
  auto key = [&](const Value& v) {
    Value k = attr.is_string() ? attribute_of(v, attr.as_string()) : v;
    return (!case_sensitive && k.is_string()) ? Value(ascii_lower(k.as_string())) : k;
  };
  std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
    int c = compare(key(x), key(y));
    return reverse ? c > 0 : c < 0;
  });
  return Value(std::move(items));
}

Value indent_filter(const Value& subject, ArgReader& a) {
  Value width = a.get(0, "width", Value(int64_t{4}));
  bool first = truthy(a.get(1, "first", Value(false)));
  bool blank = truthy(a.get(2, "blank", Value(false)));
  a.finish();
  std::string pad = width.is_string()
                        ? width.as_string()
                        : std::string(size_t(std::max<int64_t>(0, width.as_int())), ' ');
  std::string s = to_str(subject), out;
  size_t start = 0;
  for (size_t line = 0; start <= s.size(); ++line) {
    size_t nl = s.find('\n', start);
    std::string text = s.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    bool is_blank = text.find_first_not_of(" \t\r\f\v") == std::string::npos;
    if ((line > 0 || first) && (blank || !is_blank)) out += pad;
    out += text;
    if (nl == std::string::npos) break;
    out += '\n';
    start = nl + 1;
  }
  return Value(std::move(out));
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

int64_t float_to_int(double d) {
  if (!(d > -9.3e18 && d < 9.3e18))
    throw Error("cannot convert float " + float_repr(d) + " to a 64-bit integer");
  return int64_t(d);
}

// jinja2.filters.do_int: int(value), else int(float(value)), else the default.
int64_t to_int(const Value& v, const Value& dflt) {
  if (v.is_float() && std::isnan(v.as_double())) return dflt.is_number() ? dflt.as_int() : 0;
  if (v.is_number()) return v.is_float() ? float_to_int(v.as_double()) : v.as_int();
  if (v.is_string()) {
    std::string s = py_strip(v.as_string(), nullptr);
    char* end = nullptr;
    errno = 0;
    long long i = std::strtoll(s.c_str(), &end, 10);
    if (!s.empty() && *end == '\0' && errno == 0) return i;
    double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && *end == '\0' && std::isfinite(d)) return float_to_int(d);
  }
  return dflt.is_number() ? dflt.as_int() : 0;
}

}  // namespace

List iterate(const std::string& what, const Value& v) {
  switch (v.kind()) {
    case Value::Kind::List:
      return v.as_list();
    case Value::Kind::Dict: {
      List keys;
      for (const auto& kv : v.as_dict()) keys.emplace_back(kv.first);
      return keys;
    }
    case Value::Kind::String: {
      List cps;
      for (auto cp : code_points(v.as_string())) cps.emplace_back(std::string(cp));
      return cps;
    }
    case Value::Kind::Undefined:
      return {};
    default:
      throw Error(what + ": '" + type_name(v) + "' object is not iterable");
  }
}

namespace {
constexpr const char* kFilters[] = {
    "abs",    "capitalize", "count",   "d",       "dictsort", "default", "e",
    "escape", "first",      "float",   "indent",  "int",      "items",   "join",
    "last",   "length",     "list",    "lower",   "map",      "max",     "min",
    "reject", "rejectattr", "replace", "reverse", "safe",     "select",  "selectattr",
    "sort",   "string",     "title",   "tojson",  "trim",     "upper"};
// Tests without an argument, then those with one.
constexpr const char* kTests[] = {"defined", "undefined", "none",     "boolean",  "true",
                                  "false",   "integer",   "float",    "number",   "string",
                                  "mapping", "iterable",  "sequence", "callable", "odd",
                                  "even",    "lower",     "upper"};
constexpr const char* kTestsWithArgument[] = {
    "divisibleby", "eq", "equalto", "==",          "ne", "!=", "lt", "lessthan", "<",
    "le",          "<=", "gt",      "greaterthan", ">",  "ge", ">=", "in"};
template <size_t N>
bool listed(const char* const (&names)[N], const std::string& name) {
  return std::any_of(std::begin(names), std::end(names), [&](const char* n) { return name == n; });
}
}  // namespace

bool is_known_filter(const std::string& name) {
  return listed(kFilters, name);
}
bool is_known_test(const std::string& name) {
  return listed(kTests, name) || listed(kTestsWithArgument, name);
}

Value apply_filter(const std::string& name, const Value& v, const std::vector<Value>& args,
                   const Kwargs& kwargs, Budget& budget) {
  ArgReader a("filter '" + name + "'", args, kwargs);
  if (name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr") {
    return select_items(name, v, args, kwargs);
  }
  if (name == "sort") return sort_filter(v, a);
  if (name ==
      "dictsort") {  // jinja2.filters.do_dictsort: (key, value) pairs sorted by key or value
    bool case_sensitive = truthy(a.get(0, "case_sensitive", Value(false)));
    std::string by = a.string(1, "by", "key");
    bool reverse = truthy(a.get(2, "reverse", Value(false)));
    a.finish();
    if (!v.is_dict())
      throw Error(std::string("filter 'dictsort': needs a mapping, not ") + type_name(v));
    if (by != "key" && by != "value") throw Error("filter 'dictsort': by must be 'key' or 'value'");
    List pairs;
    for (const auto& [k, e] : v.as_dict()) pairs.push_back(Value::tuple({Value(k), e}));
    size_t field = by == "key" ? 0 : 1;
    auto key = [&](const Value& p) {
      const Value& x = p.as_list()[field];
      return (!case_sensitive && x.is_string()) ? Value(ascii_lower(x.as_string())) : x;
    };
    std::stable_sort(pairs.begin(), pairs.end(), [&](const Value& x, const Value& y) {
      int c = compare(key(x), key(y));
      return reverse ? c > 0 : c < 0;
    });
    return Value(std::move(pairs));
  }
  if (name == "indent") return indent_filter(v, a);
  if (name == "map") {
    Value attr = a.keyword("attribute");
    Value dflt = a.keyword("default");
    List out;
    if (!truthy(v)) return Value(std::move(out));  // Jinja: "if value: for item in value"
    if (attr.is_string()) {
      a.finish();
      for (const Value& item : iterate(name, v)) {
        Value r = attribute_of(item, attr.as_string());
        out.push_back(r.is_undefined() && !dflt.is_undefined() ? dflt : r);
      }
    } else {
      const std::vector<Value>& rest = a.rest();
      a.finish();
      if (rest.empty()) throw Error("filter 'map': needs a filter name or attribute=");
      std::string filter = need_string("filter 'map'", rest[0]);
      std::vector<Value> fargs(rest.begin() + 1, rest.end());
      for (const Value& item : iterate(name, v))
        out.push_back(apply_filter(filter, item, fargs, {}, budget));
    }
    return Value(std::move(out));
  }
  Value result;
  if (name == "tojson") {
    Value ensure_ascii = a.get(0, "ensure_ascii", Value(false));
    Value indent = a.get(1, "indent", Value::none());
    Value sort_keys = a.get(3, "sort_keys", Value(false));
    if (truthy(ensure_ascii) || truthy(sort_keys) ||
        !a.get(2, "separators", Value::none()).is_none()) {
      throw Error("filter 'tojson': only the indent argument is supported");
    }
    if (!indent.is_none() && !indent.is_int())
      throw Error("filter 'tojson': indent must be an integer");
    result =
        Value(to_json(v, indent.is_none() ? -1 : int(std::clamp<int64_t>(indent.as_int(), 0, 64))));
  } else if (name == "trim") {
    Value chars = a.get(0, "chars", Value::none());
    result = Value(py_strip(to_str(v), chars.is_string() ? &chars.as_string() : nullptr));
  } else if (name == "length" || name == "count") {
    if (v.is_string()) {
      result = Value(int64_t(code_point_count(v.as_string())));
    } else if (v.is_list() || v.is_dict()) {
      result = Value(int64_t(v.is_list() ? v.as_list().size() : v.as_dict().size()));
    } else if (v.is_undefined()) {
      result = Value(int64_t{0});
    } else {
      throw Error("filter 'length': object of type '" + std::string(type_name(v)) +
                  "' has no len()");
    }
  } else if (name == "default" || name == "d") {
    Value dflt = a.get(0, "default_value", Value(""));
    bool boolean = truthy(a.get(1, "boolean", Value(false)));
    result = (v.is_undefined() || (boolean && !truthy(v))) ? dflt : v;
  } else if (name == "join") {
    std::string sep = a.string(0, "d", "");
    Value attr = a.get(1, "attribute");
    std::string out;
    bool first = true;
    for (const Value& item : iterate(name, v)) {
      out += (first ? "" : sep) +
             to_str(attr.is_string() ? attribute_of(item, attr.as_string()) : item);
      first = false;
      budget.check_string(out.size());
    }
    result = Value(std::move(out));
  } else if (name == "upper" || name == "lower") {
    result = Value(name == "upper" ? ascii_upper(to_str(v)) : ascii_lower(to_str(v)));
  } else if (name == "capitalize") {
    result = Value(py_capitalize(to_str(v)));
  } else if (name == "title") {
    result = Value(jinja_title(to_str(v)));
  } else if (name == "replace") {
    std::string from = a.string(0, "old", ""), to = a.string(1, "new", "");
    Value count = a.get(2, "count", Value::none());
    result = Value(py_replace(to_str(v), from, to, count.is_int() ? count.as_int() : -1, budget));
  } else if (name == "string") {
    result = Value(to_str(v));
  } else if ((name == "int" || name == "float") && v.is_undefined()) {
    throw Error("'" + v.undefined_name() + "' is undefined");
  } else if (name == "int") {
    result = Value(to_int(v, a.get(0, "default", Value(int64_t{0}))));
  } else if (name == "float") {
    Value dflt = a.get(0, "default", Value(0.0));
    if (v.is_number()) {
      result = Value(v.as_double());
    } else {
      std::string s = v.is_string() ? py_strip(v.as_string(), nullptr) : "";
      char* end = nullptr;
      double d = s.empty() ? 0 : std::strtod(s.c_str(), &end);
      result = (!s.empty() && *end == '\0') ? Value(d) : dflt;
    }
  } else if (name == "abs") {
    if (!v.is_number())
      throw Error(std::string("filter 'abs': bad operand type '") + type_name(v) + "'");
    if (v.is_float()) {
      result = Value(std::abs(v.as_double()));
    } else {
      if (v.as_int() == INT64_MIN) throw Error("filter 'abs': integer overflow");
      result = Value(int64_t(std::abs(v.as_int())));
    }
  } else if (name == "list") {
    result = Value(iterate(name, v));
  } else if (name == "first" || name == "last") {
    result = first_or_last(v, name == "first");
  } else if (name == "items") {
    List out;
    if (v.is_dict()) {
      for (const auto& [k, e] : v.as_dict()) out.push_back(Value::tuple({Value(k), e}));
    } else if (!v.is_undefined()) {
      throw Error(std::string("filter 'items': can only get item pairs from a mapping, not ") +
                  type_name(v));
    }
    result = Value(std::move(out));
  } else if (name == "reverse") {
    List items = iterate(name, v);
    std::reverse(items.begin(), items.end());
    if (v.is_string()) {
      std::string s;
      for (const Value& c : items) s += c.as_string();
      result = Value(std::move(s));
    } else {
      result = Value(std::move(items));
    }
  } else if (name == "min" || name == "max") {
    bool case_sensitive = truthy(a.get(0, "case_sensitive", Value(false)));
    List items = iterate(name, v);
    if (items.empty()) return Value::undefined(name);
    auto key = [&](const Value& x) {  // Jinja compares strings case-insensitively by default
      return (!case_sensitive && x.is_string()) ? Value(ascii_lower(x.as_string())) : x;
    };
    Value best = items[0];
    for (const Value& x : items) {
      int c = compare(key(x), key(best));
      if (name == "min" ? c < 0 : c > 0) best = x;
    }
    result = best;
  } else if (name == "safe") {
    result = v;
  } else if (name == "escape" || name == "e") {
    result = Value(html_escape(to_str(v)));
  } else {
    throw Error("unsupported construct: filter '" + name + "'");
  }
  a.finish();
  if (result.is_string()) budget.check_string(result.as_string().size());
  return result;
}

bool apply_test(const std::string& name, const Value& v, const std::vector<Value>& args) {
  auto arg = [&]() -> const Value& {
    if (args.size() != 1) throw Error("test '" + name + "' needs one argument");
    return args[0];
  };
  if (!is_known_test(name)) throw Error("unsupported construct: test '" + name + "'");
  if (!listed(kTestsWithArgument, name) && !args.empty())
    throw Error("test '" + name + "' takes no argument");
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "boolean") return v.is_bool();
  if (name == "true") return v.is_bool() && v.as_bool();
  if (name == "false") return v.is_bool() && !v.as_bool();
  if (name == "integer") return v.is_int();
  if (name == "float") return v.is_float();
  if (name == "number") return v.is_number();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.is_dict();
  if (name == "iterable" || name == "sequence") {
    return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
  }
  if (name == "callable") return v.is_callable();
  if (name == "odd" || name == "even") {  // value % 2 == 1 (or 0), floats included
    if (!v.is_number()) throw Error("test '" + name + "' needs a number, not " + type_name(v));
    double m = v.is_float() ? std::fmod(v.as_double(), 2.0) : double(v.as_int() % 2);
    if (m < 0) m += 2;
    return m == (name == "odd" ? 1.0 : 0.0);
  }
  if (name == "divisibleby") {
    const Value& n = arg();
    if (!v.is_number() || !n.is_number()) throw Error("test 'divisibleby' needs numbers");
    if (n.as_double() == 0) throw Error("test 'divisibleby': division by zero");
    if (v.is_float() || n.is_float()) return std::fmod(v.as_double(), n.as_double()) == 0;
    return n.as_int() == -1 || v.as_int() % n.as_int() == 0;
  }
  if (name == "eq" || name == "equalto" || name == "==") return equal(v, arg());
  if (name == "ne" || name == "!=") return !equal(v, arg());
  if (name == "lt" || name == "lessthan" || name == "<") return compare(v, arg()) < 0;
  if (name == "le" || name == "<=") return compare(v, arg()) <= 0;
  if (name == "gt" || name == "greaterthan" || name == ">") return compare(v, arg()) > 0;
  if (name == "ge" || name == ">=") return compare(v, arg()) >= 0;
  if (name == "in") return contains(arg(), v);
  if (name == "lower" || name == "upper") {  // str.islower/isupper: needs a cased character
    const std::string s = to_str(v);         // jinja2.tests.test_lower: str(value).islower()
    bool cased = std::any_of(s.begin(), s.end(),
                             [](char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; });
    return cased && (name == "lower" ? ascii_lower(s) : ascii_upper(s)) == s;
  }
  throw Error("unsupported construct: test '" + name + "'");
}

Value find_method(const Value& self, const std::string& name) {
  static const char* kStringMethods[] = {"split",      "rsplit",     "strip",   "lstrip", "rstrip",
                                         "startswith", "endswith",   "replace", "lower",  "upper",
                                         "title",      "capitalize", "find",    "count",  "join"};
  static const char* kDictMethods[] = {"items", "keys", "values", "get"};
  auto bind = [&](const auto& names) {
    for (const char* m : names) {
      if (name == m) return Value(Callable{name, std::make_shared<const Value>(self)});
    }
    return Value::undefined(name);
  };
  if (self.is_string()) return bind(kStringMethods);
  if (self.is_dict()) return bind(kDictMethods);
  return Value::undefined(name);
}

bool is_global_function(const std::string& name) {
  return name == "namespace" || name == "range" || name == "raise_exception" || name == "dict" ||
         name == "strftime_now";
}

Value call(const Callable& fn, const std::vector<Value>& args, const Kwargs& kwargs,
           Budget& budget) {
  ArgReader a(fn.name + "()", args, kwargs);
  if (!fn.self) {
    if (fn.name == "raise_exception") {
      Value msg = a.require(0, "message");
      a.finish();
      throw Error("raise_exception: " + to_str(msg));
    }
    if (fn.name == "strftime_now") {  // Hugging Face's global: datetime.now().strftime(format)
      std::string format = a.string(0, "format", "");
      a.finish();
      std::time_t now = std::time(nullptr);
      std::tm local{};
      localtime_r(&now, &local);
      char buf[512];
      size_t n = format.size() < 200 ? std::strftime(buf, sizeof buf, format.c_str(), &local) : 0;
      if (n == 0 && !format.empty()) throw Error("strftime_now(): cannot format '" + format + "'");
      return Value(std::string(buf, n));
    }
    if (fn.name == "namespace" || fn.name == "dict") {
      if (args.size() > 1 || (args.size() == 1 && !args[0].is_dict())) {
        throw Error(fn.name + "(): takes keyword arguments or one dict");
      }
      Dict d = args.empty() ? Dict{} : args[0].as_dict();
      for (const auto& kv : kwargs) {
        auto it =
            std::find_if(d.begin(), d.end(), [&](const auto& e) { return e.first == kv.first; });
        if (it != d.end()) {
          it->second = kv.second;
        } else {
          d.push_back(kv);
        }
      }
      if (fn.name == "dict") return Value(std::move(d));
      auto ns = std::make_shared<Namespace>();
      ns->attrs = std::move(d);
      return Value(std::move(ns));
    }
    if (fn.name == "range") {
      if (!kwargs.empty() || args.empty() || args.size() > 3)
        throw Error("range(): takes 1 to 3 integers");
      for (const Value& x : args) {
        if (!x.is_number() || x.is_float()) throw Error("range(): arguments must be integers");
      }
      int64_t start = args.size() > 1 ? args[0].as_int() : 0;
      int64_t stop = args.size() > 1 ? args[1].as_int() : args[0].as_int();
      int64_t step = args.size() > 2 ? args[2].as_int() : 1;
      if (step == 0) throw Error("range(): step must not be zero");
      List out;
      for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
        budget.check_list(out.size() + 1);
        budget.charge(1);
        out.emplace_back(i);
        if ((step > 0 && i > INT64_MAX - step) || (step < 0 && i < INT64_MIN - step)) break;
      }
      return Value(std::move(out));
    }
    throw Error("unsupported construct: function '" + fn.name + "'");
  }
  const Value& self = *fn.self;
  if (self.is_dict()) {
    if (fn.name == "get") {
      Value key = a.require(0, "key");
      Value dflt = a.get(1, "default", Value::none());
      a.finish();
      const Value* f = key.is_string() ? self.find(key.as_string()) : nullptr;
      return f ? *f : dflt;
    }
    a.finish();
    List out;
    for (const auto& [k, v] : self.as_dict()) {
      if (fn.name == "items")
        out.push_back(Value::tuple({Value(k), v}));
      else
        out.push_back(fn.name == "keys" ? Value(k) : v);
    }
    return Value(std::move(out));
  }
  Value r = call_string_method(fn.name, self.as_string(), a, budget);
  a.finish();
  return r;
}

}  // namespace dsv3::jinja

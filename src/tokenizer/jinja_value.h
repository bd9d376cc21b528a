// The values a chat template computes with, following Python Jinja2 (what Hugging Face's
// apply_chat_template runs): None, bool, int, float, str, list, dict (string keys, insertion
// order), namespace (the one mutable object), built-in callables, and Undefined (a missing
// variable, key or attribute: prints as "", is false, iterates as empty). Lists and dicts are
// immutable (Hugging Face renders in an ImmutableSandboxedEnvironment), so values share them by
// pointer.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "base/json.h"

namespace dsv3::jinja {

class Value;
struct Stmt;
using List = std::vector<Value>;
using Dict = std::vector<std::pair<std::string, Value>>;
struct Namespace {
  Dict attrs;
};
// A built-in function ("namespace", "range", "raise_exception"), a method bound to its receiver
// ("split" of a string, "items" of a dict), or a {% macro %} of the template being rendered.
struct Callable {
  std::string name;
  std::shared_ptr<const Value> self;  // null for free functions
  const Stmt* macro = nullptr;        // the macro's definition (lives as long as the rendering)
};
struct Undefined {
  std::string name;  // what was looked up, for the error when it is used as an object
};

class Value {
 public:
  enum class Kind { Undefined, None, Bool, Int, Float, String, List, Dict, Namespace, Callable };

  Value() : v_(Undefined{}) {}
  static Value undefined(std::string name) { return Value(Undefined{std::move(name)}); }
  static Value none() { return Value(nullptr); }
  Value(bool b) : v_(b) {}
  Value(int64_t i) : v_(i) {}
  Value(double d) : v_(d) {}
  Value(std::string s) : v_(std::make_shared<const std::string>(std::move(s))) {}
  Value(const char* s) : Value(std::string(s)) {}
  Value(List l);
  Value(Dict d);
  // A Python tuple: a list that prints as "(1, 2)" and never equals a list.
  static Value tuple(List l) {
    Value v(std::move(l));
    v.tuple_ = true;
    return v;
  }
  Value(std::shared_ptr<Namespace> ns) : v_(std::move(ns)) {}
  Value(Callable c) : v_(std::make_shared<const Callable>(std::move(c))) {}

  Kind kind() const { return static_cast<Kind>(v_.index()); }
  bool is_undefined() const { return kind() == Kind::Undefined; }
  bool is_none() const { return kind() == Kind::None; }
  bool is_bool() const { return kind() == Kind::Bool; }
  bool is_int() const { return kind() == Kind::Int; }
  bool is_float() const { return kind() == Kind::Float; }
  bool is_number() const { return is_int() || is_float() || is_bool(); }  // Python: bool is an int
  bool is_string() const { return kind() == Kind::String; }
  bool is_list() const { return kind() == Kind::List; }  // tuples too
  bool is_tuple() const { return tuple_; }
  bool is_dict() const { return kind() == Kind::Dict; }
  bool is_namespace() const { return kind() == Kind::Namespace; }
  bool is_callable() const { return kind() == Kind::Callable; }

  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const { return is_bool() ? int64_t{as_bool()} : std::get<int64_t>(v_); }
  double as_double() const { return is_float() ? std::get<double>(v_) : double(as_int()); }
  const std::string& as_string() const { return *std::get<std::shared_ptr<const std::string>>(v_); }
  const List& as_list() const { return *std::get<std::shared_ptr<const List>>(v_); }
  const Dict& as_dict() const { return *std::get<std::shared_ptr<const Dict>>(v_); }
  Namespace& as_namespace() const { return *std::get<std::shared_ptr<Namespace>>(v_); }
  const Callable& as_callable() const { return *std::get<std::shared_ptr<const Callable>>(v_); }
  const std::string& undefined_name() const { return std::get<Undefined>(v_).name; }

  // Dict or namespace member by key; nullptr when absent.
  const Value* find(std::string_view key) const;
  // Nesting depth (0 for a scalar) and node count (1 + the nodes of all items) of lists and dicts,
  // kept as values are built so that limits are checked without walking shared structure.
  uint32_t depth() const { return depth_; }
  uint64_t nodes() const { return nodes_; }

 private:
  explicit Value(Undefined u) : v_(std::move(u)) {}
  explicit Value(std::nullptr_t) : v_(nullptr) {}
  std::variant<Undefined, std::nullptr_t, bool, int64_t, double, std::shared_ptr<const std::string>,
               std::shared_ptr<const List>, std::shared_ptr<const Dict>, std::shared_ptr<Namespace>,
               std::shared_ptr<const Callable>>
      v_;
  uint32_t depth_ = 0;
  uint64_t nodes_ = 1;
  bool tuple_ = false;
};

// Python's type names ("str", "int", "dict", "undefined"), for error messages.
const char* type_name(const Value& v);
bool truthy(const Value& v);
// Python ==: 1 == 1.0 == True; lists and dicts compare by content; two Undefined are equal.
bool equal(const Value& a, const Value& b);
// str(v) as Jinja prints it: None -> "None", True -> "True", 1.0 -> "1.0", lists and dicts as
// Python's repr ("['a', 1]", "{'k': None}"), Undefined -> "". Throws when the text would pass
// max_bytes or nest deeper than kMaxPrintDepth (a namespace can contain itself).
constexpr size_t kNoLimit = size_t(-1);
constexpr int kMaxPrintDepth = 128;
std::string to_str(const Value& v, size_t max_bytes = kNoLimit);
// Python's repr of a float: shortest round-trip digits, "1.0", "1e+16", "1e-05", "inf", "nan".
std::string float_repr(double d);
// json.dumps(v, ensure_ascii=False, indent=indent) as Hugging Face's tojson filter calls it:
// separators ", " and ": " without indent, "," and ": " with it; indent < 0 means none.
std::string to_json(const Value& v, int indent, size_t max_bytes = kNoLimit);

Value from_json(const Json& j);

// UTF-8 as code points (Python indexes strings by code point). An ill-formed sequence counts as
// one code point per maximal subpart, so any byte string round-trips.
std::vector<std::string_view> code_points(std::string_view s);
size_t code_point_count(std::string_view s);

}  // namespace dsv3::jinja

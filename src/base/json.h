// A small JSON value, parser and writer. Our own so that duplicate keys are an error (a last-wins
// parser hides duplicate tensor names, RELIABILITY §1), numbers keep their integer form, and the
// build stays light. Objects keep insertion order.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace dsv3 {

class Json {
 public:
  enum class Type { Null, Bool, Int, Double, String, Array, Object };
  using Array = std::vector<Json>;
  using Object = std::vector<std::pair<std::string, Json>>;

  Json() = default;
  Json(std::nullptr_t) {}
  Json(bool b) : v_(b) {}
  Json(int i) : v_(int64_t{i}) {}
  Json(int64_t i) : v_(i) {}
  Json(uint64_t i) : v_(static_cast<int64_t>(i)) {}
  Json(double d) : v_(d) {}
  Json(const char* s) : v_(std::string(s)) {}
  Json(std::string s) : v_(std::move(s)) {}
  Json(std::string_view s) : v_(std::string(s)) {}
  Json(Array a) : v_(std::move(a)) {}
  Json(Object o) : v_(std::move(o)) {}
  static Json array() { return Json(Array{}); }
  static Json object() { return Json(Object{}); }

  Type type() const { return static_cast<Type>(v_.index()); }
  bool is_null() const { return type() == Type::Null; }
  bool is_bool() const { return type() == Type::Bool; }
  bool is_int() const { return type() == Type::Int; }
  bool is_number() const { return type() == Type::Int || type() == Type::Double; }
  bool is_string() const { return type() == Type::String; }
  bool is_array() const { return type() == Type::Array; }
  bool is_object() const { return type() == Type::Object; }

  // Accessors throw dsv3::Error naming `what` when the type is wrong.
  bool as_bool(std::string_view what = "value") const;
  int64_t as_int(std::string_view what = "value") const;  // also accepts integral doubles
  double as_double(std::string_view what = "value") const;
  const std::string& as_string(std::string_view what = "value") const;
  const Array& as_array(std::string_view what = "value") const;
  const Object& as_object(std::string_view what = "value") const;
  Array& as_array(std::string_view what = "value");
  Object& as_object(std::string_view what = "value");

  // Object access: find returns nullptr when absent (or when this is not an object).
  const Json* find(std::string_view key) const;
  bool contains(std::string_view key) const { return find(key) != nullptr; }
  const Json& at(std::string_view key) const;  // throws naming the key
  Json& operator[](std::string_view key);      // inserts null when absent (object or null only)
  void push_back(Json v) { as_array().push_back(std::move(v)); }
  size_t size() const;

  // Parse a whole document. Throws dsv3::Error("<source>: JSON error at byte N: ...").
  // Duplicate keys in an object are an error.
  static Json parse(std::string_view text, std::string_view source = "JSON");
  // indent < 0: compact, one line. Non-ASCII is written as UTF-8; control characters escaped.
  std::string dump(int indent = -1) const;

 private:
  std::variant<std::nullptr_t, bool, int64_t, double, std::string, Array, Object> v_;
  void dump_to(std::string& out, int indent, int depth) const;
};

// Escape a string as a JSON string literal, quotes included.
std::string json_quote(std::string_view s);

}  // namespace dsv3

// Jinja's built-in filters, tests, global functions and the Python methods of str and dict that
// chat templates call, with Python's semantics. Unknown names throw an Error naming them.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace dsv3::jinja {

using Kwargs = std::vector<std::pair<std::string, Value>>;

// Caps on work and size, so that any template, even a hostile one, finishes quickly in bounded
// memory. Every step, and every byte or element a value operation creates, is charged.
class Budget {
 public:
  Budget(uint64_t steps, size_t max_string_bytes, size_t max_list_items)
      : steps_left_(steps), max_string_bytes_(max_string_bytes), max_list_items_(max_list_items) {}
  void charge(uint64_t units);
  void check_string(size_t bytes) const;  // throws when a string would exceed the cap
  void check_list(size_t items) const;
  // Lists and dicts: node count (shared items counted each time) and nesting depth.
  void check_value(const Value& v) const;
  static constexpr uint32_t kMaxDepth = 100;

 private:
  uint64_t steps_left_;
  size_t max_string_bytes_, max_list_items_;
};

Value apply_filter(const std::string& name, const Value& subject, const std::vector<Value>& args,
                   const Kwargs& kwargs, Budget& budget);
// Whether a filter or test exists: the parser rejects unknown ones, as Jinja does at compile time.
bool is_known_filter(const std::string& name);
bool is_known_test(const std::string& name);
bool apply_test(const std::string& name, const Value& subject, const std::vector<Value>& args);
// A method of `self` by name (str.split, dict.items, ...), bound; Undefined when there is none.
Value find_method(const Value& self, const std::string& name);
// namespace, range, dict, raise_exception, strftime_now
bool is_global_function(const std::string& name);
// Calls a bound method or a global function.
Value call(const Callable& fn, const std::vector<Value>& args, const Kwargs& kwargs,
           Budget& budget);

// Python's binary operators: + - * / // % ** and Jinja's ~ (string concatenation).
Value binary_op(const std::string& op, const Value& a, const Value& b, Budget& budget);
// Python's "in" and ordering comparisons; throw for types Python cannot compare.
bool contains(const Value& container, const Value& item);
int compare(const Value& a, const Value& b);  // <0, 0, >0

// The items of an iterable as Python iterates them: list items, dict keys, string code points;
// Undefined gives none. Anything else throws "<what>: '<type>' object is not iterable".
List iterate(const std::string& what, const Value& v);

// The Python whitespace set (str.isspace) on code points, for strip() and split().
bool is_python_space(std::string_view code_point);

}  // namespace dsv3::jinja

// Python's operators on template values: + - * / // % ** ~, "in", ordering; and the work budget.
#include <cmath>
#include <limits>

#include "base/error.h"
#include "tokenizer/jinja_builtins.h"

namespace dsv3::jinja {

void Budget::charge(uint64_t units) {
  if (units > steps_left_) {
    throw Error("chat template: evaluation budget exhausted (a runaway loop or a huge value?)",
                "the limits are RenderLimits in tokenizer/chat_template.h");
  }
  steps_left_ -= units;
}

void Budget::check_string(size_t bytes) const {
  if (bytes > max_string_bytes_) {
    throw Error("chat template: a string of " + std::to_string(bytes) +
                " bytes exceeds the limit of " + std::to_string(max_string_bytes_));
  }
}

void Budget::check_list(size_t items) const {
  if (items > max_list_items_) {
    throw Error("chat template: a list of " + std::to_string(items) +
                " items exceeds the limit of " + std::to_string(max_list_items_));
  }
}

void Budget::check_value(const Value& v) const {
  if (v.is_string()) check_string(v.as_string().size());
  if (!v.is_list() && !v.is_dict()) return;
  if (v.nodes() > max_list_items_) {
    throw Error("chat template: a value of " + std::to_string(v.nodes()) +
                " items (nested items counted) exceeds the limit of " +
                std::to_string(max_list_items_));
  }
  if (v.depth() > kMaxDepth)
    throw Error("chat template: a value nested more than " + std::to_string(kMaxDepth) +
                " levels deep");
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::String:
      if (!item.is_string()) {
        throw Error(std::string("'in <string>' requires string as left operand, not ") +
                    type_name(item));
      }
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Value::Kind::List:
      for (const Value& v : container.as_list()) {
        if (equal(v, item)) return true;
      }
      return false;
    case Value::Kind::Dict:
      if ((item.is_list() && !item.is_tuple()) || item.is_dict() || item.is_namespace()) {
        throw Error(std::string("unhashable type: '") + type_name(item) + "'");
      }
      return item.is_string() && container.find(item.as_string()) != nullptr;
    case Value::Kind::Undefined:
      return false;  // Undefined iterates as empty
    default:
      throw Error(std::string("argument of type '") + type_name(container) + "' is not iterable");
  }
}

int compare(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) {
      double x = a.as_double(), y = b.as_double();
      return x < y ? -1 : x > y ? 1 : 0;
    }
    return a.as_int() < b.as_int() ? -1 : a.as_int() > b.as_int() ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) {
    int c = a.as_string().compare(b.as_string());  // UTF-8 byte order is code point order
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
    const List &x = a.as_list(), &y = b.as_list();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!equal(x[i], y[i])) return compare(x[i], y[i]);
    }
    return x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0;
  }
  throw Error(std::string("comparison not supported between instances of '") + type_name(a) +
              "' and '" + type_name(b) + "'");
}

namespace {

[[noreturn]] void unsupported(const std::string& op, const Value& a, const Value& b) {
  throw Error("unsupported operand type(s) for " + op + ": '" + type_name(a) + "' and '" +
              type_name(b) + "'");
}

void check_overflow(bool overflow, const std::string& op) {
  if (overflow) throw Error("integer overflow in '" + op + "' (Python would use a big integer)");
}

Value repeat(const Value& seq, int64_t n, Budget& budget) {
  if (n < 0) n = 0;
  if (seq.is_string()) {
    const std::string& s = seq.as_string();
    if (!s.empty() && uint64_t(n) > std::numeric_limits<size_t>::max() / s.size())
      budget.check_string(SIZE_MAX);
    budget.check_string(s.size() * size_t(n));
    budget.charge(s.size() * uint64_t(n) / 16 + 1);
    std::string out;
    for (int64_t i = 0; i < n; ++i) out += s;
    return Value(std::move(out));
  }
  const List& l = seq.as_list();
  if (!l.empty() && uint64_t(n) > std::numeric_limits<size_t>::max() / l.size())
    budget.check_list(SIZE_MAX);
  budget.check_list(l.size() * size_t(n));
  budget.charge(l.size() * uint64_t(n) + 1);
  List out;
  for (int64_t i = 0; i < n; ++i) out.insert(out.end(), l.begin(), l.end());
  return seq.is_tuple() ? Value::tuple(std::move(out)) : Value(std::move(out));
}

}  // namespace

Value binary_op(const std::string& op, const Value& a, const Value& b, Budget& budget) {
  if (op == "~") {
    std::string s = to_str(a) + to_str(b);
    budget.check_string(s.size());
    budget.charge(s.size() / 16 + 1);
    return Value(std::move(s));
  }
  if (op == "+") {
    if (a.is_string() && b.is_string()) {
      budget.check_string(a.as_string().size() + b.as_string().size());
      budget.charge((a.as_string().size() + b.as_string().size()) / 16 + 1);
      return Value(a.as_string() + b.as_string());
    }
    if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
      budget.check_list(a.as_list().size() + b.as_list().size());
      budget.charge(a.as_list().size() + b.as_list().size() + 1);
      List l = a.as_list();
      l.insert(l.end(), b.as_list().begin(), b.as_list().end());
      return a.is_tuple() ? Value::tuple(std::move(l)) : Value(std::move(l));
    }
  }
  if (op == "*") {
    if ((a.is_string() || a.is_list()) && b.is_number() && !b.is_float())
      return repeat(a, b.as_int(), budget);
    if ((b.is_string() || b.is_list()) && a.is_number() && !a.is_float())
      return repeat(b, a.as_int(), budget);
  }
  if (op == "%" && a.is_string()) {
    throw Error("unsupported construct: printf-style string formatting ('%' on a string)");
  }
  if (!a.is_number() || !b.is_number()) unsupported(op, a, b);
  bool use_float = a.is_float() || b.is_float();
  if (op == "/") {
    if (b.as_double() == 0) throw Error("division by zero");
    return Value(a.as_double() / b.as_double());
  }
  if (op == "**") {
    if (!use_float && b.as_int() >= 0) {
      int64_t base = a.as_int(), e = b.as_int(), r = 1;
      if (base == 0) return Value(int64_t{e == 0 ? 1 : 0});
      if (base == 1 || base == -1) return Value(int64_t{base == -1 && e % 2 ? -1 : 1});
      for (int64_t i = 0; i < e; ++i) check_overflow(__builtin_mul_overflow(r, base, &r), op);
      return Value(r);
    }
    if (a.as_double() == 0 && b.as_double() < 0)
      throw Error("0.0 cannot be raised to a negative power");
    return Value(std::pow(a.as_double(), b.as_double()));
  }
  if (use_float) {
    double x = a.as_double(), y = b.as_double();
    if (op == "+") return Value(x + y);
    if (op == "-") return Value(x - y);
    if (op == "*") return Value(x * y);
    if (y == 0) throw Error("float division by zero");
    double m = std::fmod(x, y);
    if (m != 0 && ((m < 0) != (y < 0))) m += y;  // Python's modulo takes the divisor's sign
    if (op == "%") return Value(m);
    if (op == "//") return Value(std::floor((x - m) / y));
  } else {
    int64_t x = a.as_int(), y = b.as_int(), r = 0;
    if (op == "+" || op == "-" || op == "*") {
      check_overflow(op == "+"   ? __builtin_add_overflow(x, y, &r)
                     : op == "-" ? __builtin_sub_overflow(x, y, &r)
                                 : __builtin_mul_overflow(x, y, &r),
                     op);
      return Value(r);
    }
    if (y == 0) throw Error("integer division or modulo by zero");
    if (x == std::numeric_limits<int64_t>::min() && y == -1) check_overflow(true, op);
    int64_t q = x / y, m = x % y;
    if (m != 0 && ((m < 0) != (y < 0))) {  // floor division, as in Python
      --q;
      m += y;
    }
    if (op == "%") return Value(m);
    if (op == "//") return Value(q);
  }
  unsupported(op, a, b);
}

}  // namespace dsv3::jinja

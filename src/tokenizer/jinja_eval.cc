#include "tokenizer/jinja_eval.h"

#include <algorithm>

#include "base/error.h"
#include "tokenizer/jinja_builtins.h"
#include "tokenizer/jinja_lexer.h"

namespace dsv3::jinja {
namespace {

// Methods of Python lists and dicts that mutate: the sandbox Hugging Face renders in forbids them.
constexpr const char* kMutators[] = {"append", "extend",  "insert", "pop",        "remove", "clear",
                                     "sort",   "reverse", "update", "setdefault", "popitem"};

// Work charged for handling a value: its bytes / 16 or its nodes, so that per-step work that grows
// with value size (comparing, searching, indexing by code point) stays within the budget.
uint64_t cost(const Value& v) {
  if (v.is_string()) return v.as_string().size() / 16 + 1;
  return v.nodes();
}

// Namespaces are the only mutable values; keeping them out of each other rules out reference
// cycles (which would leak and print forever).
bool holds_namespace(const Value& v) {
  if (v.is_namespace()) return true;
  if (v.is_list()) {
    for (const Value& e : v.as_list()) {
      if (holds_namespace(e)) return true;
    }
  }
  if (v.is_dict()) {
    for (const auto& kv : v.as_dict()) {
      if (holds_namespace(kv.second)) return true;
    }
  }
  return false;
}

// Recursion of the evaluator (statement bodies, statements, expressions, macro calls) stays far
// inside the stack, even under ASan: the parser's limits keep a template without macros under
// 2 * 100 + 200 levels; recursing macros end here.
constexpr int kMaxEvalDepth = 600;
constexpr int kMaxMacroDepth = 64;

class Interpreter {
 public:
  Interpreter(const ParsedTemplate& t, const RenderLimits& limits)
      : t_(t),
        limits_(limits),
        budget_(limits.max_steps, limits.max_output_bytes, limits.max_items) {}

  std::string run(Dict globals) {
    scopes_.push_back(std::move(globals));
    scopes_.emplace_back();  // the template's own variables, shadowing the globals
    exec_body(t_.body);
    return std::move(out_);
  }

 private:
  enum class Flow { Normal, Break, Continue };
  const ParsedTemplate& t_;
  RenderLimits limits_;
  Budget budget_;
  std::vector<Dict> scopes_;
  std::string out_;
  int depth_ = 0, macro_depth_ = 0;

  struct Deeper {
    Interpreter& in;
    Deeper(Interpreter& interp, size_t pos) : in(interp) {
      if (++in.depth_ > kMaxEvalDepth)
        in.fail(pos,
                "evaluation nested more than " + std::to_string(kMaxEvalDepth) + " levels deep");
    }
    ~Deeper() { --in.depth_; }
  };

  [[noreturn]] void fail(size_t pos, const std::string& msg) const {
    throw Error("chat template: " + msg + " at " + describe_position(t_.source, pos));
  }

  // Runs a built-in; its Error gains the template position.
  template <typename F>
  Value guarded(size_t pos, F f) {
    Value v;
    try {
      v = f();
      budget_.check_value(v);
      budget_.charge(cost(v));
    } catch (const Error& e) {
      std::string what = e.what();
      if (what.rfind("chat template: ", 0) == 0) what.erase(0, 15);  // a Budget error
      throw Error("chat template: " + what + " at " + describe_position(t_.source, pos), e.hint());
    }
    return v;
  }
  uint64_t cost_of(const std::vector<Value>& args, const Kwargs& kwargs) {
    uint64_t c = 0;
    for (const Value& a : args) c += cost(a);
    for (const auto& kv : kwargs) c += cost(kv.second);
    return c;
  }

  void emit(const std::string& s) {
    budget_.charge(s.size() / 16 + 1);
    if (out_.size() + s.size() > limits_.max_output_bytes) {
      throw Error("chat template: output exceeds " + std::to_string(limits_.max_output_bytes) +
                  " bytes");
    }
    out_ += s;
  }

  Value lookup(const std::string& name) const {
    for (auto scope = scopes_.rbegin(); scope != scopes_.rend(); ++scope) {
      for (const auto& [k, v] : *scope) {
        if (k == name) return v;
      }
    }
    if (is_global_function(name)) return Value(Callable{name, nullptr});
    return Value::undefined(name);
  }

  void assign(const std::string& name, Value v) {
    Dict& scope = scopes_.back();
    for (auto& [k, old] : scope) {
      if (k == name) {
        old = std::move(v);
        return;
      }
    }
    scope.emplace_back(name, std::move(v));
  }

  void assign_targets(const std::vector<std::string>& targets, const Value& v, size_t pos) {
    if (targets.size() == 1) return assign(targets[0], v);
    if (!v.is_list() || v.as_list().size() != targets.size()) {
      fail(pos, "cannot unpack " + std::string(type_name(v)) + " into " +
                    std::to_string(targets.size()) + " variables");
    }
    for (size_t i = 0; i < targets.size(); ++i) assign(targets[i], v.as_list()[i]);
  }

  // ---- statements ----

  Flow exec_body(const Body& body) {
    Deeper deeper(*this, body.empty() ? 0 : body[0]->pos);
    for (const auto& s : body) {
      Flow f = exec(*s);
      if (f != Flow::Normal) return f;
    }
    return Flow::Normal;
  }

  Flow exec(const Stmt& s) {
    Deeper deeper(*this, s.pos);
    budget_.charge(1);
    switch (s.kind) {
      case Stmt::Kind::Text:
        emit(s.text);
        break;
      case Stmt::Kind::Output:
        exec_output(s);
        break;
      case Stmt::Kind::If:
        for (const auto& [cond, body] : s.branches) {
          if (truthy(eval(*cond))) return exec_body(body);
        }
        return exec_body(s.else_body);
      case Stmt::Kind::For:
        return exec_for(s);
      case Stmt::Kind::Set:
        exec_set(s);
        break;
      case Stmt::Kind::SetBlock:
        return exec_set_block(s);
      case Stmt::Kind::Break:
        return Flow::Break;
      case Stmt::Kind::Continue:
        return Flow::Continue;
      case Stmt::Kind::Block:
        return exec_body(s.body);
      case Stmt::Kind::Macro:
        assign(s.attr, Value(Callable{s.attr, std::make_shared<const Value>(closure()), &s}));
        break;
    }
    return Flow::Normal;
  }

  // The statement kinds with locals run in their own frames (see eval).
  [[gnu::noinline]] void exec_output(const Stmt& s) {
    Value v = eval(*s.expr);
    emit(guarded(s.pos, [&] { return Value(to_str(v, limits_.max_output_bytes)); }).as_string());
  }

  [[gnu::noinline]] void exec_set(const Stmt& s) {
    Value v = eval(*s.expr);
    if (s.attr.empty()) return assign_targets(s.targets, v, s.pos);
    Value ns = lookup(s.targets[0]);
    if (!ns.is_namespace()) {
      fail(s.pos, "cannot set attribute '" + s.attr + "' of '" + s.targets[0] + "' (" +
                      type_name(ns) + "): only a namespace() has assignable attributes");
    }
    budget_.charge(cost(v));
    if (holds_namespace(v)) {
      fail(s.pos, "unsupported construct: a namespace stored inside a namespace ('" + s.targets[0] +
                      "." + s.attr + "')");
    }
    Dict& attrs = ns.as_namespace().attrs;
    auto it = std::find_if(attrs.begin(), attrs.end(),
                           [&](const auto& kv) { return kv.first == s.attr; });
    if (it != attrs.end()) {
      it->second = std::move(v);
    } else {
      attrs.emplace_back(s.attr, std::move(v));
    }
  }

  [[gnu::noinline]] Flow exec_set_block(const Stmt& s) {
    size_t start = out_.size();
    Flow f = exec_body(s.body);
    std::string captured = out_.substr(start);
    out_.resize(start);
    assign(s.targets[0], Value(std::move(captured)));
    return f;
  }

  List iterable_items(const Value& v, size_t pos) {
    switch (v.kind()) {
      case Value::Kind::List:
      case Value::Kind::Dict:
      case Value::Kind::String:
      case Value::Kind::Undefined:  // Jinja's Undefined iterates as empty
        return iterate("for", v);
      default:
        fail(pos, "'" + std::string(type_name(v)) + "' object is not iterable");
    }
  }

  [[gnu::noinline]] Flow exec_for(const Stmt& s) {
    Value iterable = eval(*s.expr);
    budget_.charge(cost(iterable));
    List items = iterable_items(iterable, s.expr->pos);
    if (s.filter) {  // "for x in xs if cond": filtered before loop.length is known, as in Jinja
      List kept;
      for (const Value& item : items) {
        scopes_.emplace_back();
        assign_targets(s.targets, item, s.pos);
        bool keep = truthy(eval(*s.filter));
        scopes_.pop_back();
        if (keep) kept.push_back(item);
      }
      items = std::move(kept);
    }
    if (items.empty()) return exec_body(s.else_body);
    int64_t n = int64_t(items.size());
    for (int64_t i = 0; i < n; ++i) {
      budget_.charge(1);
      Dict loop = {
          {"index", Value(i + 1)},
          {"index0", Value(i)},
          {"revindex", Value(n - i)},
          {"revindex0", Value(n - i - 1)},
          {"first", Value(i == 0)},
          {"last", Value(i == n - 1)},
          {"length", Value(n)},
          {"depth", Value(int64_t{1})},
          {"depth0", Value(int64_t{0})},
          {"previtem", i > 0 ? items[size_t(i - 1)] : Value::undefined("loop.previtem")},
          {"nextitem", i + 1 < n ? items[size_t(i + 1)] : Value::undefined("loop.nextitem")}};
      scopes_.emplace_back();
      assign_targets(s.targets, items[size_t(i)], s.pos);
      assign("loop", Value(std::move(loop)));
      Flow f = exec_body(s.body);
      scopes_.pop_back();
      if (f == Flow::Break) break;
    }
    return Flow::Normal;
  }

  // ---- expressions ----

  [[noreturn]] void undefined_error(const Value& v, size_t pos, const std::string& what) {
    fail(pos,
         "'" + v.undefined_name() + "' is undefined" + (what.empty() ? "" : " (" + what + ")"));
  }

  Value attribute(const Value& obj, const std::string& name, size_t pos) {
    if (obj.is_undefined()) undefined_error(obj, pos, "reading its attribute '" + name + "'");
    if ((obj.is_list() || obj.is_dict()) && std::any_of(std::begin(kMutators), std::end(kMutators),
                                                        [&](const char* m) { return name == m; })) {
      fail(pos, std::string("unsupported construct: ") + type_name(obj) + "." + name +
                    "() (values are immutable in chat templates, as in Hugging Face's sandbox)");
    }
    // Jinja's getattr: the Python attribute (a method) first, then the item.
    Value m = find_method(obj, name);
    if (!m.is_undefined()) return m;
    const Value* f = obj.find(name);
    return f ? *f : Value::undefined(name);
  }

  Value item(const Value& obj, const Value& key, size_t pos) {
    if (obj.is_undefined()) undefined_error(obj, pos, "reading an item of it");
    budget_.charge(cost(obj));
    if (key.is_number() && !key.is_float() && (obj.is_list() || obj.is_string())) {
      int64_t i = key.as_int();
      if (obj.is_list()) {
        int64_t n = int64_t(obj.as_list().size());
        if (i < 0) i += n;
        return (i >= 0 && i < n) ? obj.as_list()[size_t(i)]
                                 : Value::undefined("index " + std::to_string(key.as_int()));
      }
      auto cps = code_points(obj.as_string());
      int64_t n = int64_t(cps.size());
      if (i < 0) i += n;
      return (i >= 0 && i < n) ? Value(std::string(cps[size_t(i)]))
                               : Value::undefined("index " + std::to_string(key.as_int()));
    }
    if (!key.is_string()) return Value::undefined(to_str(key));
    // Jinja's getitem: the item first, then the Python attribute.
    if (const Value* f = obj.find(key.as_string())) return *f;
    return find_method(obj, key.as_string());
  }

  Value slice(const Expr& e) {
    Value obj = eval(*e.args[0]);
    if (obj.is_undefined()) undefined_error(obj, e.pos, "slicing it");
    if (!obj.is_list() && !obj.is_string())
      fail(e.pos, std::string("'") + type_name(obj) + "' object is not subscriptable");
    int64_t bound[3];
    bool given[3];
    for (int k = 0; k < 3; ++k) {
      Value v = e.args[size_t(k) + 1] ? eval(*e.args[size_t(k) + 1]) : Value::none();
      given[k] = !v.is_none();
      if (given[k] && (!v.is_number() || v.is_float()))
        fail(e.pos, "slice indices must be integers or none");
      bound[k] = given[k] ? v.as_int() : 0;
    }
    int64_t step = given[2] ? bound[2] : 1;
    if (step == 0) fail(e.pos, "slice step cannot be zero");
    std::vector<std::string_view> cps;
    if (obj.is_string()) cps = code_points(obj.as_string());
    int64_t n = int64_t(obj.is_list() ? obj.as_list().size() : cps.size());
    // Python's PySlice_AdjustIndices.
    int64_t lower = step < 0 ? -1 : 0, upper = step < 0 ? n - 1 : n;
    auto adjust = [&](int k, int64_t dflt) {
      if (!given[k]) return dflt;
      int64_t x = bound[k];
      return x < 0 ? std::max(x + n, lower) : std::min(x, upper);
    };
    int64_t start = adjust(0, step < 0 ? upper : lower), stop = adjust(1, step < 0 ? lower : upper);
    List out;
    std::string s;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
      if (obj.is_list())
        out.push_back(obj.as_list()[size_t(i)]);
      else
        s += cps[size_t(i)];
    }
    budget_.charge(out.size() + s.size() / 16 + 1);
    if (obj.is_string()) return Value(std::move(s));
    return obj.is_tuple() ? Value::tuple(std::move(out)) : Value(std::move(out));
  }

  void eval_args(const Expr& e, size_t first, std::vector<Value>& args, Kwargs& kwargs) {
    for (size_t i = first; i < e.args.size(); ++i) args.push_back(eval(*e.args[i]));
    for (const auto& [k, v] : e.kwargs) kwargs.emplace_back(k, eval(*v));
  }

  // The variables of the scopes above the template's own (loop iterations, macro parameters) where
  // a macro is defined: the macro sees them when called, as a Jinja closure does.
  Value closure() const {
    Dict vars;
    for (size_t i = 2; i < scopes_.size(); ++i) {
      for (const auto& kv : scopes_[i]) {
        auto it = std::find_if(vars.begin(), vars.end(),
                               [&](const auto& v) { return v.first == kv.first; });
        if (it != vars.end()) {
          it->second = kv.second;
        } else {
          vars.push_back(kv);
        }
      }
    }
    return Value(std::move(vars));
  }

  // A macro call: its parameters in a scope over the template's variables and its closure (not the
  // caller's loop variables, as in Jinja), its output captured as the returned string.
  Value call_macro(const Stmt& m, const Value& closure, const std::vector<Value>& args,
                   const Kwargs& kwargs, size_t pos) {
    if (args.size() > m.targets.size()) {
      fail(pos, "macro '" + m.attr + "' takes " + std::to_string(m.targets.size()) +
                    " arguments, got " + std::to_string(args.size()));
    }
    for (const auto& kv : kwargs) {
      if (std::find(m.targets.begin(), m.targets.end(), kv.first) == m.targets.end()) {
        fail(pos, "macro '" + m.attr + "' has no parameter '" + kv.first + "'");
      }
    }
    if (++macro_depth_ > kMaxMacroDepth)
      fail(pos, "macro calls nested more than " + std::to_string(kMaxMacroDepth) + " deep");
    std::vector<Dict> caller = std::move(scopes_);
    scopes_ = {caller[0], caller[1], closure.as_dict(), Dict{}};
    for (size_t i = 0; i < m.targets.size(); ++i) {
      auto kw = std::find_if(kwargs.begin(), kwargs.end(),
                             [&](const auto& kv) { return kv.first == m.targets[i]; });
      if (i < args.size())
        assign(m.targets[i], args[i]);
      else if (kw != kwargs.end())
        assign(m.targets[i], kw->second);
      else if (m.defaults[i])
        assign(m.targets[i], eval(*m.defaults[i]));  // may use earlier parameters
      else
        assign(m.targets[i], Value::undefined(m.targets[i]));
    }
    size_t start = out_.size();
    exec_body(m.body);
    std::string result = out_.substr(start);
    out_.resize(start);
    scopes_ = std::move(caller);
    --macro_depth_;
    return Value(std::move(result));
  }

  // One small frame per nesting level: each kind with locals gets its own non-inlined function, so
  // deep expressions cost little stack (a single big switch costs ~13 KB a level under ASan).
  Value eval(const Expr& e) {
    Deeper deeper(*this, e.pos);
    budget_.charge(1);
    switch (e.kind) {
      case Expr::Kind::Literal:
        return e.literal;
      case Expr::Kind::Name:
        return lookup(e.name);
      case Expr::Kind::List:
      case Expr::Kind::Tuple:
      case Expr::Kind::Dict:
        return eval_collection(e);
      case Expr::Kind::Attr:
        return attribute(eval(*e.args[0]), e.name, e.pos);
      case Expr::Kind::Item:
        return eval_item(e);
      case Expr::Kind::Slice:
        return slice(e);
      case Expr::Kind::Call:
        return eval_call(e);
      case Expr::Kind::Filter:
      case Expr::Kind::Test:
        return eval_filter_or_test(e);
      case Expr::Kind::Neg:
      case Expr::Kind::Pos:
        return eval_unary(e);
      case Expr::Kind::Not:
        return Value(!truthy(eval(*e.args[0])));
      case Expr::Kind::Binary:
        return eval_binary(e);
      case Expr::Kind::Compare:
        return eval_compare(e);
      case Expr::Kind::And:
      case Expr::Kind::Or:
        return eval_logic(e);
      case Expr::Kind::Cond:
        return eval_cond(e);
    }
    fail(e.pos, "internal: unknown expression");
  }

  [[gnu::noinline]] Value eval_collection(const Expr& e) {
    if (e.kind != Expr::Kind::Dict) {
      List l;
      for (const auto& a : e.args) l.push_back(eval(*a));
      Value v = e.kind == Expr::Kind::Tuple ? Value::tuple(std::move(l)) : Value(std::move(l));
      return guarded(e.pos, [&] { return v; });
    }
    Dict d;
    for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
      Value k = eval(*e.args[i]);
      if (!k.is_string()) fail(e.args[i]->pos, "dict keys must be strings in chat templates");
      Value v = eval(*e.args[i + 1]);
      auto it = std::find_if(d.begin(), d.end(),
                             [&](const auto& kv) { return kv.first == k.as_string(); });
      if (it != d.end()) {
        it->second = std::move(v);
      } else {
        d.emplace_back(k.as_string(), std::move(v));
      }
    }
    Value v(std::move(d));
    return guarded(e.pos, [&] { return v; });
  }

  [[gnu::noinline]] Value eval_item(const Expr& e) {
    Value obj = eval(*e.args[0]);
    return item(obj, eval(*e.args[1]), e.pos);
  }

  [[gnu::noinline]] Value eval_call(const Expr& e) {
    Value fn;
    if (e.args[0]->kind == Expr::Kind::Attr) {  // a method call: name Python's missing methods
      const Expr& attr = *e.args[0];
      Value obj = eval(*attr.args[0]);
      fn = attribute(obj, attr.name, attr.pos);
      if (fn.is_undefined() && (obj.is_string() || obj.is_list() || obj.is_dict())) {
        fail(e.pos, std::string("unsupported construct: method ") + type_name(obj) + "." +
                        attr.name + "()");
      }
    } else {
      fn = eval(*e.args[0]);
    }
    if (fn.is_undefined()) undefined_error(fn, e.pos, "called as a function");
    if (!fn.is_callable())
      fail(e.pos, std::string("'") + type_name(fn) + "' object is not callable");
    std::vector<Value> args;
    Kwargs kwargs;
    eval_args(e, 1, args, kwargs);
    const Callable& c = fn.as_callable();
    if (c.macro) return call_macro(*c.macro, *c.self, args, kwargs, e.pos);
    budget_.charge(cost_of(args, kwargs) + (c.self ? cost(*c.self) : 0));
    return guarded(e.pos, [&] { return call(c, args, kwargs, budget_); });
  }

  [[gnu::noinline]] Value eval_filter_or_test(const Expr& e) {
    Value subject = eval(*e.args[0]);
    std::vector<Value> args;
    Kwargs kwargs;
    eval_args(e, 1, args, kwargs);
    budget_.charge(cost(subject) + cost_of(args, kwargs));
    if (e.kind == Expr::Kind::Filter) {
      return guarded(e.pos, [&] { return apply_filter(e.name, subject, args, kwargs, budget_); });
    }
    if (!kwargs.empty()) fail(e.pos, "tests take no keyword arguments");
    bool r = guarded(e.pos, [&] { return Value(apply_test(e.name, subject, args)); }).as_bool();
    return Value(r != e.negated);
  }

  [[gnu::noinline]] Value eval_unary(const Expr& e) {
    Value v = eval(*e.args[0]);
    if (!v.is_number()) {
      fail(e.pos, std::string("bad operand type for unary ") +
                      (e.kind == Expr::Kind::Neg ? "-" : "+") + ": '" + type_name(v) + "'");
    }
    if (e.kind == Expr::Kind::Pos) return v.is_bool() ? Value(v.as_int()) : v;
    if (v.is_float()) return Value(-v.as_double());
    if (v.as_int() == INT64_MIN) fail(e.pos, "integer overflow in unary '-'");
    return Value(-v.as_int());
  }

  [[gnu::noinline]] Value eval_binary(const Expr& e) {
    Value a = eval(*e.args[0]);
    Value b = eval(*e.args[1]);
    budget_.charge(cost(a) + cost(b));
    return guarded(e.pos, [&] { return binary_op(e.name, a, b, budget_); });
  }

  [[gnu::noinline]] Value eval_compare(const Expr& e) {
    Value left = eval(*e.args[0]);
    for (size_t i = 0; i < e.ops.size(); ++i) {
      Value right = eval(*e.args[i + 1]);
      budget_.charge(cost(left) + cost(right));
      const std::string& op = e.ops[i];
      bool r = guarded(e.pos, [&] {
                 if (op == "==") return Value(equal(left, right));
                 if (op == "!=") return Value(!equal(left, right));
                 if (op == "in") return Value(contains(right, left));
                 if (op == "not in") return Value(!contains(right, left));
                 int c = compare(left, right);
                 return Value(op == "<" ? c < 0 : op == "<=" ? c <= 0 : op == ">" ? c > 0 : c >= 0);
               }).as_bool();
      if (!r) return Value(false);
      left = std::move(right);
    }
    return Value(true);
  }

  [[gnu::noinline]] Value eval_logic(const Expr& e) {  // Python's and/or return an operand
    Value a = eval(*e.args[0]);
    if (e.kind == Expr::Kind::And) return truthy(a) ? eval(*e.args[1]) : a;
    return truthy(a) ? a : eval(*e.args[1]);
  }

  [[gnu::noinline]] Value eval_cond(const Expr& e) {
    if (truthy(eval(*e.args[1]))) return eval(*e.args[0]);
    return e.args[2] ? eval(*e.args[2]) : Value::undefined("else branch");
  }
};

}  // namespace

std::string render(const ParsedTemplate& tmpl, Dict globals, const RenderLimits& limits) {
  return Interpreter(tmpl, limits).run(std::move(globals));
}

}  // namespace dsv3::jinja

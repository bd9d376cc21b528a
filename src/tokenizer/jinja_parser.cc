#include "tokenizer/jinja_parser.h"

#include <algorithm>
#include <initializer_list>

#include "base/error.h"
#include "tokenizer/jinja_builtins.h"
#include "tokenizer/jinja_lexer.h"

namespace dsv3::jinja {
namespace {

// Deep nesting ("((((...", 10k nested ifs) would overflow the stack of this recursive parser and
// of the evaluator; real templates nest a handful of levels.
constexpr int kMaxNesting = 100;
constexpr int kMaxExprDepth = 200;

// Tags of Jinja that the chat templates we render do not use; named in the error.
constexpr const char* kUnsupportedTags[] = {"call",    "filter",     "with",   "block",
                                            "extends", "include",    "import", "from",
                                            "raw",     "autoescape", "do",     "trans"};

class Parser {
 public:
  explicit Parser(LexedTemplate lexed)
      : src_(std::move(lexed.source)), toks_(std::move(lexed.tokens)) {}

  ParsedTemplate run() {
    ParsedTemplate out;
    out.body = parse_body({});
    out.source = std::move(src_);
    return out;
  }

 private:
  std::string src_;
  std::vector<Token> toks_;
  size_t i_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
  std::string stop_tag_;  // the end tag that ended the last parse_body

  struct Nest {
    Parser& p;
    explicit Nest(Parser& parser, size_t pos) : p(parser) {
      if (++p.depth_ > kMaxNesting)
        p.fail(pos, "template nested more than " + std::to_string(kMaxNesting) + " levels deep");
    }
    ~Nest() { --p.depth_; }
  };

  [[noreturn]] void fail(size_t pos, const std::string& msg) const {
    throw Error("chat template: " + msg + " at " + describe_position(src_, pos));
  }
  const Token& cur() const { return toks_[i_]; }
  const Token& peek(size_t k = 1) const { return toks_[std::min(i_ + k, toks_.size() - 1)]; }
  bool is_op(const char* op) const { return cur().kind == Token::Kind::Op && cur().text == op; }
  bool is_name(const char* n) const { return cur().kind == Token::Kind::Name && cur().text == n; }
  bool accept_op(const char* op) {
    if (!is_op(op)) return false;
    ++i_;
    return true;
  }
  bool accept_name(const char* n) {
    if (!is_name(n)) return false;
    ++i_;
    return true;
  }
  std::string describe(const Token& t) const { return describe_token(t); }
  void expect_op(const char* op) {
    if (!accept_op(op))
      fail(cur().pos, std::string("expected '") + op + "', found " + describe(cur()));
  }
  std::string expect_name(const char* what) {
    if (cur().kind != Token::Kind::Name)
      fail(cur().pos, std::string("expected ") + what + ", found " + describe(cur()));
    return toks_[i_++].text;
  }
  void expect_block_end() {
    if (cur().kind != Token::Kind::BlockEnd)
      fail(cur().pos, "expected '%}', found " + describe(cur()));
    ++i_;
  }

  ExprPtr node(Expr::Kind kind, size_t pos) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->pos = pos;
    return e;
  }
  ExprPtr node(Expr::Kind kind, size_t pos, ExprPtr a, ExprPtr b = nullptr) {
    auto e = node(kind, pos);
    attach(*e, std::move(a));
    if (b) attach(*e, std::move(b));
    return e;
  }
  // Adds a child (null for an absent slice bound or else branch). Left-associative chains such as
  // a+b+c+... or x|f|f|f... are built by loops, not recursion, so their depth is counted here.
  void attach(Expr& parent, ExprPtr child) {
    if (child) raise_depth(parent, child->depth + 1);
    parent.args.push_back(std::move(child));
  }
  void raise_depth(Expr& parent, int depth) {
    parent.depth = std::max(parent.depth, depth);
    if (parent.depth > kMaxExprDepth) {
      fail(parent.pos,
           "expression nested more than " + std::to_string(kMaxExprDepth) + " levels deep");
    }
  }

  // ---- statements ----

  // Parses until one of `stops` opens a block tag; leaves the tag name in stop_tag_ and the
  // position after it. With no stops, parses to the end of the template.
  Body parse_body(std::initializer_list<const char*> stops) {
    Nest nest(*this, cur().pos);
    Body body;
    size_t open_pos = i_ > 0 ? toks_[i_ - 1].pos : 0;
    while (true) {
      const Token& t = cur();
      if (t.kind == Token::Kind::End) {
        if (stops.size() == 0) return body;
        fail(open_pos,
             std::string("missing '{% ") + *(stops.end() - 1) + " %}' for the block opened");
      }
      if (t.kind == Token::Kind::Text) {
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::Text;
        s->pos = t.pos;
        s->text = t.text;
        body.push_back(std::move(s));
        ++i_;
      } else if (t.kind == Token::Kind::VarBegin) {
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::Output;
        s->pos = t.pos;
        ++i_;
        s->expr = parse_expression();
        if (cur().kind != Token::Kind::VarEnd)
          fail(cur().pos, "expected '}}', found " + describe(cur()));
        ++i_;
        body.push_back(std::move(s));
      } else if (t.kind == Token::Kind::BlockBegin) {
        size_t pos = t.pos;
        ++i_;
        std::string tag = expect_name("a tag name after '{%'");
        for (const char* stop : stops) {
          if (tag == stop) {
            stop_tag_ = tag;
            return body;
          }
        }
        body.push_back(parse_statement(tag, pos));
      } else {
        fail(t.pos, "unexpected " + describe(t));
      }
    }
  }

  std::unique_ptr<Stmt> parse_statement(const std::string& tag, size_t pos) {
    auto s = std::make_unique<Stmt>();
    s->pos = pos;
    if (tag == "if") {
      s->kind = Stmt::Kind::If;
      while (true) {
        ExprPtr cond = parse_expression();
        expect_block_end();
        Body b = parse_body({"elif", "else", "endif"});
        s->branches.emplace_back(std::move(cond), std::move(b));
        if (stop_tag_ == "elif") continue;
        if (stop_tag_ == "else") {
          expect_block_end();
          s->else_body = parse_body({"endif"});
        }
        break;
      }
    } else if (tag == "for") {
      s->kind = Stmt::Kind::For;
      do {
        s->targets.push_back(expect_name("a loop variable"));
      } while (accept_op(","));
      if (!accept_name("in"))
        fail(cur().pos, "expected 'in' in '{% for %}', found " + describe(cur()));
      s->expr = parse_tuple(/*with_condexpr=*/false);
      if (accept_name("if")) s->filter = parse_expression();
      if (is_name("recursive")) fail(cur().pos, "unsupported construct 'recursive' loop");
      expect_block_end();
      ++loop_depth_;
      s->body = parse_body({"else", "endfor"});
      --loop_depth_;
      if (stop_tag_ == "else") {
        expect_block_end();
        s->else_body = parse_body({"endfor"});
      }
    } else if (tag == "set") {
      std::string target = expect_name("a variable name after 'set'");
      if (accept_op(".")) {
        s->kind = Stmt::Kind::Set;
        s->targets.push_back(target);
        s->attr = expect_name("an attribute name");
        expect_op("=");
        s->expr = parse_tuple(true);
      } else {
        s->targets.push_back(target);
        while (accept_op(",")) s->targets.push_back(expect_name("a variable name"));
        if (cur().kind == Token::Kind::BlockEnd && s->targets.size() == 1) {
          s->kind = Stmt::Kind::SetBlock;
          ++i_;
          s->body = parse_body({"endset"});
        } else {
          s->kind = Stmt::Kind::Set;
          if (is_op("|")) fail(cur().pos, "unsupported construct 'filtered {% set %} block'");
          expect_op("=");
          s->expr = parse_tuple(true);
        }
      }
    } else if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) fail(pos, "'{% " + tag + " %}' outside a loop");
      s->kind = tag == "break" ? Stmt::Kind::Break : Stmt::Kind::Continue;
    } else if (tag == "macro") {
      s->kind = Stmt::Kind::Macro;
      s->attr = expect_name("a macro name");
      expect_op("(");
      while (!accept_op(")")) {
        s->targets.push_back(expect_name("a macro parameter"));
        s->defaults.push_back(accept_op("=") ? parse_expression() : nullptr);
        if (!accept_op(",")) {
          expect_op(")");
          break;
        }
      }
      expect_block_end();
      int outer_loops = loop_depth_;  // a macro body cannot break the loop it is defined in
      loop_depth_ = 0;
      s->body = parse_body({"endmacro"});
      loop_depth_ = outer_loops;
      if (cur().kind == Token::Kind::Name && cur().text == s->attr) ++i_;  // {% endmacro name %}
    } else if (tag == "generation") {
      s->kind = Stmt::Kind::Block;
      expect_block_end();
      s->body = parse_body({"endgeneration"});
    } else {
      for (const char* u : kUnsupportedTags) {
        if (tag == u) fail(pos, "unsupported construct '{% " + tag + " %}'");
      }
      fail(pos, "unknown tag '{% " + tag + " %}'");
    }
    expect_block_end();
    return s;
  }

  // ---- expressions ----

  ExprPtr parse_expression() { return parse_condexpr(); }

  // "a, b" without brackets is a tuple (a list here), as in {% set a, b = 1, 2 %}.
  ExprPtr parse_tuple(bool with_condexpr) {
    size_t pos = cur().pos;
    ExprPtr first = with_condexpr ? parse_condexpr() : parse_or();
    if (!is_op(",")) return first;
    auto list = node(Expr::Kind::Tuple, pos);
    attach(*list, std::move(first));
    while (accept_op(",")) {
      if (cur().kind == Token::Kind::BlockEnd || cur().kind == Token::Kind::VarEnd || is_op(")"))
        break;
      attach(*list, with_condexpr ? parse_condexpr() : parse_or());
    }
    return list;
  }

  ExprPtr parse_condexpr() {
    Nest nest(*this, cur().pos);
    ExprPtr e = parse_or();
    while (is_name("if")) {
      size_t pos = cur().pos;
      ++i_;
      ExprPtr cond = parse_or();
      ExprPtr other = accept_name("else") ? parse_condexpr() : nullptr;
      auto c = node(Expr::Kind::Cond, pos, std::move(e), std::move(cond));
      attach(*c, std::move(other));
      e = std::move(c);
    }
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr e = parse_and();
    while (is_name("or")) {
      size_t pos = cur().pos;
      ++i_;
      e = node(Expr::Kind::Or, pos, std::move(e), parse_and());
    }
    return e;
  }

  ExprPtr parse_and() {
    ExprPtr e = parse_not();
    while (is_name("and")) {
      size_t pos = cur().pos;
      ++i_;
      e = node(Expr::Kind::And, pos, std::move(e), parse_not());
    }
    return e;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      Nest nest(*this, cur().pos);
      size_t pos = cur().pos;
      ++i_;
      return node(Expr::Kind::Not, pos, parse_not());
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    size_t pos = cur().pos;
    ExprPtr first = parse_math1();
    ExprPtr cmp;
    while (true) {
      std::string op;
      if (cur().kind == Token::Kind::Op &&
          (cur().text == "==" || cur().text == "!=" || cur().text == "<" || cur().text == "<=" ||
           cur().text == ">" || cur().text == ">=")) {
        op = cur().text;
        ++i_;
      } else if (is_name("in")) {
        op = "in";
        ++i_;
      } else if (is_name("not") && peek().kind == Token::Kind::Name && peek().text == "in") {
        op = "not in";
        i_ += 2;
      } else {
        break;
      }
      if (!cmp) {
        cmp = node(Expr::Kind::Compare, pos);
        attach(*cmp, std::move(first));
      }
      cmp->ops.push_back(op);
      attach(*cmp, parse_math1());
    }
    return cmp ? std::move(cmp) : std::move(first);
  }

  ExprPtr binary(const std::string& op, size_t pos, ExprPtr a, ExprPtr b) {
    auto e = node(Expr::Kind::Binary, pos, std::move(a), std::move(b));
    e->name = op;
    return e;
  }

  ExprPtr parse_math1() {
    ExprPtr e = parse_concat();
    while (is_op("+") || is_op("-")) {
      std::string op = cur().text;
      size_t pos = cur().pos;
      ++i_;
      e = binary(op, pos, std::move(e), parse_concat());
    }
    return e;
  }

  ExprPtr parse_concat() {
    ExprPtr e = parse_math2();
    while (is_op("~")) {
      size_t pos = cur().pos;
      ++i_;
      e = binary("~", pos, std::move(e), parse_math2());
    }
    return e;
  }

  ExprPtr parse_math2() {
    ExprPtr e = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      std::string op = cur().text;
      size_t pos = cur().pos;
      ++i_;
      e = binary(op, pos, std::move(e), parse_pow());
    }
    return e;
  }

  ExprPtr parse_pow() {
    ExprPtr e = parse_unary(true);
    while (is_op("**")) {  // left-associative in Jinja, unlike Python
      size_t pos = cur().pos;
      ++i_;
      e = binary("**", pos, std::move(e), parse_unary(true));
    }
    return e;
  }

  ExprPtr parse_unary(bool with_filter) {
    Nest nest(*this, cur().pos);
    size_t pos = cur().pos;
    ExprPtr e;
    if (accept_op("-")) {
      e = node(Expr::Kind::Neg, pos, parse_unary(false));
    } else if (accept_op("+")) {
      e = node(Expr::Kind::Pos, pos, parse_unary(false));
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    return with_filter ? parse_filter_expr(std::move(e)) : std::move(e);
  }

  ExprPtr parse_primary() {
    const Token& t = cur();
    size_t pos = t.pos;
    switch (t.kind) {
      case Token::Kind::Name: {
        ++i_;
        auto e = node(Expr::Kind::Literal, pos);
        if (t.text == "true" || t.text == "True") {
          e->literal = Value(true);
        } else if (t.text == "false" || t.text == "False") {
          e->literal = Value(false);
        } else if (t.text == "none" || t.text == "None") {
          e->literal = Value::none();
        } else {
          e->kind = Expr::Kind::Name;
          e->name = t.text;
        }
        return e;
      }
      case Token::Kind::String: {
        std::string s;
        while (cur().kind == Token::Kind::String) s += toks_[i_++].text;  // 'a' 'b' == 'ab'
        auto e = node(Expr::Kind::Literal, pos);
        e->literal = Value(std::move(s));
        return e;
      }
      case Token::Kind::Int:
      case Token::Kind::Float: {
        ++i_;
        auto e = node(Expr::Kind::Literal, pos);
        e->literal = t.kind == Token::Kind::Int ? Value(t.int_value) : Value(t.float_value);
        return e;
      }
      case Token::Kind::Op:
        if (accept_op("(")) {
          if (accept_op(")")) return node(Expr::Kind::Tuple, pos);
          ExprPtr inner = parse_tuple(true);
          expect_op(")");
          return inner;
        }
        if (accept_op("[")) {
          auto e = node(Expr::Kind::List, pos);
          while (!accept_op("]")) {
            attach(*e, parse_expression());
            if (!accept_op(",")) {
              expect_op("]");
              break;
            }
          }
          return e;
        }
        if (accept_op("{")) {
          auto e = node(Expr::Kind::Dict, pos);
          while (!accept_op("}")) {
            attach(*e, parse_expression());
            expect_op(":");
            attach(*e, parse_expression());
            if (!accept_op(",")) {
              expect_op("}");
              break;
            }
          }
          return e;
        }
        break;
      default:
        break;
    }
    fail(pos, "unexpected " + describe(t) + " in an expression");
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      size_t pos = cur().pos;
      if (accept_op(".")) {
        if (cur().kind == Token::Kind::Int) {  // x.0 is x[0]
          auto idx = node(Expr::Kind::Literal, cur().pos);
          idx->literal = Value(toks_[i_++].int_value);
          e = node(Expr::Kind::Item, pos, std::move(e), std::move(idx));
        } else {
          auto a = node(Expr::Kind::Attr, pos, std::move(e));
          a->name = expect_name("an attribute name after '.'");
          e = std::move(a);
        }
      } else if (accept_op("[")) {
        e = parse_subscript(std::move(e), pos);
      } else if (is_op("(")) {
        e = parse_call(std::move(e), Expr::Kind::Call, pos);
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr e, size_t pos) {
    ExprPtr parts[3];
    int n = 0;
    bool slice = false;
    while (true) {
      if (!is_op(":") && !is_op("]")) parts[n] = parse_expression();
      if (!slice && parts[0] && is_op(",")) {  // x[a, b]: a tuple key, as in Jinja
        auto key = node(Expr::Kind::Tuple, parts[0]->pos);
        attach(*key, std::move(parts[0]));
        while (accept_op(",") && !is_op("]")) attach(*key, parse_expression());
        parts[0] = std::move(key);
      }
      if (accept_op(":")) {
        slice = true;
        if (++n > 2) fail(cur().pos, "too many ':' in a slice");
        continue;
      }
      expect_op("]");
      break;
    }
    if (!slice) {
      if (!parts[0]) fail(pos, "empty subscript '[]'");
      return node(Expr::Kind::Item, pos, std::move(e), std::move(parts[0]));
    }
    auto s = node(Expr::Kind::Slice, pos, std::move(e));
    for (auto& p : parts) attach(*s, std::move(p));
    return s;
  }

  // Call arguments "(a, b, key=c)" onto `e` (a Call node's callee or a Filter/Test's subject).
  ExprPtr parse_call(ExprPtr e, Expr::Kind kind, size_t pos) {
    auto c = node(kind, pos, std::move(e));
    expect_op("(");
    while (!accept_op(")")) {
      if (is_op("*") || is_op("**"))
        fail(cur().pos, "unsupported construct '*args' or '**kwargs' in a call");
      if (cur().kind == Token::Kind::Name && peek().kind == Token::Kind::Op && peek().text == "=") {
        std::string key = toks_[i_].text;
        i_ += 2;
        ExprPtr value = parse_expression();
        raise_depth(*c, value->depth + 1);
        c->kwargs.emplace_back(key, std::move(value));
      } else {
        if (!c->kwargs.empty()) fail(cur().pos, "positional argument after a keyword argument");
        attach(*c, parse_expression());
      }
      if (!accept_op(",")) {
        expect_op(")");
        break;
      }
    }
    return c;
  }

  ExprPtr parse_filter_expr(ExprPtr e) {
    while (true) {
      size_t pos = cur().pos;
      if (accept_op("|")) {
        std::string name = expect_name("a filter name after '|'");
        if (!is_known_filter(name)) fail(pos, "unsupported construct: filter '" + name + "'");
        if (is_op("(")) {
          e = parse_call(std::move(e), Expr::Kind::Filter, pos);
        } else {
          e = node(Expr::Kind::Filter, pos, std::move(e));
        }
        e->name = name;
      } else if (accept_name("is")) {
        bool negated = accept_name("not");
        std::string name = expect_name("a test name after 'is'");
        if (!is_known_test(name)) fail(pos, "unsupported construct: test '" + name + "'");
        const Token& t = cur();
        if (is_op("(")) {
          e = parse_call(std::move(e), Expr::Kind::Test, pos);
        } else {
          e = node(Expr::Kind::Test, pos, std::move(e));
          // "x is divisibleby 3": one argument without parentheses (jinja2 parser.parse_test).
          if (is_name("is")) fail(cur().pos, "cannot chain multiple tests with 'is'");
          bool arg_start = t.kind == Token::Kind::String || t.kind == Token::Kind::Int ||
                           t.kind == Token::Kind::Float || is_op("[") || is_op("{") ||
                           (t.kind == Token::Kind::Name && t.text != "else" && t.text != "or" &&
                            t.text != "and" && t.text != "is");
          if (arg_start) attach(*e, parse_postfix(parse_primary()));
        }
        e->name = name;
        e->negated = negated;
      } else if (is_op("(")) {
        e = parse_call(std::move(e), Expr::Kind::Call, pos);
      } else {
        return e;
      }
    }
  }
};

}  // namespace

ParsedTemplate parse_template(std::string_view template_text) {
  return Parser(lex(template_text)).run();
}

}  // namespace dsv3::jinja

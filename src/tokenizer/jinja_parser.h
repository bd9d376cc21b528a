// Jinja parser: tokens -> a tree of statements and expressions, with Jinja2's operator precedence
// (jinja2/parser.py: condexpr < or < and < not < compare < + - < ~ < * / // % < ** < unary <
// postfix and filters). Constructs outside the supported subset fail here, naming the construct
// and its position, so nothing is silently mis-rendered.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace dsv3::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    Literal,  // literal
    Name,     // name
    List,     // args: elements
    Tuple,    // args: elements
    Dict,     // args: key0, value0, key1, value1, ...
    Attr,     // args[0].name
    Item,     // args[0][args[1]]
    Slice,    // args[0][args[1]:args[2]:args[3]], any of 1..3 may be null
    Call,     // args[0](args[1..], kwargs)
    Filter,   // args[0] | name(args[1..], kwargs)
    Test,     // args[0] is [not] name(args[1..]); negated
    Neg,      // -args[0]
    Pos,      // +args[0]
    Not,      // not args[0]
    Binary,   // args[0] name args[1], name one of + - * / // % ** ~
    Compare,  // args[0] ops[0] args[1] ops[1] args[2] ... (chained, as in Python)
    And,      // args[0] and args[1]
    Or,       // args[0] or args[1]
    Cond,     // args[0] if args[1] else args[2] (args[2] may be null)
  };
  Kind kind;
  size_t pos = 0;
  Value literal;
  std::string name;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;  // Compare: "==", "!=", "<", "<=", ">", ">=", "in", "not in"
  bool negated = false;
  int depth = 1;  // of this expression tree, bounded so evaluating it cannot exhaust the stack
};

struct Stmt;
using Body = std::vector<std::unique_ptr<Stmt>>;

struct Stmt {
  enum class Kind {
    Text,      // text
    Output,    // {{ expr }}
    If,        // branches (condition, body)..., else_body
    For,       // for targets in expr [if filter]: body, else_body
    Set,       // set targets = expr, or set targets[0].attr = expr when attr is not empty
    SetBlock,  // set targets[0] %}body{% endset
    Break,
    Continue,
    Block,  // a body run in place ({% generation %} of Hugging Face's templates)
    Macro,  // macro attr(targets... = defaults...): body
  };
  Kind kind;
  size_t pos = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr filter;
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body, else_body;
  std::vector<std::string> targets;
  std::string attr;
  std::vector<ExprPtr> defaults;  // Macro: one per parameter, null when it has none
};

struct ParsedTemplate {
  std::string source;  // normalized template text, for positions in errors
  Body body;
};

// Throws dsv3::Error "chat template: <problem> at line L, column C".
ParsedTemplate parse_template(std::string_view template_text);

}  // namespace dsv3::jinja

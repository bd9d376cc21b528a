// Jinja interpreter: walks a parsed template with a stack of variable scopes (a for loop's body
// gets a fresh scope each iteration, as in Jinja2, which is why templates carry state in
// namespace()).
#pragma once
#include <string>

#include "tokenizer/chat_template.h"
#include "tokenizer/jinja_parser.h"
#include "tokenizer/jinja_value.h"

namespace dsv3::jinja {

std::string render(const ParsedTemplate& tmpl, Dict globals, const RenderLimits& limits);

}  // namespace dsv3::jinja

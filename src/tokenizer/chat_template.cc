#include "tokenizer/chat_template.h"

#include "base/error.h"
#include "tokenizer/jinja_eval.h"
#include "tokenizer/jinja_parser.h"

namespace dsv3 {

std::string render_jinja(std::string_view tmpl, const Json& context, const RenderLimits& limits) {
  DSV3_CHECK(context.is_object(), "chat template: the variables must be a JSON object");
  jinja::Dict globals;
  for (const auto& [k, v] : context.as_object()) globals.emplace_back(k, jinja::from_json(v));
  return jinja::render(jinja::parse_template(tmpl), std::move(globals), limits);
}

std::string render_chat_template(const std::string& tmpl, const Json& messages,
                                 bool add_generation_prompt, const Json& extra_vars,
                                 const RenderLimits& limits) {
  DSV3_CHECK(messages.is_array(),
             "chat template: messages must be a JSON array of {role, content} objects");
  DSV3_CHECK(extra_vars.is_null() || extra_vars.is_object(),
             "chat template: extra variables must be a JSON object");
  Json context = Json::object();
  context["messages"] = messages;
  context["add_generation_prompt"] = add_generation_prompt;
  if (extra_vars.is_object()) {
    for (const auto& [k, v] : extra_vars.as_object()) {
      DSV3_CHECK(
          k != "messages" && k != "add_generation_prompt",
          "chat template: extra variable '" + k + "' would replace an argument of the same name");
      context[k] = v;
    }
  }
  return render_jinja(tmpl, context, limits);
}

}  // namespace dsv3

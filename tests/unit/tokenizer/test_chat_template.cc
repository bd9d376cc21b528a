// The chat-template interpreter on its own: constructs with hand-worked expected output (Python
// Jinja2 semantics), R1's reasoning stripping, errors that name the construct and position, and the
// limits that stop runaway templates. The comparison with the references over many conversations
// and constructs is test_chat_template_reference.cc.
#include <gtest/gtest.h>

#include <string>

#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "tokenizer/chat_template.h"

namespace dsv3 {
namespace {

std::string render(const std::string& tmpl, const std::string& context_json = "{}",
                   const RenderLimits& limits = {}) {
  return render_jinja(tmpl, Json::parse(context_json), limits);
}

// The message of the Error that rendering throws ("" when it renders).
std::string error_of(const std::string& tmpl, const std::string& context_json = "{}",
                     const RenderLimits& limits = {}) {
  try {
    render(tmpl, context_json, limits);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

Json conversation() {
  return Json::parse(R"([
    {"role": "system", "content": "S"},
    {"role": "user", "content": "Q1"},
    {"role": "assistant", "content": "<think>\nreasoning\n</think>\n\nA1"},
    {"role": "user", "content": "Q2"}])");
}

const char* kBos = "<｜begin▁of▁sentence｜>";

TEST(ChatTemplate, NamespaceLoopAndConditionals) {
  const std::string tmpl =
      "{% set ns = namespace(sys='', n=0) %}"
      "{%- for m in messages %}{% if m.role == 'system' %}{% set ns.sys = m['content'] %}"
      "{% else %}{% set ns.n = ns.n + 1 %}{% endif %}{% endfor -%}"
      "[{{ ns.sys }}|{{ ns.n }}]"
      "{% for m in messages if m.role != 'system' %}{{ loop.index }}/{{ loop.length }}:{{ m.role | "
      "upper }}"
      "{{ ',' if not loop.last }}{% endfor %}";
  EXPECT_EQ(render_chat_template(tmpl, conversation(), false, Json::object()),
            "[S|3]1/3:USER,2/3:ASSISTANT,3/3:USER");
}

TEST(ChatTemplate, R1StripsReasoningFromHistoryAndOpensThink) {
  const std::string tmpl =
      read_file(DSV3_SOURCE_DIR "/tests/fixtures/chat_templates/deepseek_r1.jinja");
  Json vars = Json::object();
  vars["bos_token"] = kBos;
  const std::string history =
      std::string(kBos) + "S<｜User｜>Q1<｜Assistant｜>\n\nA1<｜end▁of▁sentence｜><｜User｜>Q2";
  EXPECT_EQ(render_chat_template(tmpl, conversation(), false, vars), history);
  EXPECT_EQ(render_chat_template(tmpl, conversation(), true, vars),
            history + "<｜Assistant｜><think>\n");
}

TEST(ChatTemplate, WhitespaceControlTrimAndLstripBlocks) {
  // trim_blocks drops the newline after a block tag; lstrip_blocks the indentation before it.
  EXPECT_EQ(render("<ul>\n  {% for x in [1, 2] %}\n  <li>{{ x }}</li>\n  {% endfor %}\n</ul>"),
            "<ul>\n  <li>1</li>\n  <li>2</li>\n</ul>");
  EXPECT_EQ(render("a  {{- 'b' -}}  \n c"), "abc");
  EXPECT_EQ(render("a\n  {%- if true %} b {% endif -%}\n c"), "a b c");
  EXPECT_EQ(render("  {%+ if true %}x{% endif %}"), "  x");  // "+" keeps the indentation
  EXPECT_EQ(render("x\n"), "x");                             // one trailing newline dropped
  EXPECT_EQ(render("{# comment #}y"), "y");
}

TEST(ChatTemplate, PythonValueSemantics) {
  EXPECT_EQ(
      render("{{ none }} {{ true }} {{ 1.0 }} {{ 7 // 2 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }}"),
      "None True 1.0 3 2 3.5 1024");
  EXPECT_EQ(render("{{ [1, 'a', none] }} {{ {'k': \"it's\"} }} {{ (1,) }}"),
            "[1, 'a', None] {'k': \"it's\"} (1,)");
  EXPECT_EQ(
      render("{{ missing }}|{{ missing is defined }}|{{ d.nokey is defined }}", R"({"d": {}})"),
      "|False|False");
  EXPECT_EQ(render("{{ s[1] }} {{ s | length }} {{ s[::-1] }} {{ s[-2:] }}", R"({"s": "日本語😀"})"),
            "本 4 😀語本日 語😀");
  EXPECT_EQ(render("{{ 'a</think>b</think>c'.split('</think>')[-1] }}"), "c");
  EXPECT_EQ(render("{{ ' x '.strip() }}|{{ 'a b'.replace(' ', '_') }}|{{ 'ab'.startswith('a') }}"),
            "x|a_b|True");
  EXPECT_EQ(render("{{ x | tojson }}", R"({"x": {"a": [1, "é\n", null, true]}})"),
            R"({"a": [1, "é\n", null, true]})");
  EXPECT_EQ(render("{{ 'x' ~ 1 ~ none }} {{ 1 < 2 < 3 }} {{ 'b' in 'abc' }} {{ 0 or 'y' }}"),
            "x1None True True y");
  EXPECT_EQ(render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}",
                   R"({"d": {"a": 1, "b": 2}})"),
            "a=1;b=2;");
  EXPECT_EQ(render("{% for x in [1, 2, 3, 4] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == "
                   "4 %}{% break %}"
                   "{% endif %}{{ x }}{% endfor %}"),
            "13");
  // A loop body gets a fresh scope each iteration: only a namespace carries state out.
  EXPECT_EQ(render("{% set x = 0 %}{% for i in [1, 2] %}{{ x }}{% set x = i %}{% endfor %}{{ x }}"),
            "000");
}

TEST(ChatTemplate, UnsupportedConstructsAreNamedWithTheirPosition) {
  EXPECT_EQ(error_of("ab\n  {% filter upper %}x{% endfilter %}"),
            "chat template: unsupported construct '{% filter %}' at line 2, column 3");
  EXPECT_EQ(error_of("{{ 'x' | wordcount }}"),
            "chat template: unsupported construct: filter 'wordcount' at line 1, column 8");
  EXPECT_EQ(error_of("{{ 'x'.isdigit() }}"),
            "chat template: unsupported construct: method str.isdigit() at line 1, column 15");
  EXPECT_EQ(error_of("{{ '%s' % 1 }}"),
            "chat template: unsupported construct: printf-style string formatting ('%' on a "
            "string) at line 1, column 9");
  EXPECT_EQ(error_of("{{ [].append(1) }}"),
            "chat template: unsupported construct: list.append() (values are immutable in chat "
            "templates, as in "
            "Hugging Face's sandbox) at line 1, column 6");
  EXPECT_EQ(error_of("{% frobnicate %}"),
            "chat template: unknown tag '{% frobnicate %}' at line 1, column 1");
}

TEST(ChatTemplate, TemplateErrorsNameTheProblem) {
  EXPECT_EQ(error_of("{% if x %}never closed"),
            "chat template: missing '{% endif %}' for the block opened at line 1, column 9");
  EXPECT_EQ(error_of("{{ 1 + }}"),
            "chat template: unexpected '}}' in an expression at line 1, column 8");
  EXPECT_EQ(error_of("x {{ 'abc"),
            "chat template: unterminated string literal at line 1, column 6");
  EXPECT_EQ(error_of("{{ a.b }}"),
            "chat template: 'a' is undefined (reading its attribute 'b') at line 1, column 5");
  EXPECT_EQ(
      error_of("{{ 'a' + 1 }}"),
      "chat template: unsupported operand type(s) for +: 'str' and 'int' at line 1, column 8");
  EXPECT_EQ(error_of("{{ raise_exception('Only user and assistant roles are supported!') }}"),
            "chat template: raise_exception: Only user and assistant roles are "
            "supported! at line "
            "1, column 19");
  EXPECT_EQ(error_of("{% break %}"),
            "chat template: '{% break %}' outside a loop at line 1, column 1");
}

TEST(ChatTemplate, ArgumentsAreValidated) {
  EXPECT_THROW(render_chat_template("x", Json::parse("{}"), false, Json::object()), Error);
  EXPECT_THROW(render_chat_template("x", Json::array(), false, Json::parse(R"({"messages": []})")),
               Error);
  EXPECT_THROW(render_chat_template("x", Json::array(), false, Json::parse("[1]")), Error);
  EXPECT_EQ(render_chat_template("{{ add_generation_prompt }}{{ messages | length }}",
                                 Json::array(), true, Json()),
            "True0");
}

TEST(ChatTemplate, RunawayTemplatesStopWithAnError) {
  // Doubling a string passes the output/string cap (64 MiB by default) after 26 rounds.
  EXPECT_NE(error_of("{% set ns = namespace(s='x') %}{% for i in range(100) %}{% set ns.s = ns.s ~ "
                     "ns.s %}{% endfor %}")
                .find("exceeds the limit"),
            std::string::npos);
  // Nested loops of 10^9 iterations exhaust the step budget.
  RenderLimits small;
  small.max_steps = 100'000;
  EXPECT_NE(
      error_of("{% for i in range(30000) %}{% for j in range(30000) %}{% endfor %}{% endfor %}",
               "{}", small)
          .find("budget exhausted"),
      std::string::npos);
  EXPECT_NE(error_of("{{ range(2000000) | length }}").find("exceeds the limit"), std::string::npos);
  EXPECT_NE(error_of("{{ 'x' * 100000000000 }}").find("exceeds the limit"), std::string::npos);
  small.max_output_bytes = 1000;
  EXPECT_NE(
      error_of("{% for i in range(2000) %}xx{% endfor %}", "{}", small).find("output exceeds"),
      std::string::npos);
  // Self-nesting values: a list nested 200 deep, a namespace inside itself.
  EXPECT_NE(error_of("{% set ns = namespace(l=[]) %}{% for i in range(200) %}{% set ns.l = [ns.l] "
                     "%}{% endfor %}")
                .find("levels deep"),
            std::string::npos);
  EXPECT_NE(error_of("{% set ns = namespace() %}{% set ns.me = [ns] %}")
                .find("namespace stored inside a namespace"),
            std::string::npos);
  // Stack depth: deep parentheses, long operator chains, deeply nested blocks.
  EXPECT_NE(error_of("{{ " + std::string(1000, '(') + "1" + std::string(1000, ')') + " }}")
                .find("nested more than"),
            std::string::npos);
  std::string chain = "{{ 1";
  for (int i = 0; i < 5000; ++i) chain += " + 1";
  EXPECT_NE(error_of(chain + " }}").find("nested more than"), std::string::npos);
  std::string ifs;
  for (int i = 0; i < 1000; ++i) ifs += "{% if true %}";
  EXPECT_NE(error_of(ifs).find("nested more than"), std::string::npos);
}

}  // namespace
}  // namespace dsv3

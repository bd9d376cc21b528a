// Chat templates: renders a model's Jinja `chat_template` (tokenizer_config.json) the way Hugging
// Face's apply_chat_template does: Python Jinja2 semantics in an immutable sandbox, trim_blocks and
// lstrip_blocks, one trailing newline dropped, tojson without HTML escaping, raise_exception().
//
// The Jinja subset (what the DeepSeek-V3, R1, R1-Distill and similar templates use):
//   {{ }}, {% %}, {# #} with "-" and "+" whitespace control; if/elif/else; for (tuple targets,
//   "if" filter, else, loop.index/index0/revindex/revindex0/first/last/length/previtem/nextitem,
//   break, continue); set (names, tuples, ns.attr, set-blocks); macro (parameters with defaults,
//   keyword arguments, closures, recursion up to 64 calls deep); generation blocks.
//   Literals (str, int, float, list, tuple, dict, true/false/none), + - * / // % ** ~, comparisons
//   (chained), in / not in, and / or / not, x if c else y, attribute/item access, slices, calls.
//   Globals: namespace(), range(), dict(), raise_exception(), strftime_now(). str methods: split
//   rsplit strip lstrip rstrip startswith endswith replace lower upper title capitalize find count
//   join; dict methods: items keys values get. Filters: tojson trim length count default d join
//   upper lower capitalize title replace string int float abs list first last items reverse sort
//   min max select reject selectattr rejectattr map indent dictsort safe escape e. Tests: defined
//   undefined none boolean true false integer float number string mapping iterable sequence
//   callable odd even divisibleby eq ne lt le gt ge in lower upper (and their aliases).
// Anything else (call blocks, includes, printf-style %, other filters and methods, mutating lists)
// is an Error naming the construct and its line and column, never a silently different prompt. Case
// mapping (upper, lower, title) is ASCII-only.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/json.h"

namespace dsv3 {

// Caps that make every template finish quickly in bounded memory, even a hostile one (fuzzing).
// The defaults are far above what real chat templates need for long conversations.
struct RenderLimits {
  size_t max_output_bytes = size_t{64} << 20;  // also the longest string value
  uint64_t max_items = uint64_t{1} << 20;      // nodes of one list/dict value, nested items counted
  uint64_t max_steps = 200'000'000;            // work units: steps, plus bytes/16 of new strings
};

// Renders `tmpl` with the variables `messages`, `add_generation_prompt` and every member of
// `extra_vars` (an object: bos_token, eos_token, tools, enable_thinking, ...; these may not be
// named messages or add_generation_prompt). Throws dsv3::Error on a template error.
std::string render_chat_template(const std::string& tmpl, const Json& messages,
                                 bool add_generation_prompt, const Json& extra_vars,
                                 const RenderLimits& limits = {});

// Renders any template with the members of the object `context` as its variables.
std::string render_jinja(std::string_view tmpl, const Json& context,
                         const RenderLimits& limits = {});

}  // namespace dsv3

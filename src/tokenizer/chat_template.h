// Chat templates: renders a model's Jinja `chat_template` (tokenizer_config.json) the way Hugging
// Face's apply_chat_template does (Python Jinja2 semantics, trim_blocks + lstrip_blocks, immutable
// sandbox, tojson without HTML escaping, raise_exception). The interpreter implements the Jinja
// subset chat templates use (docs: the header of each jinja_*.h); anything else is an Error naming
// the construct and its line and column.
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

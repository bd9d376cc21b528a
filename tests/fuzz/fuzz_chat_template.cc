// libFuzzer target for the chat-template interpreter: arbitrary bytes as a Jinja template (and,
// after a NUL byte, as the content of a message) must render or fail with dsv3::Error, never crash,
// hang, leak or exhaust memory: RenderLimits bound output, values and work, the parser bounds
// nesting. Any other exception escapes and is reported as a crash.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/error.h"
#include "base/json.h"
#include "tokenizer/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const std::string tmpl(input.substr(0, nul));
  const std::string content(nul == std::string_view::npos ? "Hello" : input.substr(nul + 1));

  static const dsv3::Json kExtra = dsv3::Json::parse(
      R"({"bos_token": "<s>", "eos_token": "</s>", "tools": [{"type": "function",
          "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]})");
  dsv3::Json messages = dsv3::Json::array();
  for (const char* role : {"system", "user", "assistant", "tool", "user"}) {
    dsv3::Json m = dsv3::Json::object();
    m["role"] = role;
    m["content"] = std::string(role) == "assistant" ? "<think>r</think>" + content : content;
    messages.push_back(std::move(m));
  }
  // Small limits keep each run fast; the defaults are tested in test_chat_template.cc.
  dsv3::RenderLimits limits;
  limits.max_output_bytes = 1 << 16;
  limits.max_items = 1 << 12;
  limits.max_steps = 200'000;
  try {
    const std::string out =
        dsv3::render_chat_template(tmpl, messages, size % 2 == 0, kExtra, limits);
    if (out.size() > limits.max_output_bytes) __builtin_trap();
  } catch (const dsv3::Error&) {
    // A template error: the expected outcome for most inputs.
  }
  return 0;
}

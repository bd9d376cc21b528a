// dsv3 template: renders a conversation with the model's chat template and prints the prompt.
#include <cstdio>
#include <string>

#include "apps/dsv3/commands.h"
#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::cli {
namespace {

const char kUsage[] =
    "usage: dsv3 template -m DIR --messages FILE.json [--add-generation-prompt] [--template "
    "FILE]\n\n"
    "Renders the conversation in FILE.json with the chat template of DIR's tokenizer_config.json\n"
    "(as Hugging Face's apply_chat_template does, with bos_token and eos_token set) and prints "
    "the\n"
    "prompt exactly, with no newline added. FILE.json is either an array of messages\n"
    "[{\"role\": \"user\", \"content\": \"...\"}, ...] or an object {\"messages\": [...], ...} "
    "whose other\n"
    "members become template variables too (tools, enable_thinking, ...).\n\n"
    "  -m, --model DIR            model folder (tokenizer.json + tokenizer_config.json)\n"
    "  --messages FILE            the conversation ('-' for stdin)\n"
    "  --add-generation-prompt    end with the opening of the assistant's turn\n"
    "  --template FILE            use this Jinja template instead of the model's\n";

}  // namespace

int cmd_template(Args& a) {
  if (a.help()) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  const std::string dir = a.require({"-m", "--model"}, "model folder");
  const std::string messages_path = a.require({"--messages"}, "conversation JSON file");
  const bool add_generation_prompt = a.flag({"--add-generation-prompt"});
  const auto template_path = a.get({"--template"});
  a.finish();

  const Json doc = Json::parse(read_file_or_stdin(messages_path), messages_path);
  Json messages, vars = Json::object();
  if (doc.is_object()) {
    DSV3_CHECK(doc.contains("messages"), messages_path + ": the object needs a \"messages\" array");
    for (const auto& [k, v] : doc.as_object()) {
      if (k == "messages")
        messages = v;
      else
        vars[k] = v;
    }
  } else {
    messages = doc;
  }
  DSV3_CHECK(messages.is_array(),
             messages_path + ": messages must be an array of {role, content} objects");

  const Tokenizer tok = Tokenizer::load(dir);
  vars["bos_token"] = tok.bos_token();
  vars["eos_token"] = tok.eos_token();
  const std::string tmpl = template_path ? read_file(*template_path) : tok.chat_template();
  DSV3_CHECK(!tmpl.empty(), dir + ": tokenizer_config.json has no chat_template",
             "give one with --template FILE");
  const std::string prompt = render_chat_template(tmpl, messages, add_generation_prompt, vars);
  std::fwrite(prompt.data(), 1, prompt.size(), stdout);
  return 0;
}

}  // namespace dsv3::cli

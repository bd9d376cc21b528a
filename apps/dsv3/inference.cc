#include "apps/dsv3/inference.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>

#include "base/error.h"
#include "base/progress.h"
#include "base/strings.h"
#include "base/timer.h"
#include "kernels/best_kernels.h"
#include "model/param_table.h"

namespace dsv3::cli {
namespace {

std::atomic<bool> g_interrupted{false};
struct sigaction g_previous;

void on_sigint(int) {
  g_interrupted.store(true);
}

// Reads one byte of every page of every weight so that the mapped file is in memory.
void touch_weights(const ModelWeights& w, uint64_t total_bytes) {
  constexpr uint64_t kMiB = 1 << 20, kPage = 4096;
  ProgressBar bar("loading", total_bytes / kMiB, "MiB", ProgressBar::Offline::Lines);
  uint64_t done = 0;
  unsigned char sink = 0;
  for (const WeightView& v : w.all()) {
    const auto* p = static_cast<const unsigned char*>(v.data);
    const uint64_t n = v.data_bytes();
    for (uint64_t i = 0; i < n; i += kPage) sink ^= p[i];
    done += n;
    bar.set(done / kMiB);
  }
  bar.finish();
  asm volatile("" : : "r"(sink));  // the reads must not be optimised away
}

}  // namespace

InferenceModel::InferenceModel(const std::string& dir, int threads, bool with_tokenizer,
                               bool fp8_native)
    : dir_(dir), weights_(ModelWeights::load(dir)), pool_(threads), kernels_(best_kernels()) {
  Timer clock;
  for (const WeightView& v : weights_.all()) bytes_ += v.stored_bytes();
  const ParamCounts counts = count_params(config());
  params_ = counts.main_total;
  mtp_params_ = counts.mtp_unique;
  touch_weights(weights_, bytes_);
  ComputeContext ctx{kernels_, pool_};
  ctx.fp8_native_gemm = fp8_native;
  model_ = make_model(weights_, ctx);
  if (with_tokenizer) tok_ = std::make_unique<Tokenizer>(Tokenizer::load(dir));
  load_s_ = clock.seconds();
  std::fprintf(stderr, "loaded %s (%s, %s, %s; %s kernels, %d threads) in %.2f s\n", dir.c_str(),
               std::string(arch_name(config().arch)).c_str(), parameter_summary(config()).c_str(),
               human_bytes(bytes_).c_str(), kernels_.name, pool_.size(), load_s_);
}

const Tokenizer& InferenceModel::tokenizer() const {
  DSV3_CHECK(tok_ != nullptr, "internal: the model was opened without its tokenizer");
  return *tok_;
}

const char kSamplingFlagsHelp[] =
    "sampling (defaults: the model's generation_config.json, as transformers reads it; without\n"
    "one temperature 0.8, top-k 40, top-p 0.95, min-p 0.05 as llama.cpp):\n"
    "  -n, --max-tokens N      tokens to generate at most; -1: until the context is full\n"
    "  --temp, --temperature T 0 is greedy (the most likely token each step)\n"
    "  --greedy                the same as --temp 0\n"
    "  --top-k K               keep the K most likely tokens (0: off)\n"
    "  --top-p P               keep the most likely tokens up to probability mass P (1: off)\n"
    "  --min-p P               keep tokens at least P times as likely as the best (0: off)\n"
    "  --repeat-penalty R      divide the positive logits of tokens seen in the prompt and reply\n"
    "                          by R, multiply the negative ones (transformers; 1: off)\n"
    "  --frequency-penalty F   subtract F per earlier use in the reply (OpenAI; 0: off)\n"
    "  --presence-penalty F    subtract F once for any earlier use in the reply (OpenAI; 0: off)\n"
    "  --seed S                random seed: the same seed gives the same text (default: random,\n"
    "                          printed with the statistics)\n"
    "  --stop TEXT             stop before TEXT (repeatable)\n"
    "  --ignore-eos            do not stop at end-of-sequence tokens\n"
    "speculative decoding (DeepSeek-V3 models with an MTP module):\n"
    "  --speculative mtp       the model's MTP module drafts tokens and the model checks them in\n"
    "                          one pass: greedy output is identical, sampled output has the same\n"
    "                          distribution; acceptance figures follow the statistics\n"
    "  --draft N               drafts per step, 1 .. 16 (default 1, the depth MTP is trained\n"
    "                          for; more re-applies it to its own output)\n";

namespace {

// The flags as overrides; Args checks that numbers are numbers, check_generation_overrides the
// ranges, here before anything is loaded. -n -1 is the CLI's spelling of kNoTokenLimit.
GenerationOverrides read_sampling_flags(Args& a) {
  GenerationOverrides o;
  o.temperature = a.get_double({"--temp", "--temperature"});
  if (a.flag({"--greedy"})) o.temperature = 0;
  o.top_k = a.get_int({"--top-k"});
  o.top_p = a.get_double({"--top-p"});
  o.min_p = a.get_double({"--min-p"});
  o.repetition_penalty = a.get_double({"--repeat-penalty"});
  o.frequency_penalty = a.get_double({"--frequency-penalty"});
  o.presence_penalty = a.get_double({"--presence-penalty"});
  if (auto s = a.get({"--seed"})) {
    int64_t seed = parse_int(*s, "--seed");
    DSV3_CHECK(seed >= 0, "--seed must be >= 0, not " + *s);
    o.seed = static_cast<uint64_t>(seed);
  }
  if (auto n = a.get_int({"-n", "--max-tokens"})) {
    DSV3_CHECK(*n >= -1,
               "-n must be -1 (until the context is full) or >= 0, not " + std::to_string(*n));
    o.max_tokens = *n < 0 ? kNoTokenLimit : *n;
  }
  o.stop_strings = a.get_all({"--stop"});
  o.ignore_eos = a.flag({"--ignore-eos"});
  check_generation_overrides(o);
  return o;
}

}  // namespace

DType cache_dtype_arg(Args& a) {
  const std::string t = a.get_or({"--cache-dtype"}, "f32");
  DSV3_CHECK(t == "f32" || t == "bf16", "--cache-dtype must be f32 or bf16, not '" + t + "'");
  return t == "bf16" ? DType::BF16 : DType::F32;
}

GenerationSetup open_for_generation(Args& a, const std::string& dir, int64_t default_max_tokens,
                                    const std::function<void()>& before_loading) {
  const GenerationOverrides overrides = read_sampling_flags(a);
  GenerationSetup s;
  s.cache_dtype = cache_dtype_arg(a);
  s.draft = speculative_flags(a);
  const int threads = threads_arg(a);
  const bool fp8_native = fp8_gemm_arg(a);
  a.finish();  // before `dir` is used: it may be a required option that is missing
  if (before_loading) before_loading();
  const GenerationDefaults defaults = load_generation_defaults(dir);
  s.model = std::make_unique<InferenceModel>(dir, threads, /*with_tokenizer=*/true, fp8_native);
  s.policy = resolve_generation_policy(overrides, defaults, default_max_tokens, s.model->config(),
                                       s.model->tokenizer());
  return s;
}

int64_t speculative_flags(Args& a) {
  const auto method = a.get({"--speculative"});
  const auto draft = a.get_int({"--draft"});
  DSV3_CHECK(!draft || method, "--draft needs --speculative mtp");
  if (!method) return 0;
  DSV3_CHECK(*method == "mtp", "--speculative must be 'mtp', not '" + *method + "'",
             "the model's own MTP module is the only draft dsv3 has");
  const int64_t n = draft.value_or(1);
  DSV3_CHECK(n >= 1 && n <= 16, "--draft must be within 1 .. 16, not " + std::to_string(n));
  return n;
}

void apply_speculation(Generator& gen, const GenerationSetup& setup) {
  if (setup.draft > 0)
    gen.enable_speculation(setup.draft, setup.policy.sampling.seed ^ kDraftSeedStream);
}

InterruptGuard::InterruptGuard() {
  g_interrupted.store(false);
  struct sigaction sa = {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  // SA_RESTART: a write blocked on a full pipe or terminal goes on after the handler; without it
  // the write fails with EINTR, stdio marks stdout in error and the run ends with a write error.
  // Nothing waits on EINTR to see Ctrl-C: the readers poll the flag (chat's read_line).
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, &g_previous);
}

InterruptGuard::~InterruptGuard() {
  sigaction(SIGINT, &g_previous, nullptr);
}
const std::atomic<bool>* InterruptGuard::flag() {
  return &g_interrupted;
}
bool InterruptGuard::pending() {
  return g_interrupted.load();
}
void InterruptGuard::clear() {
  g_interrupted.store(false);
}

ReasoningPrinter::ReasoningPrinter(bool hide) : hide_(hide), tty_(::isatty(STDOUT_FILENO) != 0) {}

void ReasoningPrinter::print(const std::vector<ReasoningSplitter::Piece>& pieces) {
  for (const auto& p : pieces) {
    (p.reasoning && hide_ ? hidden_ : shown_) += p.text.size();
    if (p.reasoning && hide_) continue;
    if (tty_) {
      std::fputs(p.reasoning ? "\x1b[2m" : "", stdout);  // ANSI dim
      std::fwrite(p.text.data(), 1, p.text.size(), stdout);
      std::fputs(p.reasoning ? "\x1b[22m" : "", stdout);
    } else {
      if (p.reasoning != open_) std::fputs(p.reasoning ? "<think>" : "</think>", stdout);
      open_ = p.reasoning;
      std::fwrite(p.text.data(), 1, p.text.size(), stdout);
    }
  }
  std::fflush(stdout);
}

void ReasoningPrinter::end() {
  open_ = false;
  std::fflush(stdout);
}

std::string ReasoningPrinter::note(bool still_reasoning, StopReason reason) const {
  const bool cut = reason == StopReason::MaxTokens;
  if (hide_ && hidden_ > 0 && shown_ == 0)
    return "--hide-reasoning hid everything generated: " + std::to_string(hidden_) +
           " bytes of reasoning and " + (still_reasoning ? "no answer yet" : "an empty answer") +
           (still_reasoning && cut ? " (a larger -n lets the model reach one)" : "") +
           "; leave out --hide-reasoning to see the reasoning";
  if (still_reasoning && hidden_ + shown_ > 0)
    return std::string("the output ended inside the reasoning: the model wrote no </think>") +
           (cut ? " (a larger -n lets it finish)" : "");
  return "";
}

void print_ids(const char* what, const std::vector<int32_t>& ids) {
  std::fprintf(stderr, "%s:", what);
  for (int32_t id : ids) std::fprintf(stderr, " %d", id);
  std::fputc('\n', stderr);
}

void print_generation_stats(const GenerationResult& r, uint64_t seed) {
  auto rate = [](int64_t n, double s) { return s > 0 ? n / s : 0.0; };
  std::fprintf(stderr, "prompt: %lld tokens in %.3f s (%.1f tokens/s) | ",
               static_cast<long long>(r.prompt_tokens), r.prefill_s,
               rate(r.prompt_tokens, r.prefill_s));
  std::fprintf(stderr, "generation: %lld tokens", static_cast<long long>(r.tokens.size()));
  if (r.decode_tokens > 0)
    std::fprintf(stderr, ", %.1f tokens/s", rate(r.decode_tokens, r.decode_s));
  std::fprintf(stderr, " | first token after %.3f s | peak memory %s | stop: %s | seed %llu\n",
               r.ttft_s, human_bytes(peak_rss_bytes()).c_str(), stop_reason_name(r.reason),
               static_cast<unsigned long long>(seed));
  const SpeculativeStats& sp = r.speculative;
  if (sp.steps > 0)
    std::fprintf(stderr,
                 "speculative (mtp): %lld steps, %lld of %lld drafts accepted (%.1f%%), %.2f "
                 "tokens per step; per step %.2f ms drafting (MTP), %.2f ms verifying\n",
                 static_cast<long long>(sp.steps), static_cast<long long>(sp.accepted),
                 static_cast<long long>(sp.drafted), 100.0 * sp.acceptance_rate(),
                 sp.tokens_per_step(), 1e3 * sp.draft_s / sp.steps, 1e3 * sp.verify_s / sp.steps);
}

}  // namespace dsv3::cli

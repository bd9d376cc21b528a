// What dsv3 generate, chat and bench share: opening a model for inference (with a progress bar and
// the time taken), the sampling flags (read into runtime's GenerationOverrides; the policy lives in
// runtime/generation_policy.h), Ctrl-C handling and the statistics line.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "apps/dsv3/args.h"
#include "base/thread_pool.h"
#include "model/model.h"
#include "model/weights.h"
#include "runtime/generate.h"
#include "runtime/generation_policy.h"
#include "runtime/stream_text.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::cli {

// A model folder opened for inference with best_kernels() (DSV3_KERNELS=ref forces the reference
// kernels). Every weight page is read once while a progress bar runs
// (on a terminal), so the first token is not charged for reading the file.
class InferenceModel {
 public:
  // fp8_native: ComputeContext::fp8_native_gemm (--fp8-gemm native).
  InferenceModel(const std::string& dir, int threads, bool with_tokenizer, bool fp8_native = false);
  InferenceModel(const InferenceModel&) = delete;
  InferenceModel& operator=(const InferenceModel&) = delete;

  const std::string& dir() const { return dir_; }
  Model& model() { return *model_; }
  const ModelWeights& weights() const { return weights_; }
  const ModelConfig& config() const { return weights_.config(); }
  const Tokenizer& tokenizer() const;  // throws Error when opened without one
  ThreadPool& pool() { return pool_; }
  const Kernels& kernels() const { return kernels_; }
  uint64_t weight_bytes() const { return bytes_; }
  // parameter_summary's figure: the main model's parameters, without the MTP module.
  uint64_t parameters() const { return params_; }
  uint64_t mtp_parameters() const { return mtp_params_; }  // its own, copies left out
  double load_seconds() const { return load_s_; }

 private:
  std::string dir_;
  ModelWeights weights_;
  ThreadPool pool_;
  const Kernels& kernels_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Tokenizer> tok_;
  uint64_t bytes_ = 0, params_ = 0, mtp_params_ = 0;
  double load_s_ = 0;
};

// --cache-dtype: f32 (the default) or bf16.
DType cache_dtype_arg(Args& a);

// The help text of -n and the sampling flags, which open_for_generation reads.
extern const char kSamplingFlagsHelp[];

// What dsv3 generate and chat set up alike, in this order: -n and the sampling flags (as
// GenerationOverrides, checked), --cache-dtype (f32|bf16, default f32), --speculative mtp
// [--draft N] (speculative_flags) and -t; then
// Args::finish(), so the command reads its own options before; then the folder's
// generation_config.json, the model with its tokenizer, and the generation policy
// (resolve_generation_policy; default_max_tokens when neither -n nor the folder gives a limit).
// `before_loading` runs after finish() and before the model loads: a command reads its inputs
// there, so that a bad prompt file fails at once.
struct GenerationSetup {
  GenerationPolicy policy;
  DType cache_dtype = DType::F32;
  int64_t draft = 0;  // --speculative mtp: drafts per step (--draft, default 1); 0: off
  std::unique_ptr<InferenceModel> model;
};
GenerationSetup open_for_generation(Args& a, const std::string& dir, int64_t default_max_tokens,
                                    const std::function<void()>& before_loading = {});

// --speculative mtp [--draft N] as the drafts per step (0 without --speculative); Error for any
// other method, --draft alone or N outside 1 .. 16. generate, chat and bench share it.
int64_t speculative_flags(Args& a);
// Makes the generator speculative when setup.draft > 0 (Error for a model without MTP), with the
// draft's random generator seeded from the sampling seed.
void apply_speculation(Generator& gen, const GenerationSetup& setup);

// While alive, Ctrl-C (SIGINT) sets flag() instead of ending the process. Restores the previous
// handler on destruction. Reads interrupted by the signal return with EINTR (no SA_RESTART).
class InterruptGuard {
 public:
  InterruptGuard();
  ~InterruptGuard();
  static const std::atomic<bool>* flag();
  static bool pending();
  static void clear();
};

// Prints reasoning and answer pieces to stdout: the reasoning dim on a terminal, after a <think>
// tag otherwise (and a </think> where the model closed it), or not at all when hidden.
class ReasoningPrinter {
 public:
  explicit ReasoningPrinter(bool hide);
  void print(const std::vector<ReasoningSplitter::Piece>& pieces);
  // The end of the output. A reasoning block the model left open stays open: a </think> it never
  // produced is not printed (reasoning_note says why the text ends there).
  void end();
  // What the user should know about the output just ended, or "" (nothing hidden, nothing cut):
  // that --hide-reasoning hid everything generated, or that the output ended inside the reasoning
  // (`still_reasoning`: the splitter's state at the end), with what to do for the answer.
  std::string note(bool still_reasoning, StopReason reason) const;

 private:
  bool hide_, tty_, open_ = false;
  uint64_t shown_ = 0, hidden_ = 0;  // bytes of text
};

// "what: 1 2 3" on stderr.
void print_ids(const char* what, const std::vector<int32_t>& ids);

// "prompt 12 tokens, 240.1 t/s | generation 64 tokens, 101.3 t/s | first token 0.052 s | peak
// memory 210 MiB | stop: eos" to stderr.
void print_generation_stats(const GenerationResult& r, uint64_t seed);

}  // namespace dsv3::cli

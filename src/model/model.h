// The model interface every architecture implements (deepseek_v3.cc for DeepSeek-V3/V2 with MLA,
// arch_qwen2.cc and arch_llama.cc for the R1-Distill models) and the cache interface the forward
// pass writes to (runtime/kv_cache.h implements it).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "model/config.h"
#include "model/weights.h"

namespace dsv3 {

class MoeDispatcher;
class WeightGradQueue;  // model/linear.h

// MLA attention (SPEC §1.3, §1.5): Naive materialises per-head K and V from the latent cache (the
// training path); Absorbed folds W_UK into the query and W_UV into the output (decoding).
enum class AttentionPath { Naive, Absorbed };

// What a forward pass needs from one sequence's cache. Layer l holds row_elems() values per
// position: MLA [c_kv (kv_lora_rank) ; rotated k_pe (qk_rope_head_dim)] (SPEC §1.5); GQA
// [k (kv_heads * head_dim) ; v (kv_heads * head_dim)]. The storage dtype stays behind this.
class AttentionCache {
 public:
  virtual ~AttentionCache() = default;
  virtual int64_t length() const = 0;  // positions committed, the same for every layer
  virtual int64_t n_layers() const = 0;
  virtual int64_t row_elems() const = 0;
  // Stores rows [n, row_elems] as positions length() .. length() + n - 1 of `layer`. They are
  // readable at once and counted by length() after commit(n); an uncommitted put is overwritten
  // by the next one (a forward pass that throws leaves the cache as it was).
  virtual void put(int64_t layer, const float* rows, int64_t n) = 0;
  // Positions [0, n) of `layer` as float32 [n, row_elems]: a pointer into the cache, or into
  // `scratch` after a conversion. n may include put but uncommitted rows.
  virtual const float* rows_f32(int64_t layer, int64_t n, std::vector<float>& scratch) const = 0;
  virtual void commit(int64_t n) = 0;
};

struct CacheLayout {
  int64_t n_layers = 0, row_elems = 0;
};

// The arithmetic of every Linear's GEMMs (the policy itself: model/linear.h).
//   Inference  the weight as stored through matmul: each row's result is the same whatever else
//              is in the batch (a prefill row equals its decode bit for bit). What generation uses.
//   F32        the training GEMMs on the FP32 master weight, FP32 throughout: the exact mode the
//              gradient checks against PyTorch use.
//   BF16       the training GEMMs with both operands of each rounded to BF16, FP32 sums (V3's
//              mixed precision without FP8); the MoE gate stays FP32.
//   FP8        the recipe of SPEC §3.1: Fprop, Dgrad and Wgrad of every Linear but the embedding,
//              the LM heads, MTP's eh_proj (BF16) and the MoE gate (FP32) in E4M3 with 1x128
//              activation tiles and 128x128 weight blocks, FP32 promotion every 128 of K.
//   FP8Tensor  the same with one scale per tensor: the baseline fine-grained scaling is measured
//              against (`--fp8-scaling tensor`).
enum class Precision : uint8_t { Inference, F32, BF16, FP8, FP8Tensor };

// Which parts of the FP8 recipe (SPEC §3.1) run in FP8 under Precision::FP8 / FP8Tensor: the
// recipe is all three GEMMs of every FP8 Linear and the o_proj input cached in E5M6 with
// power-of-two scales. Switching parts off (`dsv3 train --fp8-gemms`, `--fp8-o-proj-cache`) is for
// ablations: a GEMM left out runs in BF16 (BF16 operands, FP32 sums), and an o_proj input without
// the E5M6 cache is cached and regrouped as every other Linear's (E4M3, float32 scales).
struct Fp8Recipe {
  bool fprop = true, dgrad = true, wgrad = true;
  bool e5m6_o_proj = true;
};

// Where a model computes: the kernel table, the thread pool and the Linears' precision, passed
// explicitly (no globals).
struct ComputeContext {
  const Kernels& kernels;
  ThreadPool& pool;
  Precision precision = Precision::Inference;
  // Inference on FP8 (E4M3 128x128) weights: false dequantises the weight on the fly (FP32
  // activations); true quantizes the activations per 1x128 tile as DeepSeek's act_quant and runs
  // the FP8 GEMM (fp8_gemm), as the official inference code does (`--fp8-gemm native`).
  bool fp8_native_gemm = false;
  // Training: when set, every Linear's weight-gradient GEMM is queued here instead of run
  // (ZeroBubble's B/W split for the pipeline, SPEC §4; model/linear.h).
  WeightGradQueue* wgrad = nullptr;
  Fp8Recipe fp8{};  // under FP8 precisions only
};

// Which of a sequence's rows get logits: None, the Last one (a prefill runs the LM head, the
// largest matmul for big vocabularies, on one row), or All. Batch::add also takes a list of rows.
enum class LogitsRows { None, Last, All };

struct ForwardActs;  // model/activations.h
class Batch;         // model/batch.h
class ParamStore;    // model/param_store.h

// A model: its parameters (a ParamStore it owns) and the batched forward pass. The activations
// belong to the caller (ForwardActs), so several batches can be in flight; threads share the work
// of one call through the ThreadPool.
class Model {
 public:
  virtual ~Model();
  virtual const ModelConfig& config() const = 0;
  virtual CacheLayout cache_layout() const = 0;
  virtual ParamStore& params() = 0;

  // Runs every row of `batch` (batch.h): each cached sequence's rows continue its cache and are
  // put and committed there; cache-less sequences attend causally within themselves. logits
  // [batch.logit_rows().size(), vocab] and hidden [batch.rows(), hidden_size] (the last hidden
  // state after the final norm: the MTP input, SPEC §9) may each be null. Throws Error for ids
  // outside the vocabulary, positions past max_position_embeddings or a cache that does not match
  // the model or the batch, leaving every cache unchanged.
  virtual void forward(const Batch& batch, ForwardActs& acts, float* logits,
                       float* hidden = nullptr) = 0;

  // One sequence, through the model's own activations, in chunks of 256 tokens (activation memory
  // bounded whatever the prompt): ids[0 .. T) at positions cache.length() .. appended to the
  // cache. logits [T, vocab] ([vocab] with LogitsRows::Last) and hidden [T, hidden_size] may be
  // null.
  void forward(const int32_t* ids, int64_t T, AttentionCache& cache, float* logits,
               float* hidden = nullptr, LogitsRows rows = LogitsRows::All);

  // MTP module (SPEC §1.7), present when num_nextn_predict_layers > 0 (the first module is used).
  // Row i of `batch` holds the token t_{i+1} that follows hidden[i] (from forward() at the same
  // position), with the MTP caches (mtp_cache_layout()) as the sequences' caches; logits
  // [batch.logit_rows().size(), vocab] are for the token after t_{i+1}.
  virtual bool has_mtp() const { return false; }
  virtual CacheLayout mtp_cache_layout() const { return {}; }
  virtual void forward_mtp(const Batch& batch, const float* hidden, ForwardActs& acts,
                           float* logits);
  // One sequence: all T rows' logits [T, vocab].
  void forward_mtp(const float* hidden, const int32_t* next_ids, int64_t T,
                   AttentionCache& mtp_cache, float* logits);

  // Training (after params().enable_training(), with a forward of `batch` into `acts` with
  // keep_layers and the Naive attention path, cache-less sequences only): accumulates dL/dθ into
  // params().grads() for dlogits [batch.logit_rows().size(), vocab] = dL/dlogits and dhidden
  // [batch.rows(), hidden_size] = dL/dhidden (the MTP module's share, or null). The MoE layers
  // add their MoeActs::dscores_aux. MLA (DeepSeek) models only; others throw Error.
  virtual void backward(const Batch& batch, ForwardActs& acts, const float* dlogits,
                        const float* dhidden);
  // The MTP module's backward of a training forward_mtp() over the same batch, hidden and acts:
  // writes dhidden [batch.rows(), hidden_size] = dL/dhidden and accumulates its gradients.
  virtual void backward_mtp(const Batch& batch, const float* hidden, ForwardActs& acts,
                            const float* dlogits, float* dhidden);

  // Pipeline stages (src/dist, SPEC §4): the forward and backward of layers [begin, end) only, over
  // caller-owned activations with keep_layers; forward() and backward() are the range [0, L).
  // begin == 0 embeds the batch's ids; otherwise acts.resid[begin] [N, d] holds the previous
  // stage's output, written by the caller. end == L runs the final norm and the head (logits,
  // hidden as forward()); otherwise the output stays in acts.resid[end]. No caches.
  virtual void forward_layers(const Batch& batch, ForwardActs& acts, int64_t begin, int64_t end,
                              float* logits, float* hidden);
  // The backward of forward_layers(): end == L starts from dlogits and dhidden as backward();
  // otherwise from dout [N, d] = dL/d(acts.resid[end]). Leaves dL/d(acts.resid[begin]) in
  // acts.dinput when begin > 0, or when begin == 0 and acts.defer_embedding_grad (then
  // embedding_backward() applies it later); else adds it to the embedding's gradient.
  virtual void backward_layers(const Batch& batch, ForwardActs& acts, int64_t begin, int64_t end,
                               const float* dlogits, const float* dhidden, const float* dout);
  // embed.grad[ids[t]] += dx[t] for t < n: the embedding's gradient from dL/d(its output rows),
  // deferred by ForwardActs::defer_embedding_grad (the main model's and the MTP module's).
  virtual void embedding_backward(const int32_t* ids, const float* dx, int64_t n);

  // MLA models only; others ignore it. Default: Absorbed.
  virtual void set_attention_path(AttentionPath) {}
  // The MoE layers' dispatcher (model/moe_dispatch.h): an all-to-all between expert-parallel
  // ranks (src/dist), or null for the local one (the default). Models without MoE ignore it.
  virtual void set_dispatcher(MoeDispatcher*) {}

 private:
  std::unique_ptr<ForwardActs> own_acts_;  // for the one-sequence calls
};

// The model for weights.config().arch. `weights` must outlive the model.
std::unique_ptr<Model> make_model(const ModelWeights& weights, ComputeContext ctx);

// Checks ids against the vocabulary and positions pos0 .. pos0 + T - 1 against the context.
void check_tokens(const ModelConfig& c, const int32_t* ids, int64_t T, int64_t pos0);

}  // namespace dsv3

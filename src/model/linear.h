// Every projection of the model goes through Linear: the one place where the precision policy, the
// input kept for the weight gradient and the three GEMMs of a Linear live (SPEC §3.1: Fprop, Dgrad
// and Wgrad are what the FP8 recipe quantizes; this file is its swap point).
//   forward          Y  = X·Wᵀ (+ b)     Fprop
//   backward_input   dX = dY·W           Dgrad
//   backward_weight  dW += dYᵀ·X, db += Σ_t dY   Wgrad (X: the input the caller kept)
// Precision (ComputeContext::precision, model.h):
//   Inference  Fprop and Dgrad through kernels.matmul / matmul_xw on the weight as stored
//              (F32/BF16/F16, FP8 blocks dequantised on the fly), FP32 activations and sums; rows
//              independent of the batch. Wgrad through kernels.gemm (FP32). With
//              ctx.fp8_native_gemm an E4M3 weight's Fprop is native instead: x quantized per 1x128
//              tile (act_quant), gemm_e4m3_1x128_128x128 with the checkpoint's block scales.
//   F32        all three GEMMs through kernels.gemm on the FP32 master weight.
//   BF16       all three through kernels.gemm_bf16: X, W and dY rounded to BF16 as each GEMM reads
//              them, products exact, sums FP32, outputs FP32. The backward is the gradient of the
//              forward computed (of bf16(X)·bf16(W)ᵀ: dX = bf16(dY)·bf16(W), dW +=
//              bf16(dY)ᵀ·bf16(X)), with dY rounded as well. Linears of kind Fp32 (the MoE gate,
//              SPEC §3.1: its scores pick the experts) use F32 instead. The LM heads follow the
//              precision: V3 keeps its output head in BF16 (SPEC §3.1 keeps it out of FP8 only),
//              and at a 16K vocabulary the head is half of the model's multiply-adds; the logits
//              and the loss stay FP32.
//   FP8        (TR §3.3) the three GEMMs in E4M3 (kernels/gemm_fp8.h), FP32 promotion every 128:
//              Fprop  X 1x128 tiles x W 128x128 blocks
//              Dgrad  dY 1x128 tiles x W 128x128 blocks (the same blocks, transposed)
//              Wgrad  dYᵀ x Xᵀ, K = tokens: dY and the cached X regrouped into 128x1 tiles
//              The cached X is the Fprop's FP8 input (re-quantizing x gives the same codes, so
//              the input is not stored twice); the attention output projection (kind AttnOut)
//              caches its input in E5M6 instead, and every scale of its input (Fprop, cache,
//              regrouping) is a power of two (TR §3.3.3), so regrouping adds no scale error. Kinds
//              KeepBf16 (LM heads, eh_proj) run BF16, Fp32 F32.
//              A caller may hand forward an Fp8InputCache: the Fprop's E4M3 tiles of x are then
//              kept there (TR §3.3.3's low-precision activation caching: 1 byte and a 128th of
//              a scale per element instead of 4), and backward_weight reads them instead of x,
//              the same codes, so the gradient is the same bits and x need not be kept.
//   FP8Tensor  FP8 with one scale per operand tensor instead of tiles and blocks.
//   Under both, ctx.fp8 (model.h) may leave GEMMs out (they run BF16) or the E5M6 cache off, for
//   ablations.
#pragma once
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "model/model.h"
#include "model/param_store.h"
#include "tensor/fp8_tiles.h"

namespace dsv3 {

// "f32" / "bf16" / "fp8" (the training precisions, as flags and configs spell them) and
// "fp8-tensor" (fp8 with --fp8-scaling tensor, as configs record it); throws Error otherwise.
Precision parse_train_precision(const std::string& s);
// p with `--fp8-scaling tile|tensor` applied (p itself when it is not FP8); throws Error for
// another scaling, or for tensor scaling with a precision that is not FP8.
Precision with_fp8_scaling(Precision p, const std::string& scaling);
const char* precision_name(Precision p);  // "inference", "f32", "bf16", "fp8", "fp8-tensor"
// r with `--fp8-gemms LIST` applied: the comma-separated GEMMs that run in FP8, of fprop, dgrad
// and wgrad (in any order, each at most once); throws Error for another word or an empty list.
Fp8Recipe with_fp8_gemms(Fp8Recipe r, const std::string& list);
// "fprop,dgrad,wgrad" or the part of it r keeps (as run.json records it; "none" for none).
std::string fp8_gemms_name(const Fp8Recipe& r);
// r with `--fp8-o-proj-cache e5m6|e4m3` applied; throws Error for another word.
Fp8Recipe with_fp8_o_proj_cache(Fp8Recipe r, const std::string& format);
bool is_fp8(Precision p);

// What a Linear is to the precision policy (see above).
enum class LinearKind : uint8_t { Default, Fp32, KeepBf16, AttnOut };

// Rows [row0, row0 + T) of `tiles` ([rows, in] in 1x128 E4M3 tiles, sized by forward): where a
// Linear's forward keeps its quantized input for the Wgrad. Several calls (a layer's experts,
// each its rows) may share one matrix.
struct Fp8InputCache {
  Fp8Tiles* tiles = nullptr;
  int64_t rows = 0;  // the matrix's rows (every call's row0 + T within them)
  int64_t row0 = 0;
};

class Linear;
// One forward of Linear::forward_batch: l->forward(ctx, x, T, y).
struct LinearCall {
  const Linear* l;
  const float* x;
  int64_t T;
  float* y;
};

class Linear {
 public:
  Linear() = default;
  // w: [out, in]; bias: [out] or null.
  explicit Linear(const Param& w, const Param* bias = nullptr,
                  LinearKind kind = LinearKind::Default)
      : w_(&w), b_(bias), kind_(kind) {}
  int64_t in() const { return w_->value.cols; }
  int64_t out() const { return w_->value.rows; }
  const Param& weight() const { return *w_; }

  // y [T, out] = x [T, in] · Wᵀ (+ b).
  void forward(ComputeContext ctx, const float* x, int64_t T, float* y) const;
  // The same, keeping x's Fprop tiles in `cache` when caches_input(ctx) (see above).
  void forward(ComputeContext ctx, const float* x, int64_t T, float* y, Fp8InputCache cache) const;
  // Whether forward under ctx is a plain matmul (plus bias): Inference precision, not the native
  // FP8 GEMM. Such forwards may run together in forward_batch.
  bool batches(ComputeContext ctx) const;
  // The calls' forwards (forward(ctx, x, T, y) each, the same results): where every Linear
  // batches(ctx), their matmuls as one Kernels::matmul_batch (projections sharing an input, a
  // MoE layer's experts: one hand-off over the pool at decode instead of one each), then the
  // biases; else one after another.
  static void forward_batch(ComputeContext ctx, const std::vector<LinearCall>& calls);
  // Whether forward keeps its input in an Fp8InputCache under ctx: the FP8 recipe with 1x128
  // tiles, this Linear's Wgrad in E4M3 (not the E5M6 o_proj cache).
  bool caches_input(ComputeContext ctx) const;
  // The attention output projection's E5M6 input cache (TR §3.3.3), which attention's backward
  // reads as well as this Wgrad: when this Linear keeps its input so under ctx (the FP8 recipe with
  // tiles, its Wgrad in FP8), x [T, in] is replaced by the cache's values (1x128 tiles,
  // power-of-two scales; rounding them again changes nothing), so every reader of the kept input
  // sees what the recipe stores. Returns whether it did.
  bool round_to_e5m6_cache(ComputeContext ctx, float* x, int64_t T) const;
  // dx [T, in] = dy [T, out] · W (overwrites dx).
  void backward_input(ComputeContext ctx, const float* dy, int64_t T, float* dx) const;
  // W.grad += dyᵀ · x, b.grad += Σ_t dy (x: the forward's input [T, in]).
  void backward_weight(ComputeContext ctx, const float* dy, const float* x, int64_t T) const;
  // The same from the input a forward kept in rows [row0, row0 + T) of x_tiles (caches_input).
  void backward_weight(ComputeContext ctx, const float* dy, const Fp8Tiles& x_tiles, int64_t row0,
                       int64_t T) const;

 private:
  // The FP8 Wgrad from the values of the cached input [T, in] (as FP8 holds them).
  void wgrad_fp8(ComputeContext ctx, const float* dy, const float* cached, int64_t T) const;
  using GemmFn = void (*)(const GemmArgs&, ThreadPool&);
  // The training GEMM for ctx when it is not FP8, after checking the weight is the FP32 master.
  GemmFn gemm(ComputeContext ctx) const;
  bool fp8(ComputeContext ctx) const;  // this Linear's GEMMs run in FP8 under ctx
  // Its Wgrad reads a low-precision copy of its input under ctx (the recipe with tiles): E4M3
  // tiles (caches_input) or, for the o_proj, E5M6 values (round_to_e5m6_cache).
  bool keeps_fp8_input(ComputeContext ctx) const;
  // Its input is cached in E5M6 with power-of-two scales (the o_proj input, unless
  // ctx.fp8.e5m6_o_proj is off).
  bool e5m6_cache(ComputeContext ctx) const;

  const Param* w_ = nullptr;
  const Param* b_ = nullptr;
  LinearKind kind_ = LinearKind::Default;
};

// ZeroBubble's B/W split (SPEC §4: a backward chunk's input gradients now, its weight gradients in
// a later W). With ComputeContext::wgrad set, backward_weight copies its dy and x here instead of
// running the Wgrad GEMM; run_oldest() later runs one backward pass's GEMMs in the order they were
// queued. Each weight then sums the same products in the same order as without the split, so the
// gradients are the same bits. Only the Linears' Wgrad is deferred: the RMSNorm weights' and the
// embedding's gradients stay in B (elementwise, cheap).
class WeightGradQueue {
 public:
  void open();  // starts the group of the next backward pass that defers
  void push(const Linear& lin, const float* dy, const float* x, int64_t T);
  void push(const Linear& lin, const float* dy, const Fp8Tiles& x_tiles, int64_t row0, int64_t T);
  void run_oldest(ComputeContext ctx);  // runs and drops the oldest group; ctx.wgrad is ignored
  size_t groups() const { return groups_.size(); }

 private:
  struct Gemm {
    const Linear* lin;
    std::vector<float> dy, x;
    Fp8Tiles xq;  // the input's cached tiles instead of x, when pushed so
    int64_t T;
  };
  std::deque<std::vector<Gemm>> groups_;
};

}  // namespace dsv3

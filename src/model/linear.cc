// Linear's three GEMMs and its precision policy (SPEC §3.1; see linear.h).
#include "model/linear.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "base/error.h"
#include "kernels/gemm_fp8.h"
#include "tensor/fp8_tiles.h"

namespace dsv3 {
namespace {

// The tiling of an FP8 operand [rows, cols] (K along cols) under p: tile_rows x 128 tiles, or
// one scale for the tensor.
struct Tiling {
  int64_t br, bc;
};
Tiling tiling(Precision p, int64_t rows, int64_t cols, int64_t tile_rows) {
  if (p == Precision::FP8Tensor) return {std::max<int64_t>(rows, 1), std::max<int64_t>(cols, 1)};
  return {tile_rows, 128};
}

// x [rows, cols] quantized as an activation (1x128 tiles) or a weight (128x128 blocks).
Fp8Tiles quantize(ComputeContext ctx, Precision p, const float* x, int64_t rows, int64_t cols,
                  int64_t tile_rows, bool pow2) {
  const Tiling t = tiling(p, rows, cols, tile_rows);
  Fp8Tiles q;
  quantize_e4m3_tiles(x, rows, cols, cols, t.br, t.bc, pow2, q, &ctx.pool);
  return q;
}

// Rows [row0, row0 + n) of a 1x128-tile matrix (codes and scales) copied out as their own.
Fp8Tiles rows_of_tiles(const Fp8Tiles& t, int64_t row0, int64_t n) {
  Fp8Tiles out{n, t.cols, 1, t.bc, {}, {}};
  const int64_t tc = t.tiles_c();
  out.q.assign(t.q.begin() + row0 * t.cols, t.q.begin() + (row0 + n) * t.cols);
  out.scale.assign(t.scale.begin() + row0 * tc, t.scale.begin() + (row0 + n) * tc);
  return out;
}

// t holds rows [row0, row0 + T) of a [rows, in] matrix in 1x128 tiles.
void check_cache(const Fp8Tiles& t, int64_t rows, int64_t row0, int64_t T, int64_t in) {
  DSV3_CHECK(row0 >= 0 && row0 + T <= rows,
             "Linear: the FP8 input cache's rows [" + std::to_string(row0) + ", " +
                 std::to_string(row0 + T) + ") are not within its " + std::to_string(rows));
  DSV3_CHECK(t.rows == rows && t.cols == in && t.br == 1 && t.bc == 128 &&
                 t.q.size() == static_cast<size_t>(rows * in) &&
                 t.scale.size() == static_cast<size_t>(rows * t.tiles_c()),
             "Linear: the FP8 input cache is not [" + std::to_string(rows) + ", " +
                 std::to_string(in) + "] in 1x128 tiles");
}

// x [T, n] regrouped for Wgrad: quantized in 128x1 tiles (128 tokens of a channel) and
// transposed into [n, T] with 1x128 tiles along K = tokens.
Fp8Tiles regroup_128x1(ComputeContext ctx, const float* x, int64_t T, int64_t n, bool pow2) {
  Fp8Tiles q;
  if (ctx.precision == Precision::FP8Tensor)
    quantize_e4m3_tiles(x, T, n, n, std::max<int64_t>(T, 1), std::max<int64_t>(n, 1), pow2, q,
                        &ctx.pool);
  else
    quantize_e4m3_tiles(x, T, n, n, 128, 1, pow2, q, &ctx.pool);
  return transpose_tiles(q);
}

}  // namespace

Precision parse_train_precision(const std::string& s) {
  if (s == "f32") return Precision::F32;
  if (s == "bf16") return Precision::BF16;
  if (s == "fp8") return Precision::FP8;
  if (s == "fp8-tensor") return Precision::FP8Tensor;
  throw Error("unknown precision '" + s + "'", "use f32, bf16 or fp8");
}

Precision with_fp8_scaling(Precision p, const std::string& scaling) {
  if (scaling == "tile") return p;
  DSV3_CHECK(scaling == "tensor", "unknown --fp8-scaling '" + scaling + "'", "use tile or tensor");
  DSV3_CHECK(is_fp8(p), "--fp8-scaling tensor needs --precision fp8");
  return Precision::FP8Tensor;
}

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::F32:
      return "f32";
    case Precision::BF16:
      return "bf16";
    case Precision::FP8:
      return "fp8";
    case Precision::FP8Tensor:
      return "fp8-tensor";
    default:
      return "inference";
  }
}

Fp8Recipe with_fp8_gemms(Fp8Recipe r, const std::string& list) {
  r.fprop = r.dgrad = r.wgrad = false;
  size_t at = 0;
  while (at <= list.size()) {
    const size_t end = std::min(list.find(',', at), list.size());
    const std::string word = list.substr(at, end - at);
    bool* gemm = word == "fprop"   ? &r.fprop
                 : word == "dgrad" ? &r.dgrad
                 : word == "wgrad" ? &r.wgrad
                                   : nullptr;
    DSV3_CHECK(gemm && !*gemm, "--fp8-gemms: '" + word + "' in '" + list + "'",
               "list each of fprop, dgrad, wgrad at most once, separated by commas");
    *gemm = true;
    at = end + 1;
  }
  return r;
}

std::string fp8_gemms_name(const Fp8Recipe& r) {
  std::string s;
  for (auto [on, name] : {std::pair{r.fprop, "fprop"}, {r.dgrad, "dgrad"}, {r.wgrad, "wgrad"}})
    if (on) {
      if (!s.empty()) s += ',';
      s += name;
    }
  return s.empty() ? "none" : s;
}

Fp8Recipe with_fp8_o_proj_cache(Fp8Recipe r, const std::string& format) {
  DSV3_CHECK(format == "e5m6" || format == "e4m3", "unknown --fp8-o-proj-cache '" + format + "'",
             "use e5m6 (the recipe) or e4m3");
  r.e5m6_o_proj = format == "e5m6";
  return r;
}

bool is_fp8(Precision p) {
  return p == Precision::FP8 || p == Precision::FP8Tensor;
}

bool Linear::fp8(ComputeContext ctx) const {
  return is_fp8(ctx.precision) && (kind_ == LinearKind::Default || kind_ == LinearKind::AttnOut);
}

bool Linear::e5m6_cache(ComputeContext ctx) const {
  return kind_ == LinearKind::AttnOut && ctx.fp8.e5m6_o_proj;
}

Linear::GemmFn Linear::gemm(ComputeContext ctx) const {
  DSV3_CHECK(w_->value.dtype == DType::F32,
             "Linear: " + w_->name() + " is not an FP32 master weight",
             "training GEMMs need ParamStore::enable_training()");
  const bool bf16 = ctx.precision == Precision::BF16 || is_fp8(ctx.precision);
  return bf16 && kind_ != LinearKind::Fp32 ? ctx.kernels.gemm_bf16 : ctx.kernels.gemm;
}

void Linear::forward(ComputeContext ctx, const float* x, int64_t T, float* y) const {
  forward(ctx, x, T, y, Fp8InputCache{});
}

bool Linear::keeps_fp8_input(ComputeContext ctx) const {
  return ctx.precision == Precision::FP8 && fp8(ctx) && ctx.fp8.wgrad;
}

bool Linear::caches_input(ComputeContext ctx) const {
  return keeps_fp8_input(ctx) && !e5m6_cache(ctx);
}

bool Linear::round_to_e5m6_cache(ComputeContext ctx, float* x, int64_t T) const {
  if (!keeps_fp8_input(ctx) || !e5m6_cache(ctx)) return false;
  fake_quantize(x, T, in(), 1, 128, MiniFloat::E5M6, true);
  return true;
}

namespace {
// Whether an inference forward runs w through the native E4M3 GEMM.
bool native_fp8(ComputeContext ctx, const WeightRef& w) {
  return ctx.precision == Precision::Inference && ctx.fp8_native_gemm &&
         w.dtype == DType::F8_E4M3 && w.block_rows == 128 && w.block_cols == 128 &&
         w.scale_row0 % 128 == 0;
}
}  // namespace

bool Linear::batches(ComputeContext ctx) const {
  return ctx.precision == Precision::Inference && !native_fp8(ctx, w_->value);
}

void Linear::forward_batch(ComputeContext ctx, const std::vector<LinearCall>& calls) {
  bool batch = true;
  for (const LinearCall& c : calls) batch = batch && c.l->batches(ctx);
  if (!batch) {
    for (const LinearCall& c : calls) c.l->forward(ctx, c.x, c.T, c.y);
    return;
  }
  std::vector<MatmulJob> jobs;
  jobs.reserve(calls.size());
  for (const LinearCall& c : calls) jobs.push_back({c.y, c.x, &c.l->w_->value, c.T});
  ctx.kernels.matmul_batch(jobs.data(), static_cast<int64_t>(jobs.size()), ctx.pool);
  for (const LinearCall& c : calls)
    if (c.l->b_) ctx.kernels.add_bias(c.y, c.l->b_->f32, c.T, c.l->out());
}

void Linear::forward(ComputeContext ctx, const float* x, int64_t T, float* y,
                     Fp8InputCache cache) const {
  const WeightRef& w = w_->value;
  Fp8Tiles xq;  // x's 1x128 tiles when the Fprop or the cache takes them
  const bool keep = cache.tiles && caches_input(ctx);
  if (keep) {
    Fp8Tiles& t = *cache.tiles;
    if (t.rows != cache.rows || t.cols != in() || t.br != 1 || t.bc != 128) {
      t = Fp8Tiles{cache.rows, in(), 1, 128, {}, {}};
      t.q.resize(static_cast<size_t>(cache.rows * in()));
      t.scale.resize(static_cast<size_t>(cache.rows * t.tiles_c()));
    }
    check_cache(t, cache.rows, cache.row0, T, in());
    xq = quantize(ctx, ctx.precision, x, T, in(), 1, false);
    std::copy(xq.q.begin(), xq.q.end(), t.q.begin() + cache.row0 * in());
    std::copy(xq.scale.begin(), xq.scale.end(), t.scale.begin() + cache.row0 * t.tiles_c());
  }
  if (native_fp8(ctx, w)) {
    const Fp8Tiles xq = quantize(ctx, Precision::FP8, x, T, in(), 1, false);
    const Fp8Matrix wq{static_cast<const uint8_t*>(w.data),
                       w.scale_inv + (w.scale_row0 / 128) * ((in() + 127) / 128),
                       out(),
                       in(),
                       128,
                       128};
    gemm_e4m3_1x128_128x128(ctx.kernels, xq.view(), wq, y, out(), false, ctx.pool);
  } else if (ctx.precision == Precision::Inference) {
    ctx.kernels.matmul(y, x, w, T, ctx.pool);
  } else if (fp8(ctx) && ctx.fp8.fprop) {
    gemm(ctx);  // checks the master weight
    if (!keep) xq = quantize(ctx, ctx.precision, x, T, in(), 1, e5m6_cache(ctx));
    const Fp8Tiles wq =
        quantize(ctx, ctx.precision, static_cast<const float*>(w.data), out(), in(), 128, false);
    gemm_e4m3(ctx.kernels, xq.view(), wq.view(), y, out(), false, ctx.pool);
  } else {
    const auto* wf = static_cast<const float*>(w.data);
    gemm(ctx)({T, out(), in(), x, in(), false, wf, in(), true, y, out(), false}, ctx.pool);
  }
  if (b_) ctx.kernels.add_bias(y, b_->f32, T, out());
}

void Linear::backward_input(ComputeContext ctx, const float* dy, int64_t T, float* dx) const {
  if (ctx.precision == Precision::Inference)
    return ctx.kernels.matmul_xw(dx, in(), dy, out(), w_->value, T, ctx.pool);
  const GemmFn fn = gemm(ctx);
  const auto* w = static_cast<const float*>(w_->value.data);
  if (!fp8(ctx) || !ctx.fp8.dgrad)
    return fn({T, in(), out(), dy, out(), false, w, in(), false, dx, in(), false}, ctx.pool);
  const Fp8Tiles dyq = quantize(ctx, ctx.precision, dy, T, out(), 1, false);
  // W's 128x128 blocks, transposed: the blocks of Wᵀ [in, out] with K = out along its rows.
  const Fp8Tiles wt = transpose_tiles(quantize(ctx, ctx.precision, w, out(), in(), 128, false));
  gemm_e4m3(ctx.kernels, dyq.view(), wt.view(), dx, in(), false, ctx.pool);
}

void Linear::backward_weight(ComputeContext ctx, const float* dy, const float* x, int64_t T) const {
  DSV3_CHECK(w_->grad, "Linear: " + w_->name() + " has no gradient",
             "call ParamStore::enable_training() before a backward pass");
  if (ctx.wgrad) {
    ctx.wgrad->push(*this, dy, x, T);
    return;
  }
  if (fp8(ctx) && ctx.fp8.wgrad) {
    // The input as the FP8 cache holds it: the Fprop's E4M3 tiles, or E5M6 (power-of-two
    // scales) for the attention output projection.
    const std::unique_ptr<float[]> cached(new float[T * in()]);  // fully written below
    if (e5m6_cache(ctx) && ctx.precision == Precision::FP8) {
      std::copy(x, x + T * in(), cached.get());
      fake_quantize(cached.get(), T, in(), 1, 128, MiniFloat::E5M6, true);
    } else {
      dequantize_e4m3_tiles(quantize(ctx, ctx.precision, x, T, in(), 1, e5m6_cache(ctx)),
                            cached.get());
    }
    wgrad_fp8(ctx, dy, cached.get(), T);
  } else {
    // Under Inference too: the weight gradient does not read the weight.
    const auto fn = ctx.precision == Precision::Inference ? ctx.kernels.gemm : gemm(ctx);
    fn({out(), in(), T, dy, out(), true, x, in(), false, w_->grad, in(), true}, ctx.pool);
  }
  if (b_) {
    DSV3_CHECK(b_->grad, "Linear: " + b_->name() + " has no gradient");
    for (int64_t t = 0; t < T; ++t) ctx.kernels.axpy(b_->grad, 1.0f, dy + t * out(), out());
  }
}

void Linear::backward_weight(ComputeContext ctx, const float* dy, const Fp8Tiles& x_tiles,
                             int64_t row0, int64_t T) const {
  DSV3_CHECK(caches_input(ctx),
             "Linear: " + w_->name() + " keeps no FP8 input under this precision",
             "pass the forward's input instead");
  check_cache(x_tiles, x_tiles.rows, row0, T, in());
  DSV3_CHECK(w_->grad, "Linear: " + w_->name() + " has no gradient",
             "call ParamStore::enable_training() before a backward pass");
  if (ctx.wgrad) {
    ctx.wgrad->push(*this, dy, x_tiles, row0, T);
    return;
  }
  const std::unique_ptr<float[]> cached(new float[T * in()]);  // fully written below
  dequantize_e4m3_tiles(rows_of_tiles(x_tiles, row0, T), cached.get());
  wgrad_fp8(ctx, dy, cached.get(), T);
  if (b_) {
    DSV3_CHECK(b_->grad, "Linear: " + b_->name() + " has no gradient");
    for (int64_t t = 0; t < T; ++t) ctx.kernels.axpy(b_->grad, 1.0f, dy + t * out(), out());
  }
}

void Linear::wgrad_fp8(ComputeContext ctx, const float* dy, const float* cached, int64_t T) const {
  const Fp8Tiles xt = regroup_128x1(ctx, cached, T, in(), e5m6_cache(ctx));
  const Fp8Tiles dyt = regroup_128x1(ctx, dy, T, out(), false);
  gemm_e4m3(ctx.kernels, dyt.view(), xt.view(), w_->grad, in(), true, ctx.pool);
}

void WeightGradQueue::open() {
  groups_.emplace_back();
}

void WeightGradQueue::push(const Linear& lin, const float* dy, const float* x, int64_t T) {
  DSV3_CHECK(!groups_.empty(), "WeightGradQueue: push before open");
  groups_.back().push_back({&lin,
                            std::vector<float>(dy, dy + T * lin.out()),
                            std::vector<float>(x, x + T * lin.in()),
                            {},
                            T});
}

void WeightGradQueue::push(const Linear& lin, const float* dy, const Fp8Tiles& x_tiles,
                           int64_t row0, int64_t T) {
  DSV3_CHECK(!groups_.empty(), "WeightGradQueue: push before open");
  groups_.back().push_back(
      {&lin, std::vector<float>(dy, dy + T * lin.out()), {}, rows_of_tiles(x_tiles, row0, T), T});
}

void WeightGradQueue::run_oldest(ComputeContext ctx) {
  DSV3_CHECK(!groups_.empty(), "WeightGradQueue: a W with no deferred backward");
  ctx.wgrad = nullptr;
  for (const Gemm& g : groups_.front()) {
    if (g.xq.q.empty())
      g.lin->backward_weight(ctx, g.dy.data(), g.x.data(), g.T);
    else
      g.lin->backward_weight(ctx, g.dy.data(), g.xq, 0, g.T);
  }
  groups_.pop_front();
}

}  // namespace dsv3

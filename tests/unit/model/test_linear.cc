// Linear's three GEMMs (model/linear.h) against float64 sums computed here, for F32 and BF16
// weights (the Inference precision) and the training precisions F32 and BF16, in the ref and the
// best kernel table. Tolerance: each output is a sum of n products accumulated in FP32, so
// |computed - exact| <= gamma_n * sum |terms| with gamma_n = n u / (1 - n u), u = 2^-24 (Higham,
// Accuracy and Stability, eq. 3.5); the test allows 2 gamma_n (the product rounding and the sum in
// any order) plus the rounding of the result itself.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/thread_pool.h"
#include "kernels/best_kernels.h"
#include "kernels/cpu/cpu.h"
#include "model/linear.h"
#include "tensor/convert.h"
#include "tensor/fp8_tiles.h"
#include "tensor/half.h"

namespace dsv3 {
namespace {

double gamma(int64_t n) {
  const double u = std::ldexp(1.0, -24);
  return n * u / (1 - n * u);
}

struct Case {
  int64_t T, out, in;
  DType dtype;
};

ParamSpec named(std::string name, Shape shape) {
  ParamSpec s;
  s.name = std::move(name);
  s.shape = std::move(shape);
  return s;
}

// A Linear [out, in] with bias, its weights as the kernels read them and as float64.
struct Fixture {
  explicit Fixture(const Case& c) : spec_w(named("w", {c.out, c.in})), spec_b(named("b", {c.out})) {
    std::mt19937 rng(static_cast<uint32_t>(c.T * 131 + c.out * 7 + c.in));
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> wf(c.out * c.in);
    for (float& v : wf) v = nd(rng);
    storage.resize(wf.size() * dtype_size(c.dtype));
    convert_from_f32(c.dtype, wf.data(), storage.data(), static_cast<int64_t>(wf.size()));
    w64.resize(wf.size());
    std::vector<float> back(wf.size());
    convert_to_f32(c.dtype, storage.data(), back.data(), static_cast<int64_t>(wf.size()));
    for (size_t i = 0; i < wf.size(); ++i) w64[i] = back[i];
    bias.resize(c.out);
    for (float& v : bias) v = nd(rng);
    w.spec = &spec_w;
    w.value = WeightRef{c.dtype, storage.data(), c.out, c.in};
    w.numel = c.out * c.in;
    wgrad.assign(w.numel, 0.25f);  // accumulates onto what is there
    w.grad = wgrad.data();
    b.spec = &spec_b;
    b.value = WeightRef{DType::F32, bias.data(), 1, c.out};
    b.f32 = bias.data();
    b.numel = c.out;
    bgrad.assign(c.out, -0.5f);
    b.grad = bgrad.data();
  }
  ParamSpec spec_w, spec_b;
  std::vector<unsigned char> storage;
  std::vector<double> w64;
  std::vector<float> bias, wgrad, bgrad;
  Param w, b;
};

std::vector<float> random_rows(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = nd(rng);
  return v;
}

// |got - want| <= 2 gamma_n * mag + u |want|, element by element.
void expect_close(const std::vector<float>& got, const std::vector<double>& want,
                  const std::vector<double>& mag, int64_t n, const char* what) {
  int bad = 0;
  for (size_t i = 0; i < got.size() && bad < 5; ++i) {
    const double tol = 2 * gamma(n) * mag[i] + std::ldexp(std::fabs(want[i]), -24);
    if (std::fabs(got[i] - want[i]) > tol) {
      ADD_FAILURE() << what << "[" << i << "] = " << got[i] << ", want " << want[i] << " ± " << tol;
      ++bad;
    }
  }
}

// `precision` F32 / BF16 need F32 weights; `fp32` builds the Linear as the MoE gate (F32 GEMMs
// whatever the precision). Under BF16 the float64 sums take the operands rounded to BF16, as the
// GEMMs do (products of BF16 values are exact in FP32, so the same FP32 bound holds).
void check(const Case& c, const Kernels& k, Precision precision = Precision::Inference,
           bool fp32 = false) {
  char trace[160];
  std::snprintf(trace, sizeof trace, "%s %s T=%lld out=%lld in=%lld precision %s%s", k.name,
                std::string(dtype_name(c.dtype)).c_str(), static_cast<long long>(c.T),
                static_cast<long long>(c.out), static_cast<long long>(c.in),
                precision_name(precision), fp32 ? " (fp32 Linear)" : "");
  SCOPED_TRACE(trace);
  ThreadPool pool(2);
  const ComputeContext ctx{k, pool, precision};
  Fixture f(c);
  const Linear lin(f.w, &f.b, fp32 ? LinearKind::Fp32 : LinearKind::Default);
  std::vector<float> x = random_rows(c.T * c.in, 1), dy = random_rows(c.T * c.out, 2);
  const std::vector<float> x_in = x, dy_in = dy;
  if (precision == Precision::BF16 && !fp32) {  // what the GEMMs multiply
    auto round = [](std::vector<float>& v) {
      for (float& e : v) e = bf16_to_f32(f32_to_bf16(e));
    };
    round(x), round(dy);
    for (double& w : f.w64) w = bf16_to_f32(f32_to_bf16(static_cast<float>(w)));
  }

  // Fprop: y = x Wᵀ + b. The AMX inference matmul rounds x to BF16 for BF16 weights
  // (kernels/cpu/cpu.h): then the float64 sums take the rounded x, and the FP32 bound holds.
  std::vector<float> y(c.T * c.out);
  lin.forward(ctx, x_in.data(), c.T, y.data());
  std::vector<float> xf = x;
  if (precision == Precision::Inference && c.dtype == DType::BF16 &&
      std::string(k.name) == cpu_kernels().name && cpu::matmul_rounds_bf16_activations())
    for (float& e : xf) e = bf16_to_f32(f32_to_bf16(e));
  std::vector<double> want(y.size()), mag(y.size());
  for (int64_t t = 0; t < c.T; ++t)
    for (int64_t o = 0; o < c.out; ++o) {
      double s = f.bias[o], m = std::fabs(f.bias[o]);
      for (int64_t i = 0; i < c.in; ++i) {
        s += xf[t * c.in + i] * f.w64[o * c.in + i];
        m += std::fabs(xf[t * c.in + i] * f.w64[o * c.in + i]);
      }
      want[t * c.out + o] = s;
      mag[t * c.out + o] = m;
    }
  expect_close(y, want, mag, c.in + 1, "y");

  // Dgrad: dx = dy W.
  std::vector<float> dx(c.T * c.in, 123.0f);  // overwritten
  lin.backward_input(ctx, dy_in.data(), c.T, dx.data());
  want.assign(dx.size(), 0);
  mag.assign(dx.size(), 0);
  for (int64_t t = 0; t < c.T; ++t)
    for (int64_t i = 0; i < c.in; ++i)
      for (int64_t o = 0; o < c.out; ++o) {
        want[t * c.in + i] += dy[t * c.out + o] * f.w64[o * c.in + i];
        mag[t * c.in + i] += std::fabs(dy[t * c.out + o] * f.w64[o * c.in + i]);
      }
  expect_close(dx, want, mag, c.out, "dx");

  // Wgrad: dW += dyᵀ x, db += Σ_t dy, onto the gradients already there.
  lin.backward_weight(ctx, dy_in.data(), x_in.data(), c.T);
  want.assign(f.wgrad.size(), 0.25);
  mag.assign(f.wgrad.size(), 0.25);
  for (int64_t o = 0; o < c.out; ++o)
    for (int64_t i = 0; i < c.in; ++i)
      for (int64_t t = 0; t < c.T; ++t) {
        want[o * c.in + i] += double(dy[t * c.out + o]) * x[t * c.in + i];
        mag[o * c.in + i] += std::fabs(double(dy[t * c.out + o]) * x[t * c.in + i]);
      }
  expect_close(f.wgrad, want, mag, c.T + 1, "dW");
  std::vector<double> want_b(c.out, -0.5), mag_b(c.out, 0.5);
  for (int64_t t = 0; t < c.T; ++t)
    for (int64_t o = 0; o < c.out; ++o) {  // the bias gradient sums dy unrounded
      want_b[o] += dy_in[t * c.out + o];
      mag_b[o] += std::fabs(dy_in[t * c.out + o]);
    }
  expect_close(f.bgrad, want_b, mag_b, c.T + 1, "db");
}

TEST(Linear, ThreeGemmsMatchFloat64) {
  const Case cases[] = {{1, 33, 70, DType::F32},
                        {5, 64, 128, DType::BF16},
                        {17, 40, 257, DType::F32},
                        {3, 130, 16, DType::BF16},
                        {64, 96, 200, DType::BF16}};
  for (const Case& c : cases) {
    check(c, ref_kernels());
    check(c, best_kernels());
  }
}

// The training precisions (the training GEMMs on an FP32 master weight), and a gate-like Linear
// that stays FP32 under BF16.
TEST(Linear, TrainingPrecisionsMatchFloat64) {
  const Case cases[] = {{1, 33, 70, DType::F32},
                        {17, 40, 257, DType::F32},
                        {64, 96, 200, DType::F32},
                        {130, 20, 48, DType::F32}};
  for (const Case& c : cases)
    for (const Kernels* k : {&ref_kernels(), &best_kernels()}) {
      check(c, *k, Precision::F32);
      check(c, *k, Precision::BF16);
      check(c, *k, Precision::BF16, /*fp32=*/true);
    }
}

TEST(Linear, TrainingPrecisionNeedsF32Master) {
  Case c{2, 4, 8, DType::BF16};
  Fixture f(c);
  ThreadPool pool(1);
  const Linear lin(f.w);
  std::vector<float> x(16), y(8);
  EXPECT_THROW(
      lin.forward(ComputeContext{ref_kernels(), pool, Precision::BF16}, x.data(), 2, y.data()),
      Error);
}

TEST(Linear, WeightGradientNeedsTraining) {
  Case c{2, 4, 8, DType::F32};
  Fixture f(c);
  f.w.grad = nullptr;
  ThreadPool pool(1);
  const Linear lin(f.w);
  std::vector<float> x(16), dy(8);
  EXPECT_THROW(lin.backward_weight(ComputeContext{ref_kernels(), pool}, dy.data(), x.data(), 2),
               Error);
}

}  // namespace
}  // namespace dsv3

namespace dsv3 {
namespace {

// x [r, c] replaced by the values of its E4M3 tile quantization (the quantizer itself is checked
// bit for bit against tests/ref/fp8_ref.py).
std::vector<double> fq(const std::vector<float>& x, int64_t r, int64_t c, int64_t br, int64_t bc,
                       bool pow2 = false) {
  Fp8Tiles t;
  quantize_e4m3_tiles(x.data(), r, c, c, br, bc, pow2, t);
  std::vector<float> v(x.size());
  dequantize_e4m3_tiles(t, v.data());
  return {v.begin(), v.end()};
}

// The FP8 recipe's plumbing (linear.h): which operand is tiled how in each of the three GEMMs,
// for tiles and per-tensor scales, and for the attention output projection (power-of-two scales
// on its input, cached in E5M6). The expected values are float64 sums of the fake-quantized
// operands; the GEMM sums in FP32 (promoted per 128), so the bound is gamma_n * Σ|terms| as above.
void check_fp8(Precision p, LinearKind kind) {
  SCOPED_TRACE(std::string(precision_name(p)) + (kind == LinearKind::AttnOut ? " o_proj" : ""));
  const Case c{130, 200, 300, DType::F32};
  ThreadPool pool(2);
  const ComputeContext ctx{best_kernels(), pool, p};
  Fixture f(c);
  const Linear lin(f.w, nullptr, kind);
  const bool tensor = p == Precision::FP8Tensor, attn = kind == LinearKind::AttnOut;
  const int64_t act = tensor ? c.T : 1;  // tile rows of an activation
  const std::vector<float> x = random_rows(c.T * c.in, 1), dy = random_rows(c.T * c.out, 2);
  const std::vector<float> w32(f.w64.begin(), f.w64.end());
  auto cols = [&](int64_t n) { return tensor ? n : 128; };
  const std::vector<double> xq = fq(x, c.T, c.in, act, cols(c.in), attn);
  const std::vector<double> wq = fq(w32, c.out, c.in, tensor ? c.out : 128, cols(c.in));
  const std::vector<double> dyq = fq(dy, c.T, c.out, act, cols(c.out));
  std::vector<float> cache(xq.begin(), xq.end());
  if (attn && !tensor) {
    cache = x;
    fake_quantize(cache.data(), c.T, c.in, 1, 128, MiniFloat::E5M6, true);
  }
  const std::vector<double> xr = fq(cache, c.T, c.in, tensor ? c.T : 128, tensor ? c.in : 1, attn);
  const std::vector<double> dyr = fq(dy, c.T, c.out, tensor ? c.T : 128, tensor ? c.out : 1);

  std::vector<float> y(c.T * c.out), dx(c.T * c.in);
  lin.forward(ctx, x.data(), c.T, y.data());
  lin.backward_input(ctx, dy.data(), c.T, dx.data());
  lin.backward_weight(ctx, dy.data(), x.data(), c.T);
  std::vector<double> want(y.size()), mag(y.size());
  for (int64_t t = 0; t < c.T; ++t)
    for (int64_t o = 0; o < c.out; ++o)
      for (int64_t i = 0; i < c.in; ++i) {
        want[t * c.out + o] += xq[t * c.in + i] * wq[o * c.in + i];
        mag[t * c.out + o] += std::fabs(xq[t * c.in + i] * wq[o * c.in + i]);
      }
  expect_close(y, want, mag, c.in + 2, "y");
  want.assign(dx.size(), 0), mag.assign(dx.size(), 0);
  for (int64_t t = 0; t < c.T; ++t)
    for (int64_t i = 0; i < c.in; ++i)
      for (int64_t o = 0; o < c.out; ++o) {
        want[t * c.in + i] += dyq[t * c.out + o] * wq[o * c.in + i];
        mag[t * c.in + i] += std::fabs(dyq[t * c.out + o] * wq[o * c.in + i]);
      }
  expect_close(dx, want, mag, c.out + 2, "dx");
  want.assign(f.wgrad.size(), 0.25), mag.assign(f.wgrad.size(), 0.25);
  for (int64_t o = 0; o < c.out; ++o)
    for (int64_t i = 0; i < c.in; ++i)
      for (int64_t t = 0; t < c.T; ++t) {
        want[o * c.in + i] += dyr[t * c.out + o] * xr[t * c.in + i];
        mag[o * c.in + i] += std::fabs(dyr[t * c.out + o] * xr[t * c.in + i]);
      }
  expect_close(f.wgrad, want, mag, c.T + 2, "dW");
}

TEST(Linear, Fp8RecipeTilesEachGemm) {
  for (Precision p : {Precision::FP8, Precision::FP8Tensor})
    for (LinearKind k : {LinearKind::Default, LinearKind::AttnOut}) check_fp8(p, k);
}

// The three GEMMs' outputs (y, dx, dW) of one Linear under ctx.
struct GemmOutputs {
  std::vector<float> y, dx, dw;
};
GemmOutputs run_gemms(ComputeContext ctx, LinearKind kind) {
  const Case c{130, 200, 300, DType::F32};
  Fixture f(c);
  const Linear lin(f.w, nullptr, kind);
  const std::vector<float> x = random_rows(c.T * c.in, 1), dy = random_rows(c.T * c.out, 2);
  GemmOutputs o{std::vector<float>(c.T * c.out), std::vector<float>(c.T * c.in), {}};
  lin.forward(ctx, x.data(), c.T, o.y.data());
  lin.backward_input(ctx, dy.data(), c.T, o.dx.data());
  lin.backward_weight(ctx, dy.data(), x.data(), c.T);
  o.dw = f.wgrad;
  return o;
}

// --fp8-gemms (ablations): a GEMM left out is the BF16 GEMM bit for bit, one kept is the
// recipe's bit for bit (check_fp8 checks the recipe against float64).
TEST(Linear, Fp8GemmsChooseEachGemm) {
  ThreadPool pool(2);
  const ComputeContext bf16{best_kernels(), pool, Precision::BF16};
  const ComputeContext fp8{best_kernels(), pool, Precision::FP8};
  const GemmOutputs b = run_gemms(bf16, LinearKind::Default);
  const GemmOutputs all = run_gemms(fp8, LinearKind::Default);
  EXPECT_NE(b.y, all.y);
  EXPECT_NE(b.dx, all.dx);
  EXPECT_NE(b.dw, all.dw);
  for (const char* list : {"fprop", "dgrad", "wgrad", "fprop,dgrad", "wgrad,fprop"}) {
    SCOPED_TRACE(list);
    ComputeContext ctx = fp8;
    ctx.fp8 = with_fp8_gemms(Fp8Recipe{}, list);
    const GemmOutputs o = run_gemms(ctx, LinearKind::Default);
    EXPECT_EQ(o.y, ctx.fp8.fprop ? all.y : b.y);
    EXPECT_EQ(o.dx, ctx.fp8.dgrad ? all.dx : b.dx);
    EXPECT_EQ(o.dw, ctx.fp8.wgrad ? all.dw : b.dw);
  }
  // Without the E5M6 cache the o_proj is any other Linear (E4M3, float32 scales).
  ComputeContext e4m3 = fp8;
  e4m3.fp8 = with_fp8_o_proj_cache(Fp8Recipe{}, "e4m3");
  const GemmOutputs o = run_gemms(e4m3, LinearKind::AttnOut);
  EXPECT_EQ(o.y, all.y);
  EXPECT_EQ(o.dw, all.dw);
  EXPECT_NE(run_gemms(fp8, LinearKind::AttnOut).dw, all.dw);
}

// Under the recipe a Linear keeps its input's Fprop tiles (TR §3.3.3's FP8 activation caching):
// the tiles are the quantizer's 1x128 tiles of x at the caller's rows, and the Wgrad read from
// them is the Wgrad from x itself bit for bit, also deferred through a WeightGradQueue.
TEST(Linear, Fp8CachedInputGivesTheSameWeightGradient) {
  ThreadPool pool(2);
  const Case c{130, 200, 300, DType::F32};
  const std::vector<float> x = random_rows(c.T * c.in, 1), dy = random_rows(c.T * c.out, 2),
                           other = random_rows(5 * c.in, 3);
  for (const char* list : {"fprop,dgrad,wgrad", "dgrad,wgrad"}) {
    SCOPED_TRACE(list);
    ComputeContext ctx{best_kernels(), pool, Precision::FP8};
    ctx.fp8 = with_fp8_gemms(Fp8Recipe{}, list);
    const GemmOutputs want = run_gemms(ctx, LinearKind::Default);
    Fixture f(c);
    const Linear lin(f.w);
    ASSERT_TRUE(lin.caches_input(ctx));
    Fp8Tiles cache;
    std::vector<float> y(c.T * c.out), y5(5 * c.out);
    lin.forward(ctx, other.data(), 5, y5.data(), {&cache, c.T + 5, 0});  // another call's rows
    lin.forward(ctx, x.data(), c.T, y.data(), {&cache, c.T + 5, 5});
    EXPECT_EQ(y, want.y);
    Fp8Tiles direct;
    quantize_e4m3_tiles(x.data(), c.T, c.in, c.in, 1, 128, false, direct);
    EXPECT_TRUE(std::equal(direct.q.begin(), direct.q.end(), cache.q.begin() + 5 * c.in));
    EXPECT_TRUE(std::equal(direct.scale.begin(), direct.scale.end(),
                           cache.scale.begin() + 5 * ((c.in + 127) / 128)));
    lin.backward_weight(ctx, dy.data(), cache, 5, c.T);
    EXPECT_EQ(f.wgrad, want.dw);
    EXPECT_THROW(lin.backward_weight(ctx, dy.data(), cache, 6, c.T), Error);  // past its rows
    // Deferred: the queue keeps the rows' tiles, so the cache may change meanwhile.
    f.wgrad.assign(f.wgrad.size(), 0.25f);
    WeightGradQueue q;
    q.open();
    ComputeContext deferred = ctx;
    deferred.wgrad = &q;
    lin.backward_weight(deferred, dy.data(), cache, 5, c.T);
    cache = Fp8Tiles{};
    q.run_oldest(ctx);
    EXPECT_EQ(f.wgrad, want.dw);
  }
  // No cache where the Wgrad does not read the input's E4M3 tiles.
  Fixture f(c);
  ComputeContext fp8{best_kernels(), pool, Precision::FP8};
  EXPECT_FALSE(Linear(f.w, nullptr, LinearKind::AttnOut).caches_input(fp8));  // E5M6
  EXPECT_FALSE(Linear(f.w, nullptr, LinearKind::KeepBf16).caches_input(fp8));
  EXPECT_FALSE(Linear(f.w, nullptr, LinearKind::Fp32).caches_input(fp8));
  for (Precision p : {Precision::FP8Tensor, Precision::BF16, Precision::F32})
    EXPECT_FALSE(Linear(f.w).caches_input({best_kernels(), pool, p}));
  fp8.fp8 = with_fp8_gemms(Fp8Recipe{}, "fprop,dgrad");
  EXPECT_FALSE(Linear(f.w).caches_input(fp8));
  Fp8Tiles none;
  EXPECT_THROW(Linear(f.w).backward_weight(fp8, dy.data(), none, 0, c.T), Error);
}

// The o_proj input kept as its E5M6 cache holds it (what attention's backward reads too): the
// values of the 1x128 power-of-two E5M6 tiles, and the Wgrad from them is the Wgrad from x bit
// for bit (rounding the cache's values again changes nothing); nothing is rounded where the
// Linear keeps no E5M6 cache.
TEST(Linear, Fp8E5m6CacheRoundsTheInputOnce) {
  ThreadPool pool(2);
  const Case c{130, 200, 300, DType::F32};
  const ComputeContext fp8{best_kernels(), pool, Precision::FP8};
  const GemmOutputs want = run_gemms(fp8, LinearKind::AttnOut);
  Fixture f(c);
  const Linear lin(f.w, nullptr, LinearKind::AttnOut);
  const std::vector<float> x = random_rows(c.T * c.in, 1), dy = random_rows(c.T * c.out, 2);
  std::vector<float> kept = x, e5m6 = x;
  fake_quantize(e5m6.data(), c.T, c.in, 1, 128, MiniFloat::E5M6, true);
  ASSERT_TRUE(lin.round_to_e5m6_cache(fp8, kept.data(), c.T));
  EXPECT_EQ(kept, e5m6);
  EXPECT_NE(kept, x);
  lin.backward_weight(fp8, dy.data(), kept.data(), c.T);
  EXPECT_EQ(f.wgrad, want.dw);
  std::vector<float> same = x;
  ComputeContext e4m3 = fp8, no_wgrad = fp8;
  e4m3.fp8 = with_fp8_o_proj_cache(Fp8Recipe{}, "e4m3");
  no_wgrad.fp8 = with_fp8_gemms(Fp8Recipe{}, "fprop,dgrad");
  for (const ComputeContext& ctx :
       {e4m3, no_wgrad, ComputeContext{best_kernels(), pool, Precision::FP8Tensor},
        ComputeContext{best_kernels(), pool, Precision::BF16}})
    EXPECT_FALSE(lin.round_to_e5m6_cache(ctx, same.data(), c.T));
  EXPECT_FALSE(Linear(f.w).round_to_e5m6_cache(fp8, same.data(), c.T));
  EXPECT_EQ(same, x);
}

TEST(Linear, Fp8GemmsListIsChecked) {
  EXPECT_EQ(fp8_gemms_name(with_fp8_gemms(Fp8Recipe{}, "wgrad,fprop")), "fprop,wgrad");
  EXPECT_EQ(fp8_gemms_name(Fp8Recipe{}), "fprop,dgrad,wgrad");
  for (const char* bad : {"", "fprop,", "fprop,fprop", "Fprop", "fprop dgrad"})
    EXPECT_THROW(with_fp8_gemms(Fp8Recipe{}, bad), Error) << bad;
  EXPECT_THROW(with_fp8_o_proj_cache(Fp8Recipe{}, "e5m2"), Error);
}

}  // namespace
}  // namespace dsv3

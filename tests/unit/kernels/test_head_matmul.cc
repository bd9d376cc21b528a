// The head-batched matmuls (matmul_heads, matmul_xw_heads) of every table this CPU runs: each
// head's outputs equal, bit for bit (memcmp), the same table's matmul / matmul_xw on that head's
// slice_rows, for every weight dtype, slices starting mid FP8 block, padded strides, T = 1, 3, 17
// and sizes on both sides of the 2^17 multiply-adds below which the AVX-512 kernels stay on the
// calling thread; plus a float64 check of the batched outputs with the summation-order bound.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "base/error.h"
#include "base/rng.h"
#include "base/thread_pool.h"
#include "kernels/best_kernels.h"
#include "kernels/cpu/cpu.h"
#include "kernels/kernels.h"
#include "unit/kernels/kernel_test_util.h"

namespace dsv3 {
namespace {

using test::gamma;
using test::kU;

struct HeadCase {
  int64_t n_heads, w_row0, w_head_stride, w_rows, cols;
};
// Heads whose slices start mid FP8 block and cross block edges (13, 63, 113 with 37 rows), odd
// column counts (a 16-lane tail, a partial 128-column block), and MLA-like heads (kv_b's key part
// at row 0, its value part at row 64 of each 96-row head) above the single-thread cutoff.
const HeadCase kCases[] = {
    {3, 13, 50, 37, 150}, {1, 5, 0, 20, 33}, {8, 0, 96, 64, 320}, {8, 64, 96, 32, 320}};

constexpr float kPad = -7.0f;  // what the padding of y must still hold

// For each T: x and y with padded head and row strides, the batched call, then every head alone
// through the plain op on its slice_rows (memcmp), and the float64 check. w.ref has at least
// c.w_row0 + (c.n_heads - 1) * c.w_head_stride + c.w_rows rows and c.cols columns.
void check_heads(const Kernels& k, const test::TestWeight& w, const HeadCase& c, ThreadPool& pool) {
  for (int64_t T : {1, 3, 17}) {
    const std::string where = std::string(k.name) + " heads " + std::to_string(c.n_heads) +
                              " row0 " + std::to_string(c.w_row0) + " T " + std::to_string(T);
    for (bool xw : {false, true}) {
      // matmul_heads: x_h [T, cols] -> y_h [T, w_rows]; matmul_xw_heads: x_h [T, w_rows] ->
      // y_h [T, cols].
      const int64_t in = xw ? c.w_rows : c.cols, out = xw ? c.cols : c.w_rows;
      HeadMatmulArgs a;
      a.w = &w.ref, a.n_heads = c.n_heads, a.w_row0 = c.w_row0;
      a.w_head_stride = c.w_head_stride, a.w_rows = c.w_rows, a.T = T;
      a.x_head_stride = in + 3, a.x_row_stride = c.n_heads * a.x_head_stride + 5;
      a.y_head_stride = out + 2, a.y_row_stride = c.n_heads * a.y_head_stride + 1;
      const auto x = test::randn(T * a.x_row_stride, 7 + in + T);
      std::vector<float> y(T * a.y_row_stride, kPad);
      a.x = x.data(), a.y = y.data();
      (xw ? k.matmul_xw_heads : k.matmul_heads)(a, pool);
      for (int64_t h = 0; h < c.n_heads; ++h) {
        const WeightRef wh = slice_rows(w.ref, c.w_row0 + h * c.w_head_stride, c.w_rows);
        std::vector<float> yh(T * out);
        if (xw) {
          k.matmul_xw(yh.data(), out, x.data() + h * a.x_head_stride, a.x_row_stride, wh, T, pool);
        } else {  // matmul reads packed rows of x
          std::vector<float> xh(T * in);
          for (int64_t t = 0; t < T; ++t)
            std::memcpy(&xh[t * in], &x[t * a.x_row_stride + h * a.x_head_stride],
                        in * sizeof(float));
          k.matmul(yh.data(), xh.data(), wh, T, pool);
        }
        for (int64_t t = 0; t < T; ++t) {
          const float* yt = &y[t * a.y_row_stride + h * a.y_head_stride];
          ASSERT_EQ(std::memcmp(yt, &yh[t * out], out * sizeof(float)), 0)
              << where << (xw ? " matmul_xw_heads" : " matmul_heads") << " head " << h << " t "
              << t;
          for (int64_t j = out; j < a.y_head_stride; ++j)
            ASSERT_EQ(yt[j], kPad) << where << " padding written, head " << h;
          // float64 from the dequantised weight: one reordered sum of `in` products, then stored
          // as float32 (u |y|).
          // The AMX matmul rounds x to BF16 first for BF16 weights: the float64 sum takes the
          // same rounded x (test_cpu_kernels.cc bounds the rounding itself).
          const bool rounds = !xw && w.ref.dtype == DType::BF16 &&
                              std::string(k.name) == cpu_kernels().name &&
                              cpu::matmul_rounds_bf16_activations();
          const float* xt = &x[t * a.x_row_stride + h * a.x_head_stride];
          for (int64_t j = 0; j < out; ++j) {
            double exact = 0, abs_sum = 0;
            for (int64_t i = 0; i < in; ++i) {
              const int64_t r = c.w_row0 + h * c.w_head_stride + (xw ? i : j);
              const double p = double(rounds ? test::round_bf16(xt[i]) : xt[i]) *
                               w.value[r * c.cols + (xw ? j : i)];
              exact += p;
              abs_sum += std::fabs(p);
            }
            ASSERT_NEAR(yt[j], exact, gamma(in) * abs_sum + kU * std::fabs(exact))
                << where << " head " << h << " t " << t << " j " << j;
          }
        }
      }
    }
  }
}

class HeadMatmul : public ::testing::TestWithParam<std::tuple<std::string, DType>> {};

TEST_P(HeadMatmul, EachHeadEqualsTheMatmulOfItsSliceBitForBit) {
  const auto& [name, dt] = GetParam();
  const Kernels* k = test::table(name);
  if (k == nullptr) GTEST_SKIP() << "no AVX-512 F/BW/VL on this CPU";
  ThreadPool pool(3);
  for (const HeadCase& c : kCases) {
    const int64_t rows = c.w_row0 + (c.n_heads - 1) * c.w_head_stride + c.w_rows + 3;
    const test::TestWeight w = test::make_weight(dt, rows, c.cols, 100 + c.cols + c.w_rows);
    check_heads(*k, w, c, pool);
    if (HasFatalFailure()) return;
  }
}

// FP8 scale blocks other than 128 x 128: 32 x 48 (read in place by the AVX-512 kernels) and
// 32 x 40 (not a multiple of 16 columns: their reference fallback), heads starting mid block.
TEST(HeadMatmulFp8, OtherBlockShapes) {
  ThreadPool pool(2);
  for (const std::string name : {"ref", "cpu"}) {
    const Kernels* k = test::table(name);
    if (k == nullptr) continue;
    for (int64_t bc : {48, 40}) {
      const HeadCase c = {4, 7, 41, 30, 150};
      const int64_t rows = 7 + 3 * 41 + 30, br = 32;
      test::TestWeight w = test::make_weight(DType::F8_E4M3, rows, c.cols, 50 + bc);
      w.scale.resize(((rows + br - 1) / br) * ((c.cols + bc - 1) / bc));
      Rng r(bc);
      for (auto& s : w.scale) s = static_cast<float>(0.01 + r.uniform());
      w.ref.scale_inv = w.scale.data();
      w.ref.block_rows = br, w.ref.block_cols = bc;
      weight_block_f32(w.ref, 0, rows, 0, c.cols, w.value.data());
      check_heads(*k, w, c, pool);
      if (HasFatalFailure()) return;
    }
  }
}

TEST_P(HeadMatmul, HeadsPastTheWeightAreAnError) {
  const auto& [name, dt] = GetParam();
  const Kernels* k = test::table(name);
  if (k == nullptr) GTEST_SKIP() << "no AVX-512 F/BW/VL on this CPU";
  ThreadPool pool(1);
  const test::TestWeight w = test::make_weight(dt, 10, 16, 1);
  std::vector<float> x(64), y(64);
  HeadMatmulArgs a;
  a.w = &w.ref, a.n_heads = 3, a.w_row0 = 1, a.w_head_stride = 3, a.w_rows = 4, a.T = 1;
  a.x = x.data(), a.y = y.data(), a.x_head_stride = 16, a.y_head_stride = 16;
  EXPECT_THROW(k->matmul_heads(a, pool), Error);  // rows 7..10 of 10
  EXPECT_THROW(k->matmul_xw_heads(a, pool), Error);
  a.w_row0 = 0;  // rows 6..9: inside
  EXPECT_NO_THROW(k->matmul_heads(a, pool));
  EXPECT_NO_THROW(k->matmul_xw_heads(a, pool));
}

INSTANTIATE_TEST_SUITE_P(TablesAndDtypes, HeadMatmul,
                         ::testing::Combine(::testing::Values("ref", "cpu"),
                                            ::testing::Values(DType::F32, DType::BF16, DType::F16,
                                                              DType::F8_E4M3)),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_" +
                                  std::string(dtype_name(std::get<1>(info.param)));
                         });

}  // namespace
}  // namespace dsv3

// The reference kernels against straightforward double-precision computations written here.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "base/error.h"
#include "base/rng.h"
#include "base/thread_pool.h"
#include "kernels/kernels.h"
#include "tensor/half.h"
#include "test_util.h"

namespace dsv3 {
namespace {

const Kernels& K = ref_kernels();

std::vector<float> randn(size_t n, uint64_t seed, double scale = 1.0) {
  Rng r(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(r.normal(0, scale));
  return v;
}

// E4M3FN decoded from its fields (independent of tensor/fp8.cc).
double e4m3_value(uint8_t c) {
  const int s = c >> 7, e = (c >> 3) & 15, m = c & 7;
  double v = e == 0 ? m / 8.0 * std::ldexp(1.0, -6) : (1 + m / 8.0) * std::ldexp(1.0, e - 7);
  return s ? -v : v;
}

// A weight of `rows` x `cols` in `dt` with its exact float64 values.
struct TestWeight {
  std::vector<unsigned char> data;
  std::vector<float> scale;
  std::vector<double> value;  // the dequantised weight, row-major
  WeightRef ref;
};

TestWeight make_weight(DType dt, int64_t rows, int64_t cols, uint64_t seed) {
  TestWeight w;
  Rng r(seed);
  const int64_t n = rows * cols;
  w.data.resize(n * dtype_size(dt));
  w.value.resize(n);
  const int64_t br = (rows + 127) / 128, bc = (cols + 127) / 128;
  if (dt == DType::F8_E4M3) {
    w.scale.resize(br * bc);
    for (auto& s : w.scale) s = static_cast<float>(0.001 + r.uniform() * 0.01);
  }
  for (int64_t i = 0; i < n; ++i) {
    const float x = static_cast<float>(r.normal());
    if (dt == DType::F32) {
      std::memcpy(&w.data[i * 4], &x, 4);
      w.value[i] = x;
    } else if (dt == DType::BF16) {
      uint32_t bits;
      std::memcpy(&bits, &x, 4);
      const uint16_t h = static_cast<uint16_t>(bits >> 16);  // truncation: any bf16 will do
      std::memcpy(&w.data[i * 2], &h, 2);
      const uint32_t back = static_cast<uint32_t>(h) << 16;
      float f;
      std::memcpy(&f, &back, 4);
      w.value[i] = f;
    } else if (dt == DType::F16) {
      const uint16_t h = f32_to_f16(x);
      std::memcpy(&w.data[i * 2], &h, 2);
      w.value[i] = f16_to_f32(h);
    } else {  // F8_E4M3: any code but NaN
      uint8_t c = static_cast<uint8_t>(r.below(256));
      if ((c & 0x7f) == 0x7f) c = 0;
      w.data[i] = c;
      const int64_t row = i / cols, col = i % cols;
      // The kernel multiplies in float32: q * s rounded once.
      w.value[i] = static_cast<float>(static_cast<float>(e4m3_value(c)) *
                                      w.scale[(row / 128) * bc + col / 128]);
    }
  }
  w.ref = WeightRef{dt, w.data.data(), rows, cols, w.scale.empty() ? nullptr : w.scale.data()};
  return w;
}

// FP32 accumulation of K products: |error| <= K * 2^-24 * sum |x_i w_i| (the standard bound
// gamma_K, with K * u << 1) plus the final rounding; 2x margin.
double matmul_bound(int64_t k, double abs_sum) {
  return 2.0 * (k + 1) * std::ldexp(1.0, -24) * abs_sum;
}

class MatmulTest : public ::testing::TestWithParam<DType> {};

TEST_P(MatmulTest, MatchesDoubleOnEveryStorageDtype) {
  const int64_t T = 3, rows = 200, cols = 300;  // 2 x 3 FP8 blocks, both with partial edges
  TestWeight w = make_weight(GetParam(), rows, cols, 7);
  auto x = randn(T * cols, 8);
  std::vector<float> y(T * rows);
  ThreadPool pool(2);
  K.matmul(y.data(), x.data(), w.ref, T, pool);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t r = 0; r < rows; ++r) {
      double ref = 0, abs_sum = 0;
      for (int64_t j = 0; j < cols; ++j) {
        ref += x[t * cols + j] * w.value[r * cols + j];
        abs_sum += std::fabs(x[t * cols + j] * w.value[r * cols + j]);
      }
      ASSERT_NEAR(y[t * rows + r], ref, matmul_bound(cols, abs_sum)) << "t " << t << " r " << r;
    }
}

TEST_P(MatmulTest, MatmulXwAndRowSlicesMatchDouble) {
  const int64_t T = 2, rows = 150, cols = 140;
  TestWeight w = make_weight(GetParam(), rows, cols, 11);
  ThreadPool pool(2);
  // y = x · w with strided rows.
  const int64_t xs = rows + 3, ys = cols + 5;
  auto x = randn(T * xs, 12);
  std::vector<float> y(T * ys, -1.0f);
  K.matmul_xw(y.data(), ys, x.data(), xs, w.ref, T, pool);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t c = 0; c < cols; ++c) {
      double ref = 0, abs_sum = 0;
      for (int64_t r = 0; r < rows; ++r) {
        ref += x[t * xs + r] * w.value[r * cols + c];
        abs_sum += std::fabs(x[t * xs + r] * w.value[r * cols + c]);
      }
      ASSERT_NEAR(y[t * ys + c], ref, matmul_bound(rows, abs_sum));
    }
  // A slice starting mid-block keeps its rows' block scales.
  const int64_t r0 = 100, n = 40;
  auto x2 = randn(cols, 13);
  std::vector<float> y_full(rows), y_slice(n);
  K.matmul(y_full.data(), x2.data(), w.ref, 1, pool);
  K.matmul(y_slice.data(), x2.data(), slice_rows(w.ref, r0, n), 1, pool);
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(y_slice[i], y_full[r0 + i]);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, MatmulTest,
                         ::testing::Values(DType::F32, DType::BF16, DType::F16, DType::F8_E4M3));

TEST(Kernels, Fp8WithoutScaleIsAnError) {
  TestWeight w = make_weight(DType::F8_E4M3, 4, 4, 1);
  w.ref.scale_inv = nullptr;
  std::vector<float> out(16);
  EXPECT_THROW(weight_block_f32(w.ref, 0, 4, 0, 4, out.data()), Error);
}

TEST(Kernels, RmsNormMatchesDouble) {
  const int64_t T = 3, n = 37, stride = 41;
  auto x = randn(T * stride, 3, 2.0);
  auto g = randn(n, 4);
  std::vector<float> y(T * stride);
  K.rmsnorm(y.data(), stride, x.data(), stride, g.data(), T, n, 1e-6f);
  for (int64_t t = 0; t < T; ++t) {
    double ss = 0;
    for (int64_t i = 0; i < n; ++i) ss += double(x[t * stride + i]) * x[t * stride + i];
    const double r = 1.0 / std::sqrt(ss / n + 1e-6);
    std::vector<double> ref(n);
    for (int64_t i = 0; i < n; ++i) ref[i] = x[t * stride + i] * r * g[i];
    // Two float32 multiplications after an exact-enough scale: a few ulps.
    EXPECT_TRUE(test::all_close(y.data() + t * stride, ref.data(), n, {1e-6, 1e-6}, "few ulps"));
  }
}

TEST(Kernels, RopeLayoutsRotatePairsByTheirAngle) {
  const int64_t T = 2, H = 3, dim = 8, half = dim / 2, stride = H * dim + 2;
  auto x = randn(T * stride, 5);
  std::vector<float> cos(T * half), sin(T * half);
  for (int64_t i = 0; i < T * half; ++i) {
    cos[i] = static_cast<float>(std::cos(0.3 * i + 0.1));
    sin[i] = static_cast<float>(std::sin(0.3 * i + 0.1));
  }
  for (bool interleaved : {true, false}) {
    std::vector<float> y = x;
    (interleaved ? K.rope_interleaved : K.rope_half)(y.data(), T, H, stride, dim, dim, cos.data(),
                                                     sin.data());
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t i = 0; i < half; ++i) {
          const int64_t a = t * stride + h * dim + (interleaved ? 2 * i : i);
          const int64_t b = interleaved ? a + 1 : a + half;
          // (x_a + i x_b) * e^{i angle}
          const double re = double(x[a]) * cos[t * half + i] - double(x[b]) * sin[t * half + i];
          const double im = double(x[b]) * cos[t * half + i] + double(x[a]) * sin[t * half + i];
          EXPECT_NEAR(y[a], re, 1e-6);
          EXPECT_NEAR(y[b], im, 1e-6);
        }
    for (int64_t t = 0; t < T; ++t)  // the padding after the heads is untouched
      for (int64_t j = H * dim; j < stride; ++j) EXPECT_EQ(y[t * stride + j], x[t * stride + j]);
  }
}

TEST(Kernels, SoftmaxSigmoidSwiglu) {
  auto x = randn(2 * 9, 6, 3.0);
  std::vector<float> s = x;
  K.softmax(s.data(), 2, 9);
  for (int t = 0; t < 2; ++t) {
    double m = -1e300, sum = 0;
    for (int i = 0; i < 9; ++i) m = std::max(m, double(x[t * 9 + i]));
    for (int i = 0; i < 9; ++i) sum += std::exp(x[t * 9 + i] - m);
    for (int i = 0; i < 9; ++i) EXPECT_NEAR(s[t * 9 + i], std::exp(x[t * 9 + i] - m) / sum, 1e-7);
  }
  std::vector<float> g = x, sg = x;
  auto up = randn(18, 9);
  K.sigmoid(sg.data(), 18);
  K.swiglu(g.data(), up.data(), 18);
  for (int i = 0; i < 18; ++i) {
    const double sig = 1.0 / (1.0 + std::exp(-double(x[i])));
    EXPECT_NEAR(sg[i], sig, 1e-7);
    EXPECT_NEAR(g[i], x[i] * sig * up[i], 1e-6 * (1 + std::fabs(x[i] * up[i])));
  }
}

TEST(Kernels, TopkOrdersLargestFirstWithLowerIndexOnTies) {
  const float x[] = {1.0f, 3.0f, -INFINITY, 3.0f, 2.0f, 0.5f};
  int32_t idx[4];
  K.topk(idx, x, 6, 4);
  EXPECT_EQ(idx[0], 1);
  EXPECT_EQ(idx[1], 3);
  EXPECT_EQ(idx[2], 4);
  EXPECT_EQ(idx[3], 0);
}

TEST(Kernels, AttentionMatchesDoubleWithGqaAndCache) {
  // 4 query heads over 2 K/V heads; 3 new rows at positions 4..6 of a 7-position cache; strided.
  AttentionArgs a;
  a.T = 3;
  a.S = 7;
  a.n_heads = 4;
  a.n_kv_heads = 2;
  a.dk = 5;
  a.dv = 6;
  a.scale = 0.4f;
  auto q = randn(a.T * 30, 21), k = randn(a.S * 12, 22), v = randn(a.S * 14, 23);
  std::vector<float> out(a.T * 4 * 7, 0.0f);
  a.q = q.data();
  a.q_row_stride = 30;
  a.q_head_stride = 7;
  a.k = k.data();
  a.k_row_stride = 12;
  a.k_head_stride = 6;
  a.v = v.data();
  a.v_row_stride = 14;
  a.v_head_stride = 7;
  a.out = out.data();
  a.out_row_stride = 28;
  a.out_head_stride = 7;
  ThreadPool pool(2);
  K.attention(a, pool);
  // With the log-sum-exp asked for, the outputs stay exactly the same.
  std::vector<float> lse(a.T * a.n_heads), out_lse(out.size());
  a.out = out_lse.data(), a.lse = lse.data();
  K.attention(a, pool);
  ASSERT_EQ(std::memcmp(out_lse.data(), out.data(), out.size() * sizeof(float)), 0);
  for (int64_t t = 0; t < a.T; ++t)
    for (int64_t h = 0; h < a.n_heads; ++h) {
      const int64_t g = h / 2, n_keys = a.S - a.T + t + 1;
      std::vector<double> p(n_keys);
      double m = -1e300, sum = 0;
      for (int64_t s = 0; s < n_keys; ++s) {
        double d = 0;
        for (int64_t j = 0; j < a.dk; ++j)
          d += double(q[t * 30 + h * 7 + j]) * k[s * 12 + g * 6 + j];
        p[s] = d * a.scale;
        m = std::max(m, p[s]);
      }
      for (auto& e : p) sum += (e = std::exp(e - m));
      // Same float32 error sources as the outputs below, on a value of O(1): ~1e-6 absolute.
      EXPECT_NEAR(lse[t * a.n_heads + h], m + std::log(sum), 1e-5) << "lse t " << t << " h " << h;
      for (int64_t j = 0; j < a.dv; ++j) {
        double o = 0;
        for (int64_t s = 0; s < n_keys; ++s) o += p[s] / sum * v[s * 14 + g * 7 + j];
        // float32 scores, exp and sums over <= 7 terms of O(1) values: ~1e-6 absolute.
        EXPECT_NEAR(out[t * 28 + h * 7 + j], o, 1e-5);
      }
    }
}

}  // namespace
}  // namespace dsv3

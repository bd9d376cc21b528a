// FP8 block scaling (SPEC §3.2, RELIABILITY §4) against a reference written here: amax in double,
// scale_inv = amax/448, codes by nearest-value search over the E4M3 table (not the library's
// encoder). Edge tiles, zero blocks, NaN/Inf inputs, and the scale validator.
#include "tensor/block_scale.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "base/error.h"
#include "float_format_ref.h"

namespace dsv3 {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<double> e4m3_positive() {  // values of codes 0x00..0x7E
  std::vector<double> v;
  for (uint32_t c = 0; c <= 0x7E; ++c) v.push_back(test::bitfield_value(c, 4, 3, 7));
  return v;
}

uint8_t ref_code(float y, const std::vector<double>& pos) {
  if (std::isnan(y)) return std::signbit(y) ? 0xFF : 0x7F;
  const uint32_t sign = std::signbit(y) ? 0x80 : 0;
  if (std::isinf(y)) return static_cast<uint8_t>(sign | 0x7E);
  return static_cast<uint8_t>(sign | test::nearest_code(y, pos));
}

// Reference quantization of row-major [rows, cols] with tiles of th x tw.
struct RefQuant {
  std::vector<uint8_t> q;
  std::vector<float> scale;
};
RefQuant ref_quantize(const std::vector<float>& x, int64_t rows, int64_t cols, int64_t th,
                      int64_t tw) {
  const auto pos = e4m3_positive();
  const int64_t br = (rows + th - 1) / th, bc = (cols + tw - 1) / tw;
  RefQuant r{std::vector<uint8_t>(x.size()), std::vector<float>(static_cast<size_t>(br * bc))};
  for (int64_t bi = 0; bi < br; ++bi)
    for (int64_t bj = 0; bj < bc; ++bj) {
      double amax = 1e-4f;  // the floor, as the f32 constant
      for (int64_t i = bi * th; i < std::min(rows, (bi + 1) * th); ++i)
        for (int64_t j = bj * tw; j < std::min(cols, (bj + 1) * tw); ++j)
          if (std::isfinite(x[i * cols + j]))
            amax = std::max(amax, std::fabs(double(x[i * cols + j])));
      // float(amax/448) computed in double is the correctly rounded f32 quotient.
      r.scale[bi * bc + bj] = static_cast<float>(amax / 448.0);
      const float mult = static_cast<float>(448.0 / amax);
      for (int64_t i = bi * th; i < std::min(rows, (bi + 1) * th); ++i)
        for (int64_t j = bj * tw; j < std::min(cols, (bj + 1) * tw); ++j)
          r.q[i * cols + j] = ref_code(x[i * cols + j] * mult, pos);
    }
  return r;
}

// Values whose magnitude differs per 64x64 region, so neighbouring blocks get different scales.
std::vector<float> sample(int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(rows * cols));
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j)
      x[i * cols + j] =
          d(rng) * std::ldexp(1.0f, static_cast<int>((i / 64 + 3 * (j / 64)) % 9) - 4);
  return x;
}

TEST(BlockScale, ScaleShape) {
  EXPECT_EQ(scale_shape_128x128(576, 7168), (Shape{5, 56}));  // kv_a_proj_with_mqa (SPEC §3.2)
  EXPECT_EQ(scale_shape_128x128(128, 129), (Shape{1, 2}));
  EXPECT_EQ(scale_shape_128x128(0, 5), (Shape{0, 1}));
}

TEST(BlockScale, Quantize128x128MatchesReferenceWithEdgeTiles) {
  for (auto [rows, cols] :
       {std::pair<int64_t, int64_t>{300, 200}, {128, 256}, {1, 1}, {129, 127}}) {
    const auto x = sample(rows, cols, static_cast<uint32_t>(rows * 1000 + cols));
    const Shape ss = scale_shape_128x128(rows, cols);
    std::vector<uint8_t> q(x.size());
    std::vector<float> s(static_cast<size_t>(ss[0] * ss[1]));
    quantize_e4m3_128x128(x.data(), rows, cols, q.data(), s.data());
    const auto ref = ref_quantize(x, rows, cols, 128, 128);
    ASSERT_EQ(s, ref.scale) << rows << "x" << cols;
    ASSERT_EQ(q, ref.q) << rows << "x" << cols;
    validate_scale_inv(s.data(), static_cast<int64_t>(s.size()), "w.weight_scale_inv");

    // Dequantization is exactly code value * block scale; the round trip is within E4M3's
    // half-ulp: 2^-4 relative for normals, 2^-10 * scale_inv absolute in the subnormal range.
    std::vector<float> y(x.size());
    dequant_e4m3_128x128(q.data(), s.data(), rows, cols, y.data());
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) {
        const size_t k = static_cast<size_t>(i * cols + j);
        const float si = s[(i / 128) * ss[1] + j / 128];
        ASSERT_EQ(y[k], static_cast<float>(test::bitfield_value(q[k], 4, 3, 7)) * si);
        ASSERT_LE(std::fabs(y[k] - x[k]),
                  std::ldexp(std::fabs(x[k]), -4) * 1.0001f + std::ldexp(si, -10))
            << i << "," << j;
      }
  }
}

TEST(BlockScale, Quantize1x128MatchesReference) {
  const int64_t rows = 5, cols = 300;
  const auto x = sample(rows, cols, 5);
  std::vector<uint8_t> q(x.size());
  std::vector<float> s(static_cast<size_t>(rows * 3));
  quantize_e4m3_1x128(x.data(), rows, cols, q.data(), s.data());
  const auto ref = ref_quantize(x, rows, cols, 1, 128);
  EXPECT_EQ(s, ref.scale);
  EXPECT_EQ(q, ref.q);
  std::vector<float> y(x.size());
  dequant_e4m3_1x128(q.data(), s.data(), rows, cols, y.data());
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j)
      ASSERT_EQ(
          y[i * cols + j],
          static_cast<float>(test::bitfield_value(q[i * cols + j], 4, 3, 7)) * s[i * 3 + j / 128]);
}

TEST(BlockScale, ZeroAndTinyBlocksGetFiniteScale) {
  std::vector<float> x(130 * 130, 0.0f);
  x[0] = 1e-30f;  // tiny, below the floor
  std::vector<uint8_t> q(x.size());
  std::vector<float> s(4);
  quantize_e4m3_128x128(x.data(), 130, 130, q.data(), s.data());
  for (float v : s) EXPECT_EQ(v, 1e-4f / 448.0f);
  validate_scale_inv(s.data(), 4, "zero.weight_scale_inv");
  for (size_t i = 1; i < q.size(); ++i) ASSERT_EQ(q[i], 0) << i;
}

TEST(BlockScale, NaNStaysNaNAndInfSaturates) {
  std::vector<float> x(4 * 256);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 7) - 3.0f;
  x[5] = kNaN;
  x[300] = kInf;
  x[301] = -kInf;
  std::vector<uint8_t> q(x.size());
  std::vector<float> s(2);
  quantize_e4m3_128x128(x.data(), 4, 256, q.data(), s.data());
  EXPECT_EQ(s[0], 3.0f / 448.0f);  // non-finite values do not enter amax
  EXPECT_EQ(s[1], 3.0f / 448.0f);
  EXPECT_EQ(q[5] & 0x7F, 0x7F);
  EXPECT_EQ(q[300], 0x7E);
  EXPECT_EQ(q[301], 0xFE);
  EXPECT_EQ(q[3], 0x00);  // 0.0
  std::vector<float> y(x.size());
  dequant_e4m3_128x128(q.data(), s.data(), 4, 256, y.data());
  EXPECT_TRUE(std::isnan(y[5]));
  EXPECT_EQ(y[6], 3.0f);  // amax itself maps to 448 exactly
  std::vector<float> s1(8);
  quantize_e4m3_1x128(x.data(), 4, 256, q.data(), s1.data());
  EXPECT_EQ(q[5] & 0x7F, 0x7F);
}

TEST(BlockScale, ValidateScaleInvRejectsBadValues) {
  for (float bad : {kNaN, kInf, -kInf, 0.0f, -0.0f, -1.0f, 1e-40f}) {
    const float s[3] = {1.0f, bad, 2.0f};
    try {
      validate_scale_inv(s, 3, "layers.0.mlp.down_proj.weight_scale_inv");
      ADD_FAILURE() << "accepted " << bad;
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("layers.0.mlp.down_proj.weight_scale_inv"), std::string::npos) << msg;
      EXPECT_NE(msg.find("element 1"), std::string::npos) << msg;
    }
  }
  const float good[2] = {std::numeric_limits<float>::min(), 3e38f};
  validate_scale_inv(good, 2, "ok");
}

TEST(BlockScale, NegativeShapeIsAnError) {
  EXPECT_THROW(quantize_e4m3_128x128(nullptr, -1, 5, nullptr, nullptr), Error);
}

}  // namespace
}  // namespace dsv3

// bf16 and f16: every code decoded against the bit-field formula, round trips, and encodes (all
// midpoints, their neighbours, random f32) against a nearest-value search with ties to even.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "float_format_ref.h"
#include "tensor/half.h"

namespace dsv3 {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

struct Format {
  const char* name;
  int exp_bits, mant_bits, bias;
  float (*decode)(uint16_t);
  uint16_t (*encode)(float);
};
const Format kBF16{"bf16", 8, 7, 127, bf16_to_f32, f32_to_bf16};
const Format kF16{"f16", 5, 10, 15, f16_to_f32, f32_to_f16};

uint32_t inf_code(const Format& f) {
  return ((1u << f.exp_bits) - 1) << f.mant_bits;
}

double ref_value(const Format& f, uint32_t c) {
  const uint32_t exp = (c >> f.mant_bits) & ((1u << f.exp_bits) - 1);
  const uint32_t mant = c & ((1u << f.mant_bits) - 1);
  if (exp == (1u << f.exp_bits) - 1) {
    if (mant) return std::numeric_limits<double>::quiet_NaN();
    return (c & 0x8000) ? -INFINITY : INFINITY;
  }
  return test::bitfield_value(c, f.exp_bits, f.mant_bits, f.bias);
}

// Non-negative finite values by code, plus the inf code standing for 2^(emax+1), the value IEEE
// rounding uses to decide overflow: rounding to it means inf.
std::vector<double> positive_table(const Format& f) {
  std::vector<double> v;
  for (uint32_t c = 0; c < inf_code(f); ++c) v.push_back(ref_value(f, c));
  v.push_back(std::ldexp(1.0, (1 << (f.exp_bits - 1))));
  return v;
}

class Half : public ::testing::TestWithParam<const Format*> {};

TEST_P(Half, DecodesEveryCode) {
  const Format& f = *GetParam();
  for (uint32_t c = 0; c < 65536; ++c) {
    const float got = f.decode(static_cast<uint16_t>(c));
    const double ref = ref_value(f, c);
    if (std::isnan(ref)) {
      ASSERT_TRUE(std::isnan(got)) << f.name << " code " << c;
    } else {
      ASSERT_EQ(static_cast<double>(got), ref) << f.name << " code " << c;
      ASSERT_EQ(std::signbit(got), std::signbit(ref)) << f.name << " code " << c;
    }
  }
}

TEST_P(Half, RoundTripsEveryNonNaNCode) {
  const Format& f = *GetParam();
  for (uint32_t c = 0; c < 65536; ++c) {
    const float v = f.decode(static_cast<uint16_t>(c));
    if (std::isnan(v)) continue;
    ASSERT_EQ(f.encode(v), c) << f.name << " code " << c;
  }
}

void check_encode(const Format& f, const std::vector<double>& pos, float x) {
  const uint32_t sign = std::signbit(x) ? 0x8000 : 0;
  ASSERT_EQ(f.encode(x), sign | test::nearest_code(x, pos)) << f.name << " of " << x;
}

TEST_P(Half, EncodeMatchesNearestCodeSearch) {
  const Format& f = *GetParam();
  const auto pos = positive_table(f);
  // All midpoints between neighbouring codes (exact in f32) and one f32 ulp either side.
  for (size_t c = 0; c + 1 < pos.size(); ++c) {
    const float mid = static_cast<float>((pos[c] + pos[c + 1]) / 2);
    for (float x : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, kInf)}) {
      check_encode(f, pos, x);
      check_encode(f, pos, -x);
    }
  }
  std::mt19937 rng(99);
  std::uniform_int_distribution<uint32_t> bits(0, 0xFFFFFFFFu);
  for (int i = 0; i < 200000; ++i) {
    const float x = std::bit_cast<float>(bits(rng));
    if (!std::isfinite(x)) continue;
    check_encode(f, pos, x);
  }
}

TEST_P(Half, SpecialValues) {
  const Format& f = *GetParam();
  const uint16_t inf = static_cast<uint16_t>(inf_code(f));
  EXPECT_EQ(f.encode(kInf), inf);
  EXPECT_EQ(f.encode(-kInf), inf | 0x8000);
  EXPECT_EQ(f.encode(std::numeric_limits<float>::max()), inf);  // overflow -> inf (IEEE)
  EXPECT_EQ(f.encode(-0.0f), 0x8000);
  for (float nan :
       {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::signaling_NaN(),
        std::bit_cast<float>(0x7F800001u), std::bit_cast<float>(0xFF800001u)}) {
    EXPECT_TRUE(std::isnan(f.decode(f.encode(nan)))) << f.name;
    EXPECT_EQ(std::signbit(f.decode(f.encode(nan))), std::signbit(nan)) << f.name;
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, Half, ::testing::Values(&kBF16, &kF16),
                         [](const auto& info) { return std::string(info.param->name); });

TEST(HalfEdges, F16Rounding) {
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7BFF);
  EXPECT_EQ(f32_to_f16(65519.0f), 0x7BFF);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7C00);  // tie with 65536 goes to the even code: inf
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);         // tie 0 | 2^-24: to even
  EXPECT_EQ(f32_to_f16(std::ldexp(3.0f, -25)), 0x0002);         // tie 1 | 2: to even
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);  // tie: to even (1.0)
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(3.0f, -11)), 0x3C02);
}

TEST(HalfEdges, BF16Rounding) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3F808000u)), 0x3F80);  // tie: to even
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3F818000u)), 0x3F82);  // tie: to even
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3F808001u)), 0x3F81);
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x7F7FFFFFu)), 0x7F80);  // overflow -> inf
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x00008000u)), 0x0000);  // subnormal tie: to even
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x00018000u)), 0x0002);
}

TEST(HalfEdges, BulkMatchesScalar) {
  std::vector<float> x = {0.0f, -1.5f, 3.14159f, 1e-6f, 70000.0f, -2e-30f};
  const auto n = static_cast<int64_t>(x.size());
  std::vector<uint16_t> b(x.size()), h(x.size());
  std::vector<float> yb(x.size()), yh(x.size());
  f32_to_bf16(x.data(), b.data(), n);
  bf16_to_f32(b.data(), yb.data(), n);
  f32_to_f16(x.data(), h.data(), n);
  f16_to_f32(h.data(), yh.data(), n);
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(b[i], f32_to_bf16(x[i]));
    EXPECT_EQ(h[i], f32_to_f16(x[i]));
    EXPECT_EQ(yb[i], bf16_to_f32(b[i]));
    EXPECT_EQ(yh[i], f16_to_f32(h[i]));
  }
}

}  // namespace
}  // namespace dsv3

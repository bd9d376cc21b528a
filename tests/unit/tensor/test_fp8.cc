// FP8 codes (RELIABILITY §4): all 256 codes of E4M3FN and E5M2 against the bit-field formula, round
// trips, saturation, the subnormal ties, and random encodes against a nearest-value search.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "float_format_ref.h"
#include "tensor/fp8.h"

namespace dsv3 {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

double e4m3_ref(uint32_t c) {
  if ((c & 0x7F) == 0x7F) return kNaN;  // E4M3FN: only S.1111.111 is NaN, no inf
  return test::bitfield_value(c, 4, 3, 7);
}
double e5m2_ref(uint32_t c) {
  const uint32_t exp = (c >> 2) & 0x1F, mant = c & 3;
  if (exp == 0x1F) return mant ? kNaN : ((c & 0x80) ? -INFINITY : INFINITY);
  return test::bitfield_value(c, 5, 2, 15);
}

// Values of the non-negative finite codes, index = code: E4M3 0..0x7E, E5M2 0..0x7B.
std::vector<double> positive_table(double (*ref)(uint32_t), uint32_t max_code) {
  std::vector<double> v;
  for (uint32_t c = 0; c <= max_code; ++c) v.push_back(ref(c));
  return v;
}

void expect_same(float got, double ref, uint32_t code) {
  if (std::isnan(ref)) {
    EXPECT_TRUE(std::isnan(got)) << "code " << code;
  } else {
    EXPECT_EQ(static_cast<double>(got), ref) << "code " << code;
    EXPECT_EQ(std::signbit(got), std::signbit(ref)) << "code " << code;
  }
}

TEST(Fp8, E4M3DecodesAll256Codes) {
  int nans = 0;
  for (uint32_t c = 0; c < 256; ++c) {
    expect_same(e4m3_to_f32(static_cast<uint8_t>(c)), e4m3_ref(c), c);
    nans += std::isnan(e4m3_to_f32(static_cast<uint8_t>(c)));
  }
  EXPECT_EQ(nans, 2);  // 0x7F and 0xFF only
  EXPECT_EQ(e4m3_to_f32(0x7E), 448.0f);
  EXPECT_EQ(e4m3_to_f32(0xFE), -448.0f);
  EXPECT_TRUE(std::signbit(e4m3_to_f32(0x80)) && e4m3_to_f32(0x80) == 0.0f);
  EXPECT_EQ(e4m3_to_f32(0x01), std::ldexp(1.0f, -9));  // smallest subnormal
  EXPECT_EQ(e4m3_to_f32(0x07), 7 * std::ldexp(1.0f, -9));
  EXPECT_EQ(e4m3_to_f32(0x08), std::ldexp(1.0f, -6));  // smallest normal
}

TEST(Fp8, E5M2DecodesAll256Codes) {
  for (uint32_t c = 0; c < 256; ++c)
    expect_same(e5m2_to_f32(static_cast<uint8_t>(c)), e5m2_ref(c), c);
  EXPECT_EQ(e5m2_to_f32(0x7B), 57344.0f);
  EXPECT_EQ(e5m2_to_f32(0x7C), kInf);
  EXPECT_EQ(e5m2_to_f32(0xFC), -kInf);
  EXPECT_EQ(e5m2_to_f32(0x01), std::ldexp(1.0f, -16));
}

TEST(Fp8, RoundTripEveryNonNaNCode) {
  for (uint32_t c = 0; c < 256; ++c) {
    const auto u = static_cast<uint8_t>(c);
    if (!std::isnan(e4m3_to_f32(u))) {
      EXPECT_EQ(f32_to_e4m3(e4m3_to_f32(u)), u) << "e4m3 " << c;
    }
    if (!std::isnan(e5m2_to_f32(u))) {
      EXPECT_EQ(f32_to_e5m2(e5m2_to_f32(u)), u) << "e5m2 " << c;
    }
  }
}

TEST(Fp8, E4M3SaturatesOverflowAndInf) {
  // 464 is the tie between 448 (mantissa 6, even) and 480 (not representable: 0x7F is NaN);
  // 465 and 480 would round to 480; everything past 448 saturates (documented in fp8.h).
  for (float x : {448.0f, 464.0f, 465.0f, 480.0f, 1e6f, 3e38f, kInf}) {
    EXPECT_EQ(f32_to_e4m3(x), 0x7E) << x;
    EXPECT_EQ(f32_to_e4m3(-x), 0xFE) << -x;
  }
  EXPECT_EQ(f32_to_e4m3(447.0f), 0x7E);  // nearest is 448
  EXPECT_EQ(f32_to_e4m3(431.0f), 0x7D);  // nearest is 416 (0x7D), tie at 432 goes to 448
  EXPECT_EQ(f32_to_e4m3(432.0f), 0x7E);
}

TEST(Fp8, E4M3SubnormalTies) {
  const float sub = std::ldexp(1.0f, -9);
  EXPECT_EQ(f32_to_e4m3(std::ldexp(1.0f, -10)), 0x00);   // tie 0 | 2^-9: to even (0)
  EXPECT_EQ(f32_to_e4m3(-std::ldexp(1.0f, -10)), 0x80);  // -0
  EXPECT_EQ(f32_to_e4m3(std::nextafter(std::ldexp(1.0f, -10), 1.0f)), 0x01);
  EXPECT_EQ(f32_to_e4m3(std::nextafter(std::ldexp(1.0f, -10), 0.0f)), 0x00);
  EXPECT_EQ(f32_to_e4m3(1.5f * sub), 0x02);  // tie 1 | 2: to even (2)
  EXPECT_EQ(f32_to_e4m3(2.5f * sub), 0x02);  // tie 2 | 3: to even (2)
  EXPECT_EQ(f32_to_e4m3(7.5f * sub), 0x08);  // tie between largest subnormal and smallest normal
  EXPECT_EQ(f32_to_e4m3(std::ldexp(1.0f, -30)), 0x00);
  EXPECT_EQ(f32_to_e4m3(std::numeric_limits<float>::denorm_min()), 0x00);
  EXPECT_EQ(f32_to_e4m3(-0.0f), 0x80);
}

TEST(Fp8, NaNStaysNaN) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(f32_to_e4m3(nan) & 0x7F, 0x7F);
  EXPECT_EQ(f32_to_e4m3(-nan), 0xFF);
  EXPECT_TRUE(std::isnan(e5m2_to_f32(f32_to_e5m2(nan))));
  EXPECT_TRUE(std::isnan(e5m2_to_f32(f32_to_e5m2(std::numeric_limits<float>::signaling_NaN()))));
}

TEST(Fp8, E5M2SaturatesFiniteOverflowKeepsInf) {
  EXPECT_EQ(f32_to_e5m2(57344.0f), 0x7B);
  EXPECT_EQ(f32_to_e5m2(61440.0f), 0x7B);  // tie 57344 | 65536: saturates (IEEE would give inf)
  EXPECT_EQ(f32_to_e5m2(1e9f), 0x7B);
  EXPECT_EQ(f32_to_e5m2(-1e9f), 0xFB);
  EXPECT_EQ(f32_to_e5m2(kInf), 0x7C);
  EXPECT_EQ(f32_to_e5m2(-kInf), 0xFC);
}

// Encodes x and compares with the nearest finite code (which is also the saturated result).
void check_encode(float x, const std::vector<double>& e4, const std::vector<double>& e5) {
  const uint32_t sign = std::signbit(x) ? 0x80 : 0;
  ASSERT_EQ(f32_to_e4m3(x), sign | test::nearest_code(x, e4)) << "e4m3 of " << x;
  ASSERT_EQ(f32_to_e5m2(x), sign | test::nearest_code(x, e5)) << "e5m2 of " << x;
}

TEST(Fp8, EncodeMatchesNearestCodeSearch) {
  const auto e4 = positive_table(e4m3_ref, 0x7E), e5 = positive_table(e5m2_ref, 0x7B);
  // Every midpoint between neighbouring codes (exact in f32), and one f32 ulp either side of it.
  for (const auto* t : {&e4, &e5}) {
    for (size_t c = 0; c + 1 < t->size(); ++c) {
      const float mid = static_cast<float>(((*t)[c] + (*t)[c + 1]) / 2);
      for (float x : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, kInf)}) {
        check_encode(x, e4, e5);
        check_encode(-x, e4, e5);
      }
    }
  }
  // Random f32 with exponents spanning both formats' ranges and beyond.
  std::mt19937 rng(1234);
  std::uniform_int_distribution<uint32_t> mant(0, 0x7FFFFF), exp(127 - 30, 127 + 20), sign(0, 1);
  for (int i = 0; i < 200000; ++i) {
    const uint32_t bits = sign(rng) << 31 | exp(rng) << 23 | mant(rng);
    check_encode(std::bit_cast<float>(bits), e4, e5);
  }
}

TEST(Fp8, BulkMatchesScalar) {
  std::vector<float> x = {0.0f, -1.0f, 3.3f, 500.0f, -1e-3f, 1e-8f};
  std::vector<uint8_t> q(x.size()), r(x.size());
  std::vector<float> y(x.size());
  f32_to_e4m3(x.data(), q.data(), static_cast<int64_t>(x.size()));
  e4m3_to_f32(q.data(), y.data(), static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(q[i], f32_to_e4m3(x[i]));
    EXPECT_EQ(y[i], e4m3_to_f32(q[i]));
  }
  f32_to_e5m2(x.data(), r.data(), static_cast<int64_t>(x.size()));
  e5m2_to_f32(r.data(), y.data(), static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(r[i], f32_to_e5m2(x[i]));
    EXPECT_EQ(y[i], e5m2_to_f32(r[i]));
  }
}

}  // namespace
}  // namespace dsv3

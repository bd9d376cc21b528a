// MoE row payloads (dist/ep_payload.h) against references written here from the formats' own
// definitions, not from dsv3's quantizers: FP32 passes bits through; BF16 is round-to-nearest-even
// on the top 16 bits; FP8 is, per 1x128 tile, s = 2^ceil(log2(max(amax, 1e-4) / 448)) and each
// value the E4M3 value nearest x / s (the 254 finite E4M3 values enumerated: normal
// (1 + m/8)·2^(e-7), subnormal m·2^-9), times s; the wire takes d + ceil(d/128) bytes a row.
#include "dist/ep_payload.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "base/error.h"
#include "base/rng.h"

namespace dsv3 {
namespace {

std::vector<float> rows(int64_t n, int64_t d, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> x(static_cast<size_t>(n * d));
  // Rows of different magnitudes, one tile with a spike, one all zero.
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < d; ++c)
      x[static_cast<size_t>(r * d + c)] =
          r == 2 ? 0.0f
                 : static_cast<float>(rng.normal() * std::ldexp(1.0, static_cast<int>(r) * 3 - 6));
  x[static_cast<size_t>(d + 5)] = 300.0f;
  return x;
}

std::vector<float> round_trip(EpPayload p, const std::vector<float>& x, int64_t n, int64_t d) {
  std::vector<uint8_t> wire(static_cast<size_t>(n * payload_row_bytes(p, d)));
  encode_rows(p, x.data(), n, d, wire.data());
  std::vector<float> y(x.size());
  decode_rows(p, wire.data(), n, d, y.data());
  return y;
}

TEST(EpPayload, Fp32PassesTheBits) {
  const int64_t n = 4, d = 200;
  const std::vector<float> x = rows(n, d, 1), y = round_trip(EpPayload::F32, x, n, d);
  EXPECT_EQ(payload_row_bytes(EpPayload::F32, d), 4 * d);
  EXPECT_EQ(std::memcmp(x.data(), y.data(), x.size() * sizeof(float)), 0);
}

TEST(EpPayload, Bf16RoundsToNearestEven) {
  const int64_t n = 4, d = 200;
  const std::vector<float> x = rows(n, d, 2), y = round_trip(EpPayload::BF16, x, n, d);
  EXPECT_EQ(payload_row_bytes(EpPayload::BF16, d), 2 * d);
  for (size_t i = 0; i < x.size(); ++i) {
    uint32_t u = 0;
    std::memcpy(&u, &x[i], 4);
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    float want = 0;
    std::memcpy(&want, &u, 4);
    ASSERT_EQ(y[i], want) << i;
  }
}

TEST(EpPayload, Fp8TilesWithPowerOfTwoScales) {
  std::vector<double> e4m3;  // the non-negative finite E4M3 values
  for (int e = 0; e < 16; ++e)
    for (int m = 0; m < 8; ++m)
      if (!(e == 15 && m == 7))
        e4m3.push_back(e == 0 ? m * std::ldexp(1.0, -9) : (1 + m / 8.0) * std::ldexp(1.0, e - 7));
  const int64_t n = 5, d = 300;  // tiles of 128, 128 and 44 columns
  EXPECT_EQ(payload_row_bytes(EpPayload::FP8, d), d + 3);
  const std::vector<float> x = rows(n, d, 3), y = round_trip(EpPayload::FP8, x, n, d);
  int64_t ties = 0;
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c0 = 0; c0 < d; c0 += 128) {
      const int64_t c1 = std::min(d, c0 + 128);
      double amax = 0;
      for (int64_t c = c0; c < c1; ++c) amax = std::max(amax, std::fabs(double{x[r * d + c]}));
      const double s =
          std::ldexp(1.0, static_cast<int>(std::ceil(std::log2(std::max(amax, 1e-4) / 448))));
      for (int64_t c = c0; c < c1; ++c) {
        const double v = std::fabs(double{x[r * d + c]}) / s;
        double best = e4m3[0];
        for (double q : e4m3)
          if (std::fabs(q - v) < std::fabs(best - v)) best = q;
        for (double q : e4m3) ties += q != best && std::fabs(q - v) == std::fabs(best - v);
        const double want = std::copysign(best * s, double{x[r * d + c]});
        ASSERT_EQ(double{y[r * d + c]}, want) << "row " << r << " column " << c;
      }
    }
  EXPECT_EQ(ties, 0);  // random values: no halfway case the nearest-even rule would decide
}

TEST(EpPayload, Names) {
  EXPECT_EQ(parse_ep_payload("fp8"), EpPayload::FP8);
  EXPECT_STREQ(ep_payload_name(parse_ep_payload("bf16")), "bf16");
  EXPECT_THROW(parse_ep_payload("fp4"), Error);
}

}  // namespace
}  // namespace dsv3

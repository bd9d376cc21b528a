// The AVX-512 E4M3 loops (tensor/fp8_simd.h) against the scalar code they replace, bit for bit:
// the scalar encoder and decode table are themselves checked against independent references
// (test_fp8.cc: the bit-field formula and a nearest-value search; fp8_quantize_ref: numpy), so
// exact equality here carries those checks over. Exact, not within a tolerance: the recipe's
// codes must not depend on the CPU the run happens on.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <utility>
#include <vector>

#include "tensor/fp8.h"
#include "tensor/fp8_simd.h"
#include "tensor/minifloat.h"

namespace dsv3 {
namespace {

// Every sign, exponent and top 8 mantissa bits with 24 patterns of the low 15 bits (0, 1, all
// ones: the neighbours of every value with zero low bits, which holds the subnormal ties), then
// every sign, exponent and top 3 mantissa bits with the low 20 bits at and around the tie of a
// 3-bit mantissa (0x80000) and random: about 3.2M floats, NaN and inf patterns among them.
std::vector<float> probe_floats() {
  std::mt19937 rng(7);
  std::vector<uint32_t> low = {0,       1,       0x7FFFF, 0x80000, 0x80001, 0xFFFFF,
                               0x3FFFF, 0x40000, 0x40001, 0x7FFF,  0x8000,  0x8001};
  while (low.size() < 24) low.push_back(rng() & 0xFFFFF);
  std::vector<float> x;
  for (uint32_t hi = 0; hi < (1u << 17); ++hi)
    for (uint32_t l : low) x.push_back(std::bit_cast<float>((hi << 15) | (l & 0x7FFF)));
  for (uint32_t hi = 0; hi < (1u << 12); ++hi)
    for (uint32_t l : low) x.push_back(std::bit_cast<float>((hi << 20) | l));
  return x;
}

TEST(Fp8Simd, EncodeEqualsScalarOnEveryRoundingCase) {
  if (!fp8_simd::available()) GTEST_SKIP() << "no AVX-512 on this CPU";
  const std::vector<float> x = probe_floats();
  const auto n = static_cast<int64_t>(x.size());
  std::vector<uint8_t> got(x.size());
  fp8_simd::encode(x.data(), got.data(), n);
  int64_t bad = 0;
  for (int64_t i = 0; i < n; ++i)
    if (got[i] != minifloat::e4m3_encode(x[i]) && ++bad < 5)
      ADD_FAILURE() << std::hex << std::bit_cast<uint32_t>(x[i]) << " -> " << int{got[i]}
                    << ", scalar " << int{minifloat::e4m3_encode(x[i])};
  EXPECT_EQ(bad, 0);
}

TEST(Fp8Simd, EncodeDivEqualsScalarWithTails) {
  if (!fp8_simd::available()) GTEST_SKIP() << "no AVX-512 on this CPU";
  std::mt19937 rng(3);
  std::lognormal_distribution<float> mag(0.0f, 6.0f);
  for (int64_t n : {1, 15, 16, 17, 100, 128, 129}) {
    std::vector<float> x(n), s(n);
    for (int64_t i = 0; i < n; ++i) {
      x[i] = (rng() & 1 ? -1.0f : 1.0f) * mag(rng);
      s[i] = mag(rng) / 448.0f;
    }
    std::vector<uint8_t> got(n + 1, 0xAB);  // one guard byte past the end
    fp8_simd::encode_div(x.data(), s.data(), got.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(got[i], minifloat::e4m3_encode(x[i] / s[i])) << i;
    EXPECT_EQ(got[n], 0xAB) << "wrote past n = " << n;
  }
}

TEST(Fp8Simd, DecodeEqualsTableOnAllCodes) {
  if (!fp8_simd::available()) GTEST_SKIP() << "no AVX-512 on this CPU";
  std::vector<uint8_t> q(256 + 7);
  for (int i = 0; i < 256 + 7; ++i) q[i] = static_cast<uint8_t>(i);
  std::vector<float> got(q.size());
  fp8_simd::decode(q.data(), got.data(), static_cast<int64_t>(q.size()));
  for (size_t i = 0; i < q.size(); ++i)
    EXPECT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(e4m3_to_f32(q[i])))
        << "code " << i;
}

TEST(Fp8Simd, AmaxSkipsInfAndNaN) {
  if (!fp8_simd::available()) GTEST_SKIP() << "no AVX-512 on this CPU";
  constexpr float kInf = std::numeric_limits<float>::infinity();
  std::vector<float> x(37, 0.5f);
  x[3] = -kInf;
  x[20] = std::numeric_limits<float>::quiet_NaN();
  x[36] = -3.0f;  // in the tail
  x[10] = kInf;
  EXPECT_EQ(fp8_simd::amax(x.data(), 37, 0.0f), 3.0f);
  EXPECT_EQ(fp8_simd::amax(x.data(), 36, 0.0f), 0.5f);
  EXPECT_EQ(fp8_simd::amax(x.data(), 36, 7.0f), 7.0f);  // the running max is kept
  std::vector<float> col(37, 1.0f);
  fp8_simd::amax_columns(x.data(), col.data(), 37);
  EXPECT_EQ(col[3], 1.0f);
  EXPECT_EQ(col[10], 1.0f);
  EXPECT_EQ(col[20], 1.0f);
  EXPECT_EQ(col[36], 3.0f);
  EXPECT_EQ(col[0], 1.0f);
}

TEST(Fp8Simd, TransposeBytesEqualsLoop) {
  if (!fp8_simd::available()) GTEST_SKIP() << "no AVX-512 on this CPU";
  std::mt19937 rng(5);
  for (auto [rows, cols] :
       {std::pair<int64_t, int64_t>{16, 16}, {1, 1}, {37, 130}, {128, 45}, {15, 17}, {256, 384}}) {
    const int64_t ldi = cols + 3, ldo = rows + 5;  // strides wider than the matrix
    std::vector<uint8_t> in(rows * ldi), out(cols * ldo, 0xEE);
    for (uint8_t& b : in) b = static_cast<uint8_t>(rng());
    fp8_simd::transpose_bytes(in.data(), rows, cols, ldi, out.data(), ldo);
    for (int64_t c = 0; c < cols; ++c) {
      for (int64_t r = 0; r < rows; ++r)
        ASSERT_EQ(out[c * ldo + r], in[r * ldi + c])
            << rows << "x" << cols << " at " << r << "," << c;
      for (int64_t r = rows; r < ldo; ++r) ASSERT_EQ(out[c * ldo + r], 0xEE) << "wrote padding";
    }
  }
}

}  // namespace
}  // namespace dsv3

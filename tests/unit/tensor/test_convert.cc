// convert_to_f32 / convert_from_f32 agree with the scalar codecs, handle unaligned buffers and
// lengths past one internal chunk, and refuse non-float dtypes.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "base/error.h"
#include "tensor/convert.h"
#include "tensor/fp8.h"
#include "tensor/half.h"

namespace dsv3 {
namespace {

std::vector<float> sample(int64_t n) {
  std::mt19937 rng(7);
  std::normal_distribution<float> d(0.0f, 30.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = d(rng);
  return x;
}

// Scalar reference of one element's encoding.
void encode_one(DType t, float x, std::byte* out) {
  switch (t) {
    case DType::F64: {
      double d = x;
      std::memcpy(out, &d, 8);
      break;
    }
    case DType::F32:
      std::memcpy(out, &x, 4);
      break;
    case DType::F16: {
      uint16_t h = f32_to_f16(x);
      std::memcpy(out, &h, 2);
      break;
    }
    case DType::BF16: {
      uint16_t h = f32_to_bf16(x);
      std::memcpy(out, &h, 2);
      break;
    }
    case DType::F8_E4M3:
      *out = std::byte{f32_to_e4m3(x)};
      break;
    case DType::F8_E5M2:
      *out = std::byte{f32_to_e5m2(x)};
      break;
    default:
      FAIL();
  }
}

class Convert : public ::testing::TestWithParam<DType> {};

TEST_P(Convert, RoundTripMatchesScalarCodecUnaligned) {
  const DType t = GetParam();
  const size_t es = dtype_size(t);
  const int64_t n = 10007;  // more than one 4096-element chunk, not a multiple of it
  const auto x = sample(n);
  std::vector<std::byte> buf(static_cast<size_t>(n) * es + 1), ref(static_cast<size_t>(n) * es);
  std::byte* unaligned = buf.data() + 1;
  convert_from_f32(t, x.data(), unaligned, n);
  for (int64_t i = 0; i < n; ++i) encode_one(t, x[i], ref.data() + i * es);
  ASSERT_EQ(std::memcmp(unaligned, ref.data(), ref.size()), 0) << dtype_name(t);

  std::vector<float> back(static_cast<size_t>(n));
  convert_to_f32(t, unaligned, back.data(), n);
  // Decoding then re-encoding must give the same bytes (every format round-trips its own values).
  std::vector<std::byte> again(ref.size());
  convert_from_f32(t, back.data(), again.data(), n);
  EXPECT_EQ(std::memcmp(again.data(), ref.data(), ref.size()), 0) << dtype_name(t);
  if (t == DType::F32 || t == DType::F64) {
    EXPECT_EQ(back, x);
  }
}

INSTANTIATE_TEST_SUITE_P(FloatTypes, Convert,
                         ::testing::Values(DType::F64, DType::F32, DType::F16, DType::BF16,
                                           DType::F8_E4M3, DType::F8_E5M2),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST(ConvertErrors, NonFloatDTypeThrows) {
  float x[2] = {1, 2};
  int32_t y[2];
  EXPECT_THROW(convert_from_f32(DType::I32, x, y, 2), Error);
  EXPECT_THROW(convert_to_f32(DType::U8, y, x, 2), Error);
}

}  // namespace
}  // namespace dsv3

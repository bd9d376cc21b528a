#include "tensor/fp8.h"

#include <array>
#include <bit>
#include <cmath>
#include <limits>

#include "tensor/fp8_simd.h"
#include "tensor/minifloat.h"

namespace dsv3 {
namespace {

constexpr uint8_t kE5M2MaxCode = 0x7B, kE5M2Inf = 0x7C, kE5M2NaN = 0x7E;

// Decode tables, built once from the bit fields.
std::array<float, 256> make_e4m3_table() {
  std::array<float, 256> t{};
  for (int c = 0; c < 256; ++c) {
    const int exp = (c >> 3) & 0xF, mant = c & 0x7;
    float v;
    if ((c & 0x7F) == 0x7F)
      v = std::numeric_limits<float>::quiet_NaN();
    else if (exp == 0)
      v = std::ldexp(static_cast<float>(mant), -9);  // subnormal: m * 2^-6 / 8
    else
      v = std::ldexp(static_cast<float>(8 + mant), exp - 7 - 3);
    t[c] = (c & 0x80) ? -v : v;
  }
  return t;
}

std::array<float, 256> make_e5m2_table() {
  std::array<float, 256> t{};
  for (int c = 0; c < 256; ++c) {
    const int exp = (c >> 2) & 0x1F, mant = c & 0x3;
    float v;
    if (exp == 0x1F)
      v = mant ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
    else if (exp == 0)
      v = std::ldexp(static_cast<float>(mant), -16);  // m * 2^-14 / 4
    else
      v = std::ldexp(static_cast<float>(4 + mant), exp - 15 - 2);
    t[c] = (c & 0x80) ? -v : v;
  }
  return t;
}

// Function-local statics: safe to use from other translation units' static initializers.
const std::array<float, 256>& e4m3_table() {
  static const std::array<float, 256> t = make_e4m3_table();
  return t;
}
const std::array<float, 256>& e5m2_table() {
  static const std::array<float, 256> t = make_e5m2_table();
  return t;
}

}  // namespace

uint8_t f32_to_e4m3(float x) {
  return minifloat::e4m3_encode(x);
}

float e4m3_to_f32(uint8_t code) {
  return e4m3_table()[code];
}

uint8_t f32_to_e5m2(float x) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  const uint8_t sign = static_cast<uint8_t>((bits >> 24) & 0x80u);
  const uint32_t abs_bits = bits & 0x7FFFFFFFu;
  if (abs_bits > 0x7F800000u) return sign | kE5M2NaN;
  if (abs_bits == 0x7F800000u) return sign | kE5M2Inf;
  const uint32_t code = minifloat::round_abs(abs_bits, 2, 15);
  return sign | static_cast<uint8_t>(code > kE5M2MaxCode ? kE5M2MaxCode : code);
}

float e5m2_to_f32(uint8_t code) {
  return e5m2_table()[code];
}

void f32_to_e4m3(const float* in, uint8_t* out, int64_t n) {
  if (fp8_simd::available()) return fp8_simd::encode(in, out, n);
  for (int64_t i = 0; i < n; ++i) out[i] = minifloat::e4m3_encode(in[i]);
}
void e4m3_to_f32(const uint8_t* in, float* out, int64_t n) {
  if (fp8_simd::available()) return fp8_simd::decode(in, out, n);
  const auto& t = e4m3_table();
  for (int64_t i = 0; i < n; ++i) out[i] = t[in[i]];
}
void f32_to_e5m2(const float* in, uint8_t* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = f32_to_e5m2(in[i]);
}
void e5m2_to_f32(const uint8_t* in, float* out, int64_t n) {
  const auto& t = e5m2_table();
  for (int64_t i = 0; i < n; ++i) out[i] = t[in[i]];
}

}  // namespace dsv3

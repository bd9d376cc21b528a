// Rounding an f32 into a narrower binary float format (f16, E4M3, E5M2): the shared core of half.cc
// and fp8.cc. Internal to the tensor module.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>

namespace dsv3::minifloat {

// Rounds |x| (given as the f32 bit pattern with the sign cleared, finite, not NaN) to the nearest
// value of a format with `mant_bits` mantissa bits and exponent bias `bias`, ties to even, with
// subnormals. Returns the unsigned code (exponent << mant_bits | mantissa); a result past the
// format's largest finite code means overflow, and the caller decides (inf, saturate).
inline uint32_t round_abs(uint32_t abs_bits, int mant_bits, int bias) {
  const int f32_exp = static_cast<int>(abs_bits >> 23);
  if (f32_exp == 0) return 0;  // f32 zero/subnormal: far below every target's smallest subnormal
  const int exp = f32_exp - 127;
  const int min_normal_exp = 1 - bias;
  uint64_t mant;  // the value in units of `unit` = 2^-shift of the target's quantum
  int shift;
  if (exp >= min_normal_exp) {
    // Normal: re-bias the exponent in place; a mantissa carry rolls into the exponent correctly.
    mant = abs_bits - (static_cast<uint32_t>(127 - bias) << 23);
    shift = 23 - mant_bits;
  } else {
    // Subnormal: count quanta of 2^(min_normal_exp - mant_bits) in 1.m * 2^exp.
    mant = (abs_bits & 0x7FFFFFu) | 0x800000u;
    shift = 23 + min_normal_exp - mant_bits - exp;
    if (shift > 40) return 0;  // below half the smallest subnormal
  }
  const uint64_t q = mant >> shift, rem = mant & ((uint64_t{1} << shift) - 1);
  const uint64_t half = uint64_t{1} << (shift - 1);
  return static_cast<uint32_t>(q + ((rem > half || (rem == half && (q & 1))) ? 1 : 0));
}

// f32 -> E4M3 (fp8.h: nearest even, subnormals, saturating at 0x7E, NaN -> 0x7F), inline and
// branch-free so that the FP8 recipe's quantizers vectorize: it encodes every activation several
// times a step. Normal results (|x| >= 2^-6): the f32 mantissa rounded to 3 bits in place, ties to
// even (a carry rolls into the exponent), re-biased; below 2^-6 the code is the count of 2^-9
// quanta, rint(|x| * 2^9) (a count of 8 is the code of 2^-6, the smallest normal).
inline uint8_t e4m3_encode(float x) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  const uint32_t sign = (bits >> 24) & 0x80u, abs_bits = bits & 0x7FFFFFFFu;
  const uint32_t normal = ((abs_bits + 0x7FFFFu + ((abs_bits >> 20) & 1u)) >> 20) - (120u << 3);
  const float small = std::fmin(std::bit_cast<float>(abs_bits), 0.015625f);  // NaN -> 2^-6
  const uint32_t sub = static_cast<uint32_t>(static_cast<int32_t>(std::nearbyint(small * 512.0f)));
  uint32_t code = abs_bits >= 0x3C800000u ? normal : sub;
  code = code > 0x7Eu ? 0x7Eu : code;
  code = abs_bits > 0x7F800000u ? 0x7Fu : code;
  return static_cast<uint8_t>(sign | code);
}

}  // namespace dsv3::minifloat

// 8-bit floats (OCP OFP8) <-> f32.
//
// E4M3 is the "E4M3FN" variant (torch.float8_e4m3fn, not FNUZ): bias 7, no infinities, only 0x7F
// and 0xFF are NaN, largest finite 448 (0x7E), -0 is 0x80, subnormals k * 2^-9 for k = 1..7 (up to
// 7*2^-9, just under the smallest normal 2^-6). E5M2: bias 15, IEEE-like: 0x7C is inf, 0x7D..0x7F
// NaN, largest finite 57344 (0x7B).
//
// Encoding rounds to nearest, ties to even, and keeps subnormals. NaN -> NaN. dsv3 SATURATES finite
// overflow to the largest finite value (+-448 for E4M3, +-57344 for E5M2), as DeepSeek's scaled
// casts do after clamping (RELIABILITY §4). E4M3 has no inf, so +-inf also saturates to +-448;
// E5M2 keeps +-inf as inf.
#pragma once
#include <cstdint>

namespace dsv3 {

inline constexpr float kE4M3Max = 448.0f;
inline constexpr float kE5M2Max = 57344.0f;

uint8_t f32_to_e4m3(float x);
float e4m3_to_f32(uint8_t code);
uint8_t f32_to_e5m2(float x);
float e5m2_to_f32(uint8_t code);

// Bulk versions of the above, element by element.
void f32_to_e4m3(const float* in, uint8_t* out, int64_t n);
void e4m3_to_f32(const uint8_t* in, float* out, int64_t n);
void f32_to_e5m2(const float* in, uint8_t* out, int64_t n);
void e5m2_to_f32(const uint8_t* in, float* out, int64_t n);

}  // namespace dsv3

// 16-bit floats: bfloat16 and IEEE binary16 (f16) <-> f32. Encoding rounds to nearest, ties to
// even; NaN stays NaN (quiet), finite overflow becomes +-inf as IEEE specifies, subnormals are
// kept.
#pragma once
#include <cstdint>

namespace dsv3 {

uint16_t f32_to_bf16(float x);
float bf16_to_f32(uint16_t h);
uint16_t f32_to_f16(float x);
float f16_to_f32(uint16_t h);

// Bulk versions of the above, element by element.
void f32_to_bf16(const float* in, uint16_t* out, int64_t n);
void bf16_to_f32(const uint16_t* in, float* out, int64_t n);
void f32_to_f16(const float* in, uint16_t* out, int64_t n);
void f16_to_f32(const uint16_t* in, float* out, int64_t n);

}  // namespace dsv3

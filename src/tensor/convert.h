// Converting whole buffers between a storage dtype and f32, the compute type (ARCHITECTURE habit
// 13).
#pragma once
#include <cstdint>

#include "tensor/dtype.h"

namespace dsv3 {

// Float dtypes only (F64, F32, F16, BF16, F8_E4M3, F8_E5M2); others throw Error. `in`/`out` hold
// n elements of `src`/`dst` in little-endian storage order, unaligned access allowed.
void convert_to_f32(DType src, const void* in, float* out, int64_t n);
// Rounding as in half.h and fp8.h (nearest even; FP8 saturates). F64 widens exactly.
void convert_from_f32(DType dst, const float* in, void* out, int64_t n);

}  // namespace dsv3

// FP8 E4M3 block scaling, as DeepSeek-V3 stores and computes it (SPEC §3.1, §3.2, RELIABILITY §4).
//
// Weights: 128x128 blocks. W_q [rows, cols] E4M3 and scale_inv [ceil(rows/128), ceil(cols/128)]
// F32,
//   W[i,j] = e4m3(W_q[i,j]) * scale_inv[i/128][j/128]; edge blocks are partial (as if zero-padded).
// Activations: 1x128 tiles along the last dim, scale [rows, ceil(cols/128)] F32, same equation.
//
// Quantization of a block: amax = max(|x|) over its finite values, floored at 1e-4 so an all-zero
// or tiny block still gets a finite scale; scale_inv = amax / 448; q = e4m3(x * (448 / amax)), the
// DeepGEMM form. E4M3 encoding saturates (fp8.h), NaN stays NaN, +-Inf becomes +-448 * scale_inv.
// Non-finite values are left out of amax so one bad value does not poison its block's scale.
#pragma once
#include <cstdint>
#include <string>

#include "tensor/dtype.h"

namespace dsv3 {

inline constexpr int64_t kFp8BlockSize = 128;
inline constexpr float kFp8AmaxFloor = 1e-4f;

// [ceil(rows/128), ceil(cols/128)]: the shape a weight's scale_inv must have.
Shape scale_shape_128x128(int64_t rows, int64_t cols);

// w, q: [rows, cols] row-major; scale_inv: scale_shape_128x128(rows, cols).
void quantize_e4m3_128x128(const float* w, int64_t rows, int64_t cols, uint8_t* q,
                           float* scale_inv);
void dequant_e4m3_128x128(const uint8_t* q, const float* scale_inv, int64_t rows, int64_t cols,
                          float* out);

// x, q: [rows, cols]; scale: [rows, ceil(cols/128)].
void quantize_e4m3_1x128(const float* x, int64_t rows, int64_t cols, uint8_t* q, float* scale);
void dequant_e4m3_1x128(const uint8_t* q, const float* scale, int64_t rows, int64_t cols,
                        float* out);

// Throws Error naming `name`, the index and the value if any scale is NaN, Inf, <= 0 or subnormal
// (any of those turns a dequantized weight into garbage without a visible failure).
void validate_scale_inv(const float* s, int64_t n, const std::string& name);

}  // namespace dsv3

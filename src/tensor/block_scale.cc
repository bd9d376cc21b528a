#include "tensor/block_scale.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "base/error.h"
#include "tensor/fp8.h"

namespace dsv3 {
namespace {

int64_t blocks(int64_t n) {
  return (n + kFp8BlockSize - 1) / kFp8BlockSize;
}

void check_dims(int64_t rows, int64_t cols, const char* what) {
  DSV3_CHECK(rows >= 0 && cols >= 0, std::string(what) + ": negative shape [" +
                                         std::to_string(rows) + ", " + std::to_string(cols) + "]");
}

// Quantizes the [r0, r1) x [c0, c1) tile of a row-major [*, cols] matrix; returns its scale_inv.
float quantize_tile(const float* x, int64_t cols, int64_t r0, int64_t r1, int64_t c0, int64_t c1,
                    uint8_t* q) {
  float amax = kFp8AmaxFloor;
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t c = c0; c < c1; ++c) {
      const float a = std::fabs(x[r * cols + c]);
      if (a > amax && std::isfinite(a)) amax = a;  // NaN compares false: skipped too
    }
  const float mult = kE4M3Max / amax;
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t c = c0; c < c1; ++c) q[r * cols + c] = f32_to_e4m3(x[r * cols + c] * mult);
  return amax / kE4M3Max;
}

}  // namespace

Shape scale_shape_128x128(int64_t rows, int64_t cols) {
  return {blocks(rows), blocks(cols)};
}

void quantize_e4m3_128x128(const float* w, int64_t rows, int64_t cols, uint8_t* q,
                           float* scale_inv) {
  check_dims(rows, cols, "quantize_e4m3_128x128");
  const int64_t bc = blocks(cols);
  for (int64_t br = 0; br < blocks(rows); ++br)
    for (int64_t bj = 0; bj < bc; ++bj) {
      const int64_t r0 = br * kFp8BlockSize, c0 = bj * kFp8BlockSize;
      scale_inv[br * bc + bj] = quantize_tile(w, cols, r0, std::min(rows, r0 + kFp8BlockSize), c0,
                                              std::min(cols, c0 + kFp8BlockSize), q);
    }
}

void dequant_e4m3_128x128(const uint8_t* q, const float* scale_inv, int64_t rows, int64_t cols,
                          float* out) {
  check_dims(rows, cols, "dequant_e4m3_128x128");
  const int64_t bc = blocks(cols);
  for (int64_t r = 0; r < rows; ++r) {
    const float* s = scale_inv + (r / kFp8BlockSize) * bc;
    for (int64_t c = 0; c < cols; ++c)
      out[r * cols + c] = e4m3_to_f32(q[r * cols + c]) * s[c / kFp8BlockSize];
  }
}

void quantize_e4m3_1x128(const float* x, int64_t rows, int64_t cols, uint8_t* q, float* scale) {
  check_dims(rows, cols, "quantize_e4m3_1x128");
  const int64_t bc = blocks(cols);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t bj = 0; bj < bc; ++bj) {
      const int64_t c0 = bj * kFp8BlockSize;
      scale[r * bc + bj] =
          quantize_tile(x, cols, r, r + 1, c0, std::min(cols, c0 + kFp8BlockSize), q);
    }
}

void dequant_e4m3_1x128(const uint8_t* q, const float* scale, int64_t rows, int64_t cols,
                        float* out) {
  check_dims(rows, cols, "dequant_e4m3_1x128");
  const int64_t bc = blocks(cols);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      out[r * cols + c] = e4m3_to_f32(q[r * cols + c]) * scale[r * bc + c / kFp8BlockSize];
}

void validate_scale_inv(const float* s, int64_t n, const std::string& name) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = s[i];
    const char* bad = std::isnan(v)       ? "NaN"
                      : std::isinf(v)     ? "infinite"
                      : v <= 0            ? "not positive"
                      : !std::isnormal(v) ? "subnormal"
                                          : nullptr;
    if (bad) {
      char value[32];
      std::snprintf(value, sizeof value, "%.9g", static_cast<double>(v));
      throw Error(name + ": scale element " + std::to_string(i) + " is " + bad + " (" + value + ")",
                  "the FP8 checkpoint is corrupt: re-download or re-convert it");
    }
  }
}

}  // namespace dsv3

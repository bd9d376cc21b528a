// The block format table and the row codecs of the integer formats (definitions in the header).
#include "tensor/block_format.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "base/error.h"
#include "tensor/half.h"

namespace dsv3 {
namespace {

constexpr int64_t kBlock = 32;

// f16(v) for a block's scale or minimum; an overflow to inf (|v| > 65504) is an error: such a
// weight has no place in a model, and inf would turn the block into NaN.
uint16_t to_f16_checked(float v, int64_t block) {
  const uint16_t h = f32_to_f16(v);
  DSV3_CHECK(std::isfinite(f16_to_f32(h)),
             "quantize: block " + std::to_string(block) + " needs a scale of " + std::to_string(v) +
                 ", beyond float16's range",
             "the weights hold values near 1e6 or more; keep this tensor in bf16");
  return h;
}

void check_finite(const float* x, int64_t block) {
  for (int64_t i = 0; i < kBlock; ++i)
    DSV3_CHECK(std::isfinite(x[i]),
               "quantize: block " + std::to_string(block) + " holds a value that is not finite",
               "the model's weights are damaged (NaN or inf); check the source checkpoint");
}

// rint(x / d) clamped to [lo, hi] (d != 0), ties to even in float32.
int quant(float x, float d, int lo, int hi) {
  return static_cast<int>(
      std::clamp(std::nearbyint(x / d), static_cast<float>(lo), static_cast<float>(hi)));
}

void quantize_q8_0(const float* x, int64_t n, void* qv, uint16_t* scale, uint16_t*) {
  auto* q = static_cast<int8_t*>(qv);
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const float* xb = x + b * kBlock;
    check_finite(xb, b);
    float amax = 0;
    for (int64_t i = 0; i < kBlock; ++i) amax = std::max(amax, std::fabs(xb[i]));
    scale[b] = to_f16_checked(amax / 127.0f, b);
    const float d = f16_to_f32(scale[b]);
    for (int64_t i = 0; i < kBlock; ++i)
      q[b * kBlock + i] = d == 0 ? 0 : quant(xb[i], d, -127, 127);
  }
}

void dequantize_q8_0(const void* qv, const uint16_t* scale, const uint16_t*, int64_t n, float* y) {
  const auto* q = static_cast<const int8_t*>(qv);
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const float d = f16_to_f32(scale[b]);
    for (int64_t i = 0; i < kBlock; ++i)
      y[b * kBlock + i] = d * static_cast<float>(q[b * kBlock + i]);
  }
}

// Two 4-bit quants per byte: q[j] low, q[j + 16] high (ggml's order).
void pack4(const int* q, uint8_t* out) {
  for (int j = 0; j < 16; ++j) out[j] = static_cast<uint8_t>(q[j] | (q[j + 16] << 4));
}

int unpack4(const uint8_t* block, int64_t i) {
  return i < 16 ? block[i] & 0x0F : block[i - 16] >> 4;
}

void quantize_q4_0(const float* x, int64_t n, void* qv, uint16_t* scale, uint16_t*) {
  auto* q = static_cast<uint8_t*>(qv);
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const float* xb = x + b * kBlock;
    check_finite(xb, b);
    float amax = 0, v = 0;  // v: the first value of largest magnitude, sign kept
    for (int64_t i = 0; i < kBlock; ++i)
      if (std::fabs(xb[i]) > amax) amax = std::fabs(xb[i]), v = xb[i];
    scale[b] = to_f16_checked(v / -8.0f, b);
    const float d = f16_to_f32(scale[b]);
    int qb[kBlock];
    for (int64_t i = 0; i < kBlock; ++i) qb[i] = d == 0 ? 8 : quant(xb[i], d, -8, 7) + 8;
    pack4(qb, q + b * kBlock / 2);
  }
}

void dequantize_q4_0(const void* qv, const uint16_t* scale, const uint16_t*, int64_t n, float* y) {
  const auto* q = static_cast<const uint8_t*>(qv);
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const float d = f16_to_f32(scale[b]);
    for (int64_t i = 0; i < kBlock; ++i)
      y[b * kBlock + i] = d * static_cast<float>(unpack4(q + b * kBlock / 2, i) - 8);
  }
}

void quantize_q4_1(const float* x, int64_t n, void* qv, uint16_t* scale, uint16_t* min) {
  auto* q = static_cast<uint8_t*>(qv);
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const float* xb = x + b * kBlock;
    check_finite(xb, b);
    const auto [lo, hi] = std::minmax_element(xb, xb + kBlock);
    scale[b] = to_f16_checked((*hi - *lo) / 15.0f, b);
    min[b] = to_f16_checked(*lo, b);
    const float d = f16_to_f32(scale[b]), m = f16_to_f32(min[b]);
    int qb[kBlock];
    for (int64_t i = 0; i < kBlock; ++i) qb[i] = d == 0 ? 0 : quant(xb[i] - m, d, 0, 15);
    pack4(qb, q + b * kBlock / 2);
  }
}

void dequantize_q4_1(const void* qv, const uint16_t* scale, const uint16_t* min, int64_t n,
                     float* y) {
  const auto* q = static_cast<const uint8_t*>(qv);
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const float d = f16_to_f32(scale[b]), m = f16_to_f32(min[b]);
    for (int64_t i = 0; i < kBlock; ++i)
      y[b * kBlock + i] = d * static_cast<float>(unpack4(q + b * kBlock / 2, i)) + m;
  }
}

void quantize_bf16(const float* x, int64_t n, void* q, uint16_t*, uint16_t*) {
  f32_to_bf16(x, static_cast<uint16_t*>(q), n);
}

void dequantize_bf16(const void* q, const uint16_t*, const uint16_t*, int64_t n, float* y) {
  bf16_to_f32(static_cast<const uint16_t*>(q), y, n);
}

const BlockFormatTraits kTraits[] = {
    {BlockFormat::BF16, "bf16", 1, 1, 2, DType::BF16, 1, DType::BF16, false, quantize_bf16,
     dequantize_bf16},
    {BlockFormat::E4M3_128x128, "fp8_128x128", 128, 128, 128 * 128 + 4, DType::F8_E4M3, 1,
     DType::F32, false, nullptr, nullptr},
    {BlockFormat::Q8_0, "q8_0", kBlock, 1, kBlock + 2, DType::I8, 1, DType::F16, false,
     quantize_q8_0, dequantize_q8_0},
    {BlockFormat::Q4_0, "q4_0", kBlock, 1, kBlock / 2 + 2, DType::U8, 2, DType::F16, false,
     quantize_q4_0, dequantize_q4_0},
    {BlockFormat::Q4_1, "q4_1", kBlock, 1, kBlock / 2 + 4, DType::U8, 2, DType::F16, true,
     quantize_q4_1, dequantize_q4_1},
};

}  // namespace

const BlockFormatTraits& block_format_traits(BlockFormat f) {
  return kTraits[static_cast<size_t>(f)];
}

std::optional<BlockFormat> block_format_from_name(std::string_view name) {
  for (const auto& t : kTraits)
    if (name == t.name) return t.format;
  return std::nullopt;
}

std::optional<BlockFormat> int_block_format(DType quant_dtype, bool has_min) {
  if (quant_dtype == DType::I8 && !has_min) return BlockFormat::Q8_0;
  if (quant_dtype == DType::U8) return has_min ? BlockFormat::Q4_1 : BlockFormat::Q4_0;
  return std::nullopt;
}

float dequantize_value(BlockFormat f, const void* q, const uint16_t* scale, const uint16_t* min,
                       int64_t j) {
  const int64_t b = j / kBlock, i = j % kBlock;
  const float d = f16_to_f32(scale[b]);
  switch (f) {
    case BlockFormat::Q8_0:
      return d * static_cast<float>(static_cast<const int8_t*>(q)[j]);
    case BlockFormat::Q4_0:
      return d *
             static_cast<float>(unpack4(static_cast<const uint8_t*>(q) + b * kBlock / 2, i) - 8);
    case BlockFormat::Q4_1:
      return d * static_cast<float>(unpack4(static_cast<const uint8_t*>(q) + b * kBlock / 2, i)) +
             f16_to_f32(min[b]);
    default:
      throw Error("dequantize_value: " + std::string(block_format_traits(f).name) +
                  " is not an integer block format");
  }
}

}  // namespace dsv3

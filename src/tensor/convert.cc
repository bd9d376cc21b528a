#include "tensor/convert.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "base/error.h"
#include "tensor/fp8.h"
#include "tensor/half.h"

namespace dsv3 {
namespace {

// Mapped files give no alignment guarantee for 2- and 8-byte elements, so those are copied through
// a small aligned chunk (memcpy is the defined way to read unaligned data).
constexpr int64_t kChunk = 4096;

template <typename T, typename F>
void each_chunk_in(const void* in, int64_t n, F&& f) {
  T buf[kChunk];
  const auto* p = static_cast<const std::byte*>(in);
  for (int64_t i = 0; i < n; i += kChunk) {
    const int64_t m = std::min(kChunk, n - i);
    std::memcpy(buf, p + i * sizeof(T), static_cast<size_t>(m) * sizeof(T));
    f(buf, i, m);
  }
}

template <typename T, typename F>
void each_chunk_out(void* out, int64_t n, F&& f) {
  T buf[kChunk];
  auto* p = static_cast<std::byte*>(out);
  for (int64_t i = 0; i < n; i += kChunk) {
    const int64_t m = std::min(kChunk, n - i);
    f(buf, i, m);
    std::memcpy(p + i * sizeof(T), buf, static_cast<size_t>(m) * sizeof(T));
  }
}

[[noreturn]] void not_float(DType t, const char* what) {
  throw Error(std::string(what) + ": dtype " + std::string(dtype_name(t)) + " is not a float type",
              "only F64, F32, F16, BF16, F8_E4M3 and F8_E5M2 convert to and from f32");
}

}  // namespace

void convert_to_f32(DType src, const void* in, float* out, int64_t n) {
  switch (src) {
    case DType::F32:
      std::memcpy(out, in, static_cast<size_t>(n) * 4);
      return;
    case DType::F64:
      each_chunk_in<double>(in, n, [&](const double* b, int64_t i, int64_t m) {
        for (int64_t j = 0; j < m; ++j) out[i + j] = static_cast<float>(b[j]);
      });
      return;
    case DType::F16:
      each_chunk_in<uint16_t>(
          in, n, [&](const uint16_t* b, int64_t i, int64_t m) { f16_to_f32(b, out + i, m); });
      return;
    case DType::BF16:
      each_chunk_in<uint16_t>(
          in, n, [&](const uint16_t* b, int64_t i, int64_t m) { bf16_to_f32(b, out + i, m); });
      return;
    case DType::F8_E4M3:
      e4m3_to_f32(static_cast<const uint8_t*>(in), out, n);
      return;
    case DType::F8_E5M2:
      e5m2_to_f32(static_cast<const uint8_t*>(in), out, n);
      return;
    default:
      not_float(src, "convert_to_f32");
  }
}

void convert_from_f32(DType dst, const float* in, void* out, int64_t n) {
  switch (dst) {
    case DType::F32:
      std::memcpy(out, in, static_cast<size_t>(n) * 4);
      return;
    case DType::F64:
      each_chunk_out<double>(out, n, [&](double* b, int64_t i, int64_t m) {
        for (int64_t j = 0; j < m; ++j) b[j] = in[i + j];
      });
      return;
    case DType::F16:
      each_chunk_out<uint16_t>(
          out, n, [&](uint16_t* b, int64_t i, int64_t m) { f32_to_f16(in + i, b, m); });
      return;
    case DType::BF16:
      each_chunk_out<uint16_t>(
          out, n, [&](uint16_t* b, int64_t i, int64_t m) { f32_to_bf16(in + i, b, m); });
      return;
    case DType::F8_E4M3:
      f32_to_e4m3(in, static_cast<uint8_t*>(out), n);
      return;
    case DType::F8_E5M2:
      f32_to_e5m2(in, static_cast<uint8_t*>(out), n);
      return;
    default:
      not_float(dst, "convert_from_f32");
  }
}

}  // namespace dsv3

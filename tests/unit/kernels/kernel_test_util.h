// Helpers shared by the kernel tests that run every table (test_cpu_kernels.cc, the head-batched
// and weight-gradient tests): random inputs, weights in every storage dtype, the float32
// summation-order bound, and the tables this CPU runs. test_kernels.cc keeps its own weight maker,
// which decodes every dtype independently of weight_block_f32.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "base/rng.h"
#include "kernels/best_kernels.h"
#include "kernels/kernels.h"
#include "tensor/convert.h"

namespace dsv3::test {

constexpr double kU = 0x1p-24;  // unit roundoff of float32

// Any order of summing k float32 products (FMA or not) is within gamma(k) * sum |x_i w_i| of the
// exact sum, gamma(k) = k u / (1 - k u).
// x rounded to BF16, nearest even: what the AMX matmul multiplies BF16 weights by (kernels/cpu/
// cpu.h). Inputs here are normal numbers, so the instructions' flush of subnormals does not arise.
inline float round_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000u;
  std::memcpy(&x, &u, 4);
  return x;
}

inline double gamma(int64_t k) {
  return k * kU / (1 - k * kU);
}

inline std::vector<float> randn(size_t n, uint64_t seed) {
  Rng r(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(r.normal());
  return v;
}

// A random weight in storage dtype `dt` (rounded from normal floats; FP8 with random block scales
// of 128 x 128) and its dequantised values. The values come from weight_block_f32, which
// test_kernels.cc checks against an independent decoding of every dtype.
struct TestWeight {
  std::vector<unsigned char> data;
  std::vector<float> scale;
  std::vector<float> value;  // [rows, cols] as float32, exactly what the kernels multiply by
  WeightRef ref;
};

inline TestWeight make_weight(DType dt, int64_t rows, int64_t cols, uint64_t seed) {
  TestWeight w;
  Rng r(seed);
  const auto f = randn(rows * cols, seed + 1);
  w.data.resize(rows * cols * dtype_size(dt));
  convert_from_f32(dt, f.data(), w.data.data(), rows * cols);
  if (dt == DType::F8_E4M3) {
    w.scale.resize(((rows + 127) / 128) * ((cols + 127) / 128));
    for (auto& s : w.scale) s = static_cast<float>(0.001 + r.uniform() * 0.01);
  }
  w.ref = WeightRef{dt, w.data.data(), rows, cols, w.scale.empty() ? nullptr : w.scale.data()};
  w.value.resize(rows * cols);
  weight_block_f32(w.ref, 0, rows, 0, cols, w.value.data());
  return w;
}

// The table called `name` ("ref" or "cpu"), or nullptr where this CPU cannot run it.
inline const Kernels* table(const std::string& name) {
  if (name == "ref") return &ref_kernels();
  return cpu_kernels_supported() ? &cpu_kernels() : nullptr;
}

}  // namespace dsv3::test

#define REQUIRE_AVX512()                                \
  do {                                                  \
    if (!cpu_kernels_supported()) {                     \
      GTEST_SKIP() << "no AVX-512 F/BW/VL on this CPU"; \
    }                                                   \
  } while (0)

// The AVX-512 kernels (kernels/cpu): faster versions of the hot ops, filled into cpu_kernels()
// next to ref entries for the ops not worth a SIMD version. Every function here is compiled for
// AVX-512 F/BW/VL (a target pragma in its file, not a global flag) and may only be called after
// cpu_kernels_supported() said yes.
#pragma once
#include "kernels/kernels.h"

namespace dsv3::cpu {

void matmul(float* y, const float* x, const WeightRef& w, int64_t T, ThreadPool& pool);
void matmul_xw(float* y, int64_t y_stride, const float* x, int64_t x_stride, const WeightRef& w,
               int64_t T, ThreadPool& pool);
void rmsnorm(float* y, int64_t y_stride, const float* x, int64_t x_stride, const float* g,
             int64_t T, int64_t n, float eps);
void softmax(float* x, int64_t T, int64_t n);
void sigmoid(float* x, int64_t n);
void swiglu(float* gate, const float* up, int64_t n);
void attention(const AttentionArgs& a, ThreadPool& pool);

}  // namespace dsv3::cpu

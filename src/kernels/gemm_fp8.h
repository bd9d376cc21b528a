// FP8 GEMMs of the training recipe and of native FP8 inference (SPEC §3.1, TR §3.3.2), named by
// operand dtype and tile granularity: C [M, N] = (accumulate ? C : 0) + A · Bᵀ, A [M, K] and
// B [N, K] E4M3 tiles (tensor/fp8_tiles.h, Fp8Matrix), K-contiguous as the tensor cores read them.
//   gemm_e4m3_1x128_128x128  activations (1x128 tiles) x weights (128x128 blocks): Fprop, Dgrad,
//                            native FP8 inference (DeepSeek's fp8_gemm)
//   gemm_e4m3_1x128_1x128    Wgrad: both operands tiled 1x128 along K = tokens, i.e. the cached
//                            inputs and the output gradients regrouped into 128x1 tiles
//   gemm_e4m3                any tiling whose scales are constant over each K interval
// Promotion (TR §3.3.2, DeepGEMM): the products of each interval of nc (N_C, 128) elements of K
// are summed, the interval's partial sum is multiplied by the two tiles' scales and added to an
// FP32 accumulator.
#pragma once
#include <cstdint>

#include "kernels/kernels.h"
#include "tensor/fp8_tiles.h"

namespace dsv3 {

inline constexpr int64_t kFp8PromoteEvery = 128;  // N_C

// The reference, one dot product at a time in the order of the hardware, and an emulation of the
// tensor cores' limited accumulation: with acc_bits > 0 the running sum inside an interval keeps
// acc_bits significant bits, truncated toward zero after every product is added (Hopper aligns
// addends to the larger exponent and drops the bits shifted out; ~14 bits per SPEC §3.1). nc = 0
// never promotes: all of K is one interval (the unpromoted baseline). acc_bits = 0: FP32 sums.
struct Fp8GemmEmulation {
  int64_t nc = kFp8PromoteEvery;
  int acc_bits = 0;
};
void gemm_e4m3_ref(const Fp8Matrix& a, const Fp8Matrix& b, float* c, int64_t ldc, bool accumulate,
                   const Fp8GemmEmulation& emu);

// The fast path: E4M3 codes decode exactly into BF16, so each interval is one kernels.gemm_bf16
// call on the decoded codes (exact products, FP32 sums: AMX or AVX512-BF16 where the CPU has
// them), then scaled and promoted. Intervals that share every scale (per-tensor tiling) are one
// call. A few rows (decoding) take a direct path instead: each output a dot product over codes
// decoded on the fly, FP32 sums. Equals gemm_e4m3_ref with acc_bits 0 up to the order of the FP32
// sums.
void gemm_e4m3(const Kernels& k, const Fp8Matrix& a, const Fp8Matrix& b, float* c, int64_t ldc,
               bool accumulate, ThreadPool& pool, int64_t nc = kFp8PromoteEvery);
void gemm_e4m3_1x128_128x128(const Kernels& k, const Fp8Matrix& a, const Fp8Matrix& b, float* c,
                             int64_t ldc, bool accumulate, ThreadPool& pool);
void gemm_e4m3_1x128_1x128(const Kernels& k, const Fp8Matrix& a, const Fp8Matrix& b, float* c,
                           int64_t ldc, bool accumulate, ThreadPool& pool);

}  // namespace dsv3

// The FP8 training recipe's quantizers (SPEC §3.1, DeepSeek-V3 TR §3.3.2): a matrix is cut into
// br x bc tiles, each with its own online scale, and its elements stored as E4M3 codes.
//   activations and activation gradients  1 x 128 (per row, 128 channels along K)
//   weights                               128 x 128 blocks
//   Wgrad's operands                      128 x 1 (128 tokens of one channel: K is the token axis),
//                                         the "1x128 -> 128x1 regrouping" of the cached inputs
//   per-tensor baseline                   rows x cols (one scale)
// Scale of a tile: s = max(amax, 1e-4) / fmt_max (fmt_max 448 for E4M3), amax over the tile's
// finite values; with pow2 (UE8M0 scales) s is rounded up to a power of two, 2^ceil(log2 s), so
// dividing by it is exact and |x / s| still fits. q = round(x / s) to nearest even, saturating at
// +-fmt_max, as DeepSeek's inference/kernel.py act_quant (y = x / s). x ~= q * s.
// E5M6 (5 exponent bits, bias 15, 6 mantissa bits, max 65024, no inf) is the custom format the TR
// keeps the o_proj input in for the backward pass; it is only ever materialised as values here.
#pragma once
#include <cstdint>
#include <vector>

#include "base/thread_pool.h"

namespace dsv3 {

enum class MiniFloat : uint8_t { E4M3, E5M6 };

float minifloat_max(MiniFloat f);  // 448, 65024
// x rounded to the nearest value of f, ties to even, subnormals kept, finite overflow and +-inf
// saturating to +-minifloat_max(f), NaN -> NaN.
float round_minifloat(float x, MiniFloat f);
// s = max(amax, 1e-4) / minifloat_max(f), rounded up to a power of two when pow2.
float tile_scale(float amax, MiniFloat f, bool pow2);

// A read-only view of an E4M3 matrix [rows, cols] in br x bc tiles: codes q[r * cols + c] and
// float32 scales scale[(r / br) * tiles_c + c / bc]; x[r, c] ~= e4m3(q) * scale. Edge tiles are
// partial. (An FP8 checkpoint weight is one with 128x128 tiles and its scale_inv as scales.)
struct Fp8Matrix {
  const uint8_t* q = nullptr;
  const float* scale = nullptr;
  int64_t rows = 0, cols = 0, br = 1, bc = 128;
  int64_t tiles_c() const { return (cols + bc - 1) / bc; }
  float scale_at(int64_t r, int64_t c) const { return scale[(r / br) * tiles_c() + c / bc]; }
};

// The same layout owning its codes and scales (what the quantizers write).
struct Fp8Tiles {
  int64_t rows = 0, cols = 0, br = 1, bc = 128;
  std::vector<uint8_t> q;
  std::vector<float> scale;
  int64_t tiles_r() const { return (rows + br - 1) / br; }
  int64_t tiles_c() const { return (cols + bc - 1) / bc; }
  float scale_at(int64_t r, int64_t c) const { return scale[(r / br) * tiles_c() + c / bc]; }
  Fp8Matrix view() const { return {q.data(), scale.data(), rows, cols, br, bc}; }
};

// Quantizes x [rows, cols] (row r at x + r * ld) into out (resized). br, bc >= 1. The work is
// spread over pool when one is given.
void quantize_e4m3_tiles(const float* x, int64_t rows, int64_t cols, int64_t ld, int64_t br,
                         int64_t bc, bool pow2, Fp8Tiles& out, ThreadPool* pool = nullptr);
// out [rows, cols] = e4m3(q) * scale.
void dequantize_e4m3_tiles(const Fp8Tiles& t, float* out);
// The same values transposed: [cols, rows] in bc x br tiles (exact: codes and scales move).
Fp8Tiles transpose_tiles(const Fp8Tiles& t);
// x [rows, cols] replaced by its br x bc tile quantization in f (values q * s, as float32).
void fake_quantize(float* x, int64_t rows, int64_t cols, int64_t br, int64_t bc, MiniFloat f,
                   bool pow2);

}  // namespace dsv3

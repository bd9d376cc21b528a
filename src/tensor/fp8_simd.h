// AVX-512 versions of the E4M3 loops the FP8 training recipe runs on every activation (SPEC §3.1):
// encoding (minifloat::e4m3_encode), decoding (the e4m3_to_f32 table) and the finite amax of a
// tile. Every result is bit for bit the scalar one: the same IEEE division and the same
// branch-free rounding, 16 lanes at a time. available() says whether the CPU runs them (checked
// once, at run time); the callers (fp8.cc, fp8_tiles.cc) keep their scalar loops as the fallback.
// Internal to the tensor module.
#pragma once
#include <cstdint>

namespace dsv3::fp8_simd {

bool available();  // AVX-512 F and BW

// out[i] = e4m3_encode(x[i] / s[i]) (a scale per element: any tiling's row), or of x[i] alone.
void encode_div(const float* x, const float* s, uint8_t* out, int64_t n);
void encode(const float* x, uint8_t* out, int64_t n);
// out[i] = e4m3_to_f32(in[i]).
void decode(const uint8_t* in, float* out, int64_t n);
// max(m, max |x[i]| over the finite x[i]).
float amax(const float* x, int64_t n, float m);
// amax[i] = max(amax[i], |x[i]|) for the finite x[i] (one running max per column).
void amax_columns(const float* x, float* amax, int64_t n);

// out [cols, rows] (row stride ldo) = in [rows, cols] (row stride ldi) transposed, for bytes.
void transpose_bytes(const uint8_t* in, int64_t rows, int64_t cols, int64_t ldi, uint8_t* out,
                     int64_t ldo);

}  // namespace dsv3::fp8_simd

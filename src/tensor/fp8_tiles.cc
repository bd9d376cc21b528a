// The FP8 recipe's tile quantizers (see fp8_tiles.h, SPEC §3.1).
#include "tensor/fp8_tiles.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <functional>
#include <limits>

#include "base/error.h"
#include "tensor/block_scale.h"
#include "tensor/fp8.h"
#include "tensor/fp8_simd.h"
#include "tensor/minifloat.h"

namespace dsv3 {
namespace {

constexpr float kE5M6Max = 65024.0f;  // (2 - 2^-6) * 2^15
constexpr uint32_t kE5M6MaxCode = (30u << 6) | 63u;

// Max |x| over the finite values of the tile [r0, r1) x [c0, c1) of x (row stride ld).
float tile_amax(const float* x, int64_t ld, int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
  float amax = 0.0f;
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t c = c0; c < c1; ++c) {
      const float a = std::fabs(x[r * ld + c]);
      if (a > amax && std::isfinite(a)) amax = a;  // NaN compares false: skipped too
    }
  return amax;
}

void check_tiling(int64_t rows, int64_t cols, int64_t br, int64_t bc) {
  DSV3_CHECK(rows >= 0 && cols >= 0 && br >= 1 && bc >= 1,
             "fp8 tiles: bad shape [" + std::to_string(rows) + ", " + std::to_string(cols) +
                 "] or tile " + std::to_string(br) + "x" + std::to_string(bc));
}

}  // namespace

float minifloat_max(MiniFloat f) {
  return f == MiniFloat::E4M3 ? kE4M3Max : kE5M6Max;
}

float round_minifloat(float x, MiniFloat f) {
  if (f == MiniFloat::E4M3) return e4m3_to_f32(f32_to_e4m3(x));
  if (std::isnan(x)) return x;
  const uint32_t abs_bits = std::bit_cast<uint32_t>(x) & 0x7FFFFFFFu;
  if (abs_bits >= 0x7F800000u) return std::copysign(kE5M6Max, x);
  const uint32_t code = std::min(minifloat::round_abs(abs_bits, 6, 15), kE5M6MaxCode);
  const int e = static_cast<int>(code >> 6), m = static_cast<int>(code & 63u);
  const float v = e == 0 ? std::ldexp(static_cast<float>(m), -14 - 6)
                         : std::ldexp(static_cast<float>(64 + m), e - 15 - 6);
  return std::copysign(v, x);
}

float tile_scale(float amax, MiniFloat f, bool pow2) {
  const float s = std::max(amax, kFp8AmaxFloor) / minifloat_max(f);
  if (!pow2) return s;
  int e = 0;
  const float m = std::frexp(s, &e);  // s = m * 2^e, m in [0.5, 1)
  return std::ldexp(1.0f, m == 0.5f ? e - 1 : e);
}

namespace {

// Runs fn(begin, end) over [0, n) on pool, or on the caller without one.
void run(ThreadPool* pool, int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (pool)
    pool->parallel_for(n, fn);
  else
    fn(0, n);
}

// Max |x| over the finite values of rows [r0, r1) for each br-wide tile column j into amax[j]
// (max-ed with what is there).
void band_amax(const float* x, int64_t ld, int64_t cols, int64_t bc, int64_t r0, int64_t r1,
               float* amax) {
  const int64_t tc = (cols + bc - 1) / bc;
  constexpr float kMaxFinite = std::numeric_limits<float>::max();
  const bool simd = fp8_simd::available();
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * ld;
    if (bc == 1 && simd) {
      fp8_simd::amax_columns(xr, amax, cols);
      continue;
    }
    if (bc == 1) {  // Wgrad's 128x1 tiles: one running max per column
      for (int64_t c = 0; c < cols; ++c) {
        const float a = std::fabs(xr[c]);
        amax[c] = a <= kMaxFinite && a > amax[c] ? a : amax[c];  // inf and NaN left out
      }
      continue;
    }
    for (int64_t j = 0; j < tc; ++j) {
      const int64_t c1 = std::min(cols, (j + 1) * bc);
      if (simd) {
        amax[j] = fp8_simd::amax(xr + j * bc, c1 - j * bc, amax[j]);
        continue;
      }
      float m = amax[j];
      for (int64_t c = j * bc; c < c1; ++c) {
        const float a = std::fabs(xr[c]);
        m = a <= kMaxFinite && a > m ? a : m;
      }
      amax[j] = m;
    }
  }
}

// Rows [r0, r1) of x quantized with the tile scales s[j] of their band (one loop over a row with
// the scale of each column, so that every tiling vectorizes alike).
void quantize_rows(const float* x, int64_t ld, int64_t cols, int64_t bc, int64_t r0, int64_t r1,
                   const float* s, uint8_t* q) {
  std::vector<float> sc(static_cast<size_t>(cols));
  for (int64_t j = 0; j * bc < cols; ++j)
    std::fill(sc.begin() + j * bc, sc.begin() + std::min(cols, (j + 1) * bc), s[j]);
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * ld;
    uint8_t* qr = q + r * cols;
    if (fp8_simd::available()) {
      fp8_simd::encode_div(xr, sc.data(), qr, cols);
      continue;
    }
    for (int64_t c = 0; c < cols; ++c) qr[c] = minifloat::e4m3_encode(xr[c] / sc[c]);
  }
}

}  // namespace

// Cache-friendly for every tiling: a band of br rows is read row by row, first for the amax of
// each of its tiles, then to quantize. Many bands run in parallel; a few large ones (per-tensor
// scaling, Wgrad's 128x1 tiles over few tokens) are each split by rows instead.
void quantize_e4m3_tiles(const float* x, int64_t rows, int64_t cols, int64_t ld, int64_t br,
                         int64_t bc, bool pow2, Fp8Tiles& out, ThreadPool* pool) {
  check_tiling(rows, cols, br, bc);
  out.rows = rows, out.cols = cols, out.br = br, out.bc = bc;
  out.q.resize(static_cast<size_t>(rows * cols));
  const int64_t tc = out.tiles_c(), tr = out.tiles_r();
  out.scale.resize(static_cast<size_t>(tr * tc));
  auto scales = [&](const float* amax, float* s) {
    for (int64_t j = 0; j < tc; ++j) s[j] = tile_scale(amax[j], MiniFloat::E4M3, pow2);
  };
  if (!pool || tr >= 4 * pool->size()) {
    run(pool, tr, [&](int64_t b0, int64_t b1) {
      std::vector<float> amax(static_cast<size_t>(tc));
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t r0 = b * br, r1 = std::min(rows, r0 + br);
        std::fill(amax.begin(), amax.end(), 0.0f);
        band_amax(x, ld, cols, bc, r0, r1, amax.data());
        float* s = out.scale.data() + b * tc;
        scales(amax.data(), s);
        quantize_rows(x, ld, cols, bc, r0, r1, s, out.q.data());
      }
    });
    return;
  }
  for (int64_t b = 0; b < tr; ++b) {
    const int64_t r0 = b * br, n = std::min(rows, r0 + br) - r0;
    const int64_t parts = std::min<int64_t>(n, 4 * pool->size());
    std::vector<float> amax(static_cast<size_t>(parts * tc), 0.0f);
    pool->parallel_for(parts, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p)
        band_amax(x, ld, cols, bc, r0 + n * p / parts, r0 + n * (p + 1) / parts,
                  amax.data() + p * tc);
    });
    for (int64_t p = 1; p < parts; ++p)
      for (int64_t j = 0; j < tc; ++j) amax[j] = std::max(amax[j], amax[p * tc + j]);
    float* s = out.scale.data() + b * tc;
    scales(amax.data(), s);
    pool->parallel_for(n, [&](int64_t i0, int64_t i1) {
      quantize_rows(x, ld, cols, bc, r0 + i0, r0 + i1, s, out.q.data());
    });
  }
}

void dequantize_e4m3_tiles(const Fp8Tiles& t, float* out) {
  e4m3_to_f32(t.q.data(), out, t.rows * t.cols);
  const int64_t tc = t.tiles_c();
  for (int64_t r = 0; r < t.rows; ++r) {
    const float* s = t.scale.data() + (r / t.br) * tc;
    for (int64_t j = 0; j < tc; ++j) {
      const int64_t c1 = std::min(t.cols, (j + 1) * t.bc);
      for (int64_t c = j * t.bc; c < c1; ++c) out[r * t.cols + c] *= s[j];
    }
  }
}

Fp8Tiles transpose_tiles(const Fp8Tiles& t) {
  Fp8Tiles o;
  o.rows = t.cols, o.cols = t.rows, o.br = t.bc, o.bc = t.br;
  o.q.resize(t.q.size());
  o.scale.resize(t.scale.size());
  if (fp8_simd::available()) {
    fp8_simd::transpose_bytes(t.q.data(), t.rows, t.cols, t.cols, o.q.data(), t.rows);
  } else {
    constexpr int64_t kB = 64;  // blocked, so that neither side walks a column of cache lines
    for (int64_t r0 = 0; r0 < t.rows; r0 += kB)
      for (int64_t c0 = 0; c0 < t.cols; c0 += kB)
        for (int64_t r = r0; r < std::min(t.rows, r0 + kB); ++r)
          for (int64_t c = c0; c < std::min(t.cols, c0 + kB); ++c)
            o.q[c * t.rows + r] = t.q[r * t.cols + c];
  }
  for (int64_t i = 0; i < t.tiles_r(); ++i)
    for (int64_t j = 0; j < t.tiles_c(); ++j)
      o.scale[j * t.tiles_r() + i] = t.scale[i * t.tiles_c() + j];
  return o;
}

void fake_quantize(float* x, int64_t rows, int64_t cols, int64_t br, int64_t bc, MiniFloat f,
                   bool pow2) {
  check_tiling(rows, cols, br, bc);
  for (int64_t r0 = 0; r0 < rows; r0 += br)
    for (int64_t c0 = 0; c0 < cols; c0 += bc) {
      const int64_t r1 = std::min(rows, r0 + br), c1 = std::min(cols, c0 + bc);
      const float s = tile_scale(tile_amax(x, cols, r0, r1, c0, c1), f, pow2);
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c)
          x[r * cols + c] = round_minifloat(x[r * cols + c] / s, f) * s;
    }
}

}  // namespace dsv3

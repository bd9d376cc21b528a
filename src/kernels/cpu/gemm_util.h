// What the training GEMMs of kernels/cpu (gemm.cc, gemm_bf16.cc, gemm_amx.cc) share: scratch
// buffers for packed operands and the split of the output into tasks for the pool. Plain C++ (no
// SIMD), included by files compiled for different targets.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "kernels/kernels.h"

namespace dsv3::cpu {

// A 64-byte aligned buffer of at least `bytes`, kept by the calling thread between calls (packing
// a weight on every call would otherwise fault fresh pages in each time); `slot` tells apart the
// buffers one call holds at once. Contents are undefined.
inline void* gemm_scratch(int slot, size_t bytes) {
  struct Buf {
    std::unique_ptr<void, decltype(&std::free)> p{nullptr, &std::free};
    size_t size = 0;
  };
  thread_local Buf bufs[4];
  Buf& b = bufs[slot];
  if (b.size < bytes) {
    const size_t size = (std::max(bytes, b.size + b.size / 2) + 63) / 64 * 64;
    b.p.reset(std::aligned_alloc(64, size));
    b.size = b.p ? size : 0;
    if (!b.p) throw std::bad_alloc();
  }
  return b.p.get();
}

// The output split into tasks: row bands of `band` rows (a multiple of the micro-tile's) times
// column blocks of `block` columns, block-major, so a thread's contiguous range of tasks is a run
// of bands in one block or a few (the kernels keep a block's packed columns in L2 over its
// bands). Columns are split finer only when there are too few bands to share among the threads.
struct GemmPlan {
  int64_t band = 0, block = 0, n_bands = 0, n_blocks = 0;
  int64_t tasks() const { return n_bands * n_blocks; }
};

inline GemmPlan plan_gemm(int64_t M, int64_t N, int64_t band, int64_t block, int64_t col_unit,
                          int threads) {
  GemmPlan p;
  p.band = band;
  p.n_bands = (M + band - 1) / band;
  p.block = block;
  if (p.n_bands < 4 * threads) {  // few rows (a Wgrad of a narrow layer): share the columns too
    const int64_t units = (N + col_unit - 1) / col_unit;
    const int64_t per = (units + 2 * threads - 1) / (2 * threads);
    p.block = std::min(block, std::max<int64_t>(1, per) * col_unit);
  }
  p.n_blocks = (N + p.block - 1) / p.block;
  return p;
}

// The BF16 GEMMs' packed operands (gemm_bf16.cc): both rounded to BF16 and stored as 32-bit pairs
// of neighbouring k (low half the even k), k padded with zeros to Kp = a multiple of 32, in tiles
// of 16 x 16 pairs (1 KiB, one AMX tile). A: [M/16][Kp/32] tiles of [16 rows][16 pairs] (an AMX
// A tile, rows 64 bytes apart); B: [N/16][Kp/32] tiles of [16 pairs][16 columns] (an AMX B tile in
// its pair-interleaved layout; the tiles of one 16-column panel follow each other, so a panel is
// [Kp/2][16] like the FP32 GEMM's). Rows and columns past M and N are zero.
struct PackedBf16 {
  // A's tiles: (m16, k32) at a + ((m16 - a_m16) * a_kb + k32 - a_k32) * 256, all of A or (a null
  // on entry to a segment: see run_gemm_bf16) the part a segment packed for itself.
  const uint32_t* a = nullptr;
  int64_t a_m16 = 0, a_k32 = 0, a_kb = 0;
  const uint32_t* b = nullptr;
  int64_t kb = 0;  // Kp / 32, the tiles per 16 rows or columns
  const uint32_t* a_tile(int64_t m16, int64_t k32) const {
    return a + ((m16 - a_m16) * a_kb + k32 - a_k32) * 256;
  }
  const uint32_t* b_tile(int64_t n16, int64_t k32) const { return b + (n16 * kb + k32) * 256; }
};

// Packs A's tiles (m16, k32) for m16 in [m16_0, m16_1), k32 in [k0, k1) into out, [m16][k32]
// (a not transposed only: rows of a along k, read front to back).
void pack_a_tiles(const GemmArgs& g, uint32_t* out, int64_t m16_0, int64_t m16_1, int64_t k0,
                  int64_t k1);

// B tiles of the rows of a matrix with k along them (element (row r, k) at p[r * ld + k], rows x
// K): tile (x16, k32) for x16 in [x16_0, x16_1) and every k32 < ceil(K / 32), at out + ((x16 -
// x16_0) * ceil(K / 32) + k32) * 256, [16 pairs][16 rows] (rows past `rows`, k past K zero): the
// activations of an inference matmul, whose weight rows are the A tiles (matmul_amx.cc).
void pack_rows_as_b_tiles(const float* p, int64_t ld, int64_t rows, int64_t K, uint32_t* out,
                          int64_t x16_0, int64_t x16_1);

// Rows [m0, m1) x columns [n0, n1) of c from packed operands (m0 a multiple of the plan's band).
using Bf16Segment = void (*)(const GemmArgs& g, const PackedBf16& p, int64_t m0, int64_t m1,
                             int64_t n0, int64_t n1);

// Packs B, and A unless `segment_packs_a` and a is not transposed (then the segments get a null
// p.a and pack their own rows' tiles as they go, into L1, instead of a pass through memory),
// then runs `segment` over the tasks of plan_gemm(band, block, col_unit); zero sizes handled.
// Defined in gemm_bf16.cc (needs AVX512-BF16).
void run_gemm_bf16(const GemmArgs& g, ThreadPool& pool, int64_t band, int64_t block,
                   int64_t col_unit, bool segment_packs_a, Bf16Segment segment);

// Multiply-adds below which an op stays on the calling thread (as run_tasks, cpu.h).
constexpr int64_t kGemmSerialMacs = int64_t{1} << 18;

}  // namespace dsv3::cpu

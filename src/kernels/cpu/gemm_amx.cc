// BF16 training GEMM on AMX tiles (TDPBF16PS: a 16 x 32 BF16 tile times a 32 x 16 one into 16 x
// 16 FP32 sums, 8192 multiply-adds per instruction), on the operands packed by gemm_bf16.cc (its
// 1 KiB tiles are AMX tiles as they lie).
//
// Tile registers: 0-3 hold a 2 x 2 block of C (32 x 32), 4-5 two A tiles, 6-7 two B tiles, so each
// 32-wide step of k loads 4 tiles for 4 products. k goes in passes (see kKbPassShort); in a pass a
// thread's rows go 32 at a time (their A tiles, packed here from a row-major a, else taken from the
// packed aᵀ) across a block of 512 columns (its B tiles, in L2). C tiles
// start from zero, or from c (accumulating, or after the first pass) through tile loads with c's
// own stride; tiles that stick out of c go through a 16 x 16 buffer.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/gemm_util.h"

#pragma GCC target( \
    "avx512f,avx512bw,avx512vl,avx512bf16,amx-tile,amx-bf16,prfchw")  // after includes

#include "kernels/cpu/amx_tiles.h"

namespace dsv3::cpu {

bool amx_supported() {
  static const bool ok = [] {
    const char* env = std::getenv("DSV3_AMX");
    if (env != nullptr && std::strcmp(env, "0") == 0) return false;
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!avx512_bf16_supported() || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    if (!(d & (1u << 22)) || !(d & (1u << 24))) return false;  // AMX-BF16, AMX-TILE
#ifdef __linux__
    // Linux hands out the 8 KiB tile state only to processes that ask (ARCH_REQ_XCOMP_PERM for
    // XFEATURE_XTILEDATA); the permission covers every thread of the process.
    constexpr long kReqXcompPerm = 0x1023, kXtileData = 18;
    return syscall(SYS_arch_prctl, kReqXcompPerm, kXtileData) == 0;
#else
    return false;
#endif
  }();
  return ok;
}

namespace {

constexpr int64_t kBand = 32, kBlock = 512;
// k32 tiles per pass: 8 (256 k) keep a band's A tiles (16 KiB) in L1 while c stays in cache between
// passes; over 4096 k (the LM head's Dgrad, whose c is large and reloaded each pass) 32.
constexpr int64_t kKbPassShort = 8, kKbPassLong = 32;

// The C tile at c (rows x cols of it inside c) into tile register T: from c, from a zero-padded
// copy, or zero.
template <int T>
void load_c(const float* c, int64_t ldc, int64_t rows, int64_t cols, bool load, float* buf) {
  if (!load) {
    tile_zero<T>();
  } else if (rows == 16 && cols == 16) {
    tile_load<T>(c, ldc * sizeof(float));
  } else {
    std::memset(buf, 0, 256 * sizeof(float));
    for (int64_t i = 0; i < rows; ++i) std::memcpy(buf + i * 16, c + i * ldc, cols * sizeof(float));
    tile_load<T>(buf, 64);
  }
}

template <int T>
void store_c(float* c, int64_t ldc, int64_t rows, int64_t cols, float* buf) {
  if (rows == 16 && cols == 16) {
    tile_store<T>(c, ldc * sizeof(float));
  } else {
    tile_store<T>(buf, 64);
    for (int64_t i = 0; i < rows; ++i) std::memcpy(c + i * ldc, buf + i * 16, cols * sizeof(float));
  }
}

// The C block of TM x TN tiles at rows m, columns n (rows / cols of it inside c) over k tiles
// [k0, k1).
template <int TM, int TN>
void block(const GemmArgs& g, const PackedBf16& pk, int64_t m, int64_t n, int64_t rows,
           int64_t cols, int64_t k0, int64_t k1, bool load, float* buf) {
  float* c = g.c + m * g.ldc + n;
  const int64_t r0 = std::min<int64_t>(16, rows), r1 = rows - r0;
  const int64_t c0 = std::min<int64_t>(16, cols), c1 = cols - c0;
  load_c<0>(c, g.ldc, r0, c0, load, buf);
  if constexpr (TN == 2) load_c<1>(c + 16, g.ldc, r0, c1, load, buf);
  if constexpr (TM == 2) load_c<2>(c + 16 * g.ldc, g.ldc, r1, c0, load, buf);
  if constexpr (TM == 2 && TN == 2) load_c<3>(c + 16 * g.ldc + 16, g.ldc, r1, c1, load, buf);
  for (int64_t k = k0; k < k1; ++k) {
    _tile_loadd(4, pk.a_tile(m / 16, k), 64);
    _tile_loadd(6, pk.b_tile(n / 16, k), 64);
    _tile_dpbf16ps(0, 4, 6);
    if constexpr (TN == 2) {
      _tile_loadd(7, pk.b_tile(n / 16 + 1, k), 64);
      _tile_dpbf16ps(1, 4, 7);
    }
    if constexpr (TM == 2) {
      _tile_loadd(5, pk.a_tile(m / 16 + 1, k), 64);
      _tile_dpbf16ps(2, 5, 6);
    }
    if constexpr (TM == 2 && TN == 2) _tile_dpbf16ps(3, 5, 7);
  }
  store_c<0>(c, g.ldc, r0, c0, buf);
  if constexpr (TN == 2) store_c<1>(c + 16, g.ldc, r0, c1, buf);
  if constexpr (TM == 2) store_c<2>(c + 16 * g.ldc, g.ldc, r1, c0, buf);
  if constexpr (TM == 2 && TN == 2) store_c<3>(c + 16 * g.ldc + 16, g.ldc, r1, c1, buf);
}

void amx_segment(const GemmArgs& g, const PackedBf16& pk, int64_t m0, int64_t m1, int64_t n0,
                 int64_t n1) {
  configure_tiles();
  alignas(64) float buf[256];
  alignas(64) uint32_t band[2 * kKbPassLong * 256];  // the band's A tiles of a pass, if packed here
  const int64_t pass = pk.kb > 128 ? kKbPassLong : kKbPassShort;
  PackedBf16 p = pk;
  for (int64_t k0 = 0; k0 < pk.kb; k0 += pass) {
    const int64_t k1 = std::min(pk.kb, k0 + pass);
    const bool load = g.accumulate || k0 > 0;
    for (int64_t m = m0; m < m1; m += 32) {
      const int64_t rows = std::min<int64_t>(32, m1 - m);
      if (pk.a == nullptr) {
        pack_a_tiles(g, band, m / 16, (m + rows + 15) / 16, k0, k1);
        p.a = band, p.a_m16 = m / 16, p.a_k32 = k0, p.a_kb = k1 - k0;
      }
      for (int64_t n = n0; n < n1; n += 32) {
        const int64_t cols = std::min<int64_t>(32, n1 - n);
        // Ask for the next block's lines of c (to write them) while this block computes: tile
        // stores that miss the cache otherwise stall the tile unit.
        if (n + 32 < n1)
          for (int64_t i = 0; i < rows; ++i)
            for (int64_t j = 32; j < std::min<int64_t>(64, n1 - n); j += 16)
              _mm_prefetch(reinterpret_cast<const char*>(g.c + (m + i) * g.ldc + n + j),
                           _MM_HINT_ET0);
        if (rows > 16 && cols > 16)
          block<2, 2>(g, p, m, n, rows, cols, k0, k1, load, buf);
        else if (rows > 16)
          block<2, 1>(g, p, m, n, rows, cols, k0, k1, load, buf);
        else if (cols > 16)
          block<1, 2>(g, p, m, n, rows, cols, k0, k1, load, buf);
        else
          block<1, 1>(g, p, m, n, rows, cols, k0, k1, load, buf);
      }
    }
  }
  _tile_release();  // the 8 KiB tile state need not follow the thread through context switches
}

}  // namespace

void gemm_bf16_amx(const GemmArgs& g, ThreadPool& pool) {
  run_gemm_bf16(g, pool, kBand, kBlock, 32, /*segment_packs_a=*/true, amx_segment);
}

}  // namespace dsv3::cpu

// AMX tile plumbing shared by the BF16 GEMMs on tiles (gemm_amx.cc for training, matmul_amx.cc for
// inference): the tile configuration (every register 16 rows x 64 bytes) and the tile
// intrinsics, which take the register number as a literal, as templates over it. Include after
// the file's `#pragma GCC target(...,"amx-tile,amx-bf16")`, and use only where amx_supported().
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace dsv3::cpu {

struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Tiles 0-7 as 16 rows of 64 bytes (16 FP32 sums or 16 BF16 pairs per row), on this thread.
inline void configure_tiles() {
  TileConfig cfg;
  for (int t = 0; t < 8; ++t) cfg.colsb[t] = 64, cfg.rows[t] = 16;
  _tile_loadconfig(&cfg);
}

template <int T>
void tile_zero() {
  if constexpr (T == 0) _tile_zero(0);
  if constexpr (T == 1) _tile_zero(1);
  if constexpr (T == 2) _tile_zero(2);
  if constexpr (T == 3) _tile_zero(3);
}
template <int T>
void tile_load(const void* p, int64_t stride) {
  if constexpr (T == 0) _tile_loadd(0, p, stride);
  if constexpr (T == 1) _tile_loadd(1, p, stride);
  if constexpr (T == 2) _tile_loadd(2, p, stride);
  if constexpr (T == 3) _tile_loadd(3, p, stride);
}
template <int T>
void tile_store(void* p, int64_t stride) {
  if constexpr (T == 0) _tile_stored(0, p, stride);
  if constexpr (T == 1) _tile_stored(1, p, stride);
  if constexpr (T == 2) _tile_stored(2, p, stride);
  if constexpr (T == 3) _tile_stored(3, p, stride);
}

}  // namespace dsv3::cpu

// Register-only loops of independent multiply-add instructions (machine_peaks.h): the peak rate
// of each instruction family on one thread. Enough independent accumulators to cover the
// instruction's latency on every core we have seen (4-5 cycles, 2 ports: 10+), operands that
// never change (so nothing waits on memory), results kept alive through a sink.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <cpuid.h>
#include <immintrin.h>

#include <cstdint>

#include "kernels/best_kernels.h"
#include "kernels/cpu/cpu.h"

// After every include: only this file's functions use these instructions.
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512bf16,avx512vnni,amx-tile,amx-bf16,amx-int8")

#include "kernels/cpu/amx_tiles.h"

namespace dsv3::cpu {
namespace {

constexpr int kAcc = 12;  // independent accumulators per vector probe

volatile float sink_f;
volatile int sink_i;

}  // namespace

bool amx_int8_supported() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  return amx_supported() && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d & (1u << 25));
}

double probe_f32_fma(int64_t iters) {
  __m512 acc[kAcc];
  for (int j = 0; j < kAcc; ++j) acc[j] = _mm512_set1_ps(static_cast<float>(j));
  const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-3f);
  for (int64_t i = 0; i < iters; ++i)
#pragma GCC unroll 12
    for (int j = 0; j < kAcc; ++j) acc[j] = _mm512_fmadd_ps(acc[j], a, b);
  __m512 s = acc[0];
  for (int j = 1; j < kAcc; ++j) s = _mm512_add_ps(s, acc[j]);
  sink_f = _mm512_cvtss_f32(s);
  return static_cast<double>(iters) * kAcc * 16 * 2;
}

double probe_bf16_dot(int64_t iters) {
  __m512 acc[kAcc];
  for (int j = 0; j < kAcc; ++j) acc[j] = _mm512_set1_ps(static_cast<float>(j));
  const __m512bh a = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(2e-3f));
  for (int64_t i = 0; i < iters; ++i)
#pragma GCC unroll 12
    for (int j = 0; j < kAcc; ++j) acc[j] = _mm512_dpbf16_ps(acc[j], a, a);
  __m512 s = acc[0];
  for (int j = 1; j < kAcc; ++j) s = _mm512_add_ps(s, acc[j]);
  sink_f = _mm512_cvtss_f32(s);
  return static_cast<double>(iters) * kAcc * 32 * 2;
}

double probe_int8_vnni(int64_t iters) {
  __m512i acc[kAcc];
  for (int j = 0; j < kAcc; ++j) acc[j] = _mm512_set1_epi32(j);
  const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-2);
  for (int64_t i = 0; i < iters; ++i)
#pragma GCC unroll 12
    for (int j = 0; j < kAcc; ++j) acc[j] = _mm512_dpbusd_epi32(acc[j], a, b);
  __m512i s = acc[0];
  for (int j = 1; j < kAcc; ++j) s = _mm512_add_epi32(s, acc[j]);
  sink_i = _mm_cvtsi128_si32(_mm512_castsi512_si128(s));
  return static_cast<double>(iters) * kAcc * 64 * 2;
}

// Tiles 0-3 accumulate, 4-5 and 6-7 the operands (zero: the rate does not depend on the values),
// as a 2 x 2 block of a GEMM's micro-kernel with its operands already loaded.
double probe_amx(int64_t iters, bool int8) {
  configure_tiles();
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  _tile_zero(4);
  _tile_zero(5);
  _tile_zero(6);
  _tile_zero(7);
  if (int8) {
    for (int64_t i = 0; i < iters; ++i) {
      _tile_dpbssd(0, 4, 6);
      _tile_dpbssd(1, 4, 7);
      _tile_dpbssd(2, 5, 6);
      _tile_dpbssd(3, 5, 7);
    }
  } else {
    for (int64_t i = 0; i < iters; ++i) {
      _tile_dpbf16ps(0, 4, 6);
      _tile_dpbf16ps(1, 4, 7);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
  }
  alignas(64) int32_t out[256];
  _tile_stored(0, out, 64);
  sink_i = out[0];
  _tile_release();
  // 16 x 16 outputs, each 32 BF16 (or 64 INT8) products per instruction.
  return static_cast<double>(iters) * 4 * 256 * (int8 ? 64 : 32) * 2;
}

}  // namespace dsv3::cpu

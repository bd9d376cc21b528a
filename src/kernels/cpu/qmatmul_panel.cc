// AVX-512 VNNI prefill for Q8_0 and Q4_0 weights with the arithmetic of the AMX-INT8 tiles
// (qmatmul_amx.cc): each output is acc = fma(float(I_b), dw_b * dx_b, acc), block after block from
// 0 to K/32, where I_b is the block's exact integer sum. Lanes are 16 weight rows: a task stages
// its rows into a panel where, per block, eight vectors hold 4 consecutive values of every row
// (vector v, lane r: row r's values 4v..4v+3 of the block; Q4_0 as the nibbles 0..15, Q8_0 as the
// bytes plus 128, the offset taken back exactly as -o Σ qx per block), so one vpdpbusd against a
// broadcast dword of a token's activations adds 4 products to each of 16 rows, and 8 of them give
// the 16 block sums I_b in lanes. Then one conversion, one multiply and one FMA per block and token
// for 16 rows, against two per 4-lane block group in the tile kernel (qmatmul.cc). The eight
// vectors and the block's scales stay in registers for a run of 16 tokens.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/gemm_util.h"
#include "kernels/quant_acts.h"

#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,f16c,fma")  // after the includes

namespace dsv3::cpu {
namespace {

constexpr int64_t kLanes = 16;
constexpr int64_t kRowsPerTask = 64;  // 4 groups of 16 rows staged per task
constexpr int64_t kChunkBlocks = 64;  // K blocked by 2048 values: 4 groups' chunk is 147 KB
constexpr int64_t kRunTokens = 64;    // and 64 tokens' activations 128 KB

// A staged group of 16 rows: per block 8 vectors of 64 bytes, then its 16 scales as floats.
constexpr int64_t kBlockBytes = 8 * 64 + kLanes * 4;

// The in-lane 4 x 4 transpose of dwords: z[k]'s 128-bit lane L holds row 4L + k's 4 dwords; out
// v's lane 4L + i holds dword v of row 4L + i.
inline void transpose4(const __m512i z[4], __m512i out[4]) {
  const __m512i t0 = _mm512_unpacklo_epi32(z[0], z[1]), t1 = _mm512_unpackhi_epi32(z[0], z[1]);
  const __m512i t2 = _mm512_unpacklo_epi32(z[2], z[3]), t3 = _mm512_unpackhi_epi32(z[2], z[3]);
  out[0] = _mm512_unpacklo_epi64(t0, t2), out[1] = _mm512_unpackhi_epi64(t0, t2);
  out[2] = _mm512_unpacklo_epi64(t1, t3), out[3] = _mm512_unpackhi_epi64(t1, t3);
}

// 16 bytes at each of 16 rows (row[i] + off) as 4 vectors, lane r of vector v = row r's bytes
// 4v..4v+3.
inline void load_rows16(const uint8_t* const row[16], int64_t off, __m512i out[4]) {
  const auto ld = [&](int i) {
    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(row[i] + off));
  };
  __m512i z[4];
  for (int k = 0; k < 4; ++k) {  // immediates spelled out: -O1 does not unroll a lane loop
    const __m512i v = _mm512_inserti32x4(_mm512_castsi128_si512(ld(k)), ld(4 + k), 1);
    z[k] = _mm512_inserti32x4(_mm512_inserti32x4(v, ld(8 + k), 2), ld(12 + k), 3);
  }
  transpose4(z, out);
}

// Rows [r0, r0 + nr) of w (nr <= 16; missing rows zero, their scales 0) into the panel group at p.
template <BlockFormat F>
void stage_group(const WeightRef& w, int64_t r0, int64_t nr, uint8_t* p) {
  static const uint8_t kZero[32] = {};
  const int64_t blocks = w.cols / 32, rb = w.row_bytes();
  const auto* base = static_cast<const uint8_t*>(w.data) + r0 * rb;
  const uint8_t* row[16];
  for (int i = 0; i < 16; ++i) row[i] = i < nr ? base + i * rb : nullptr;
  const uint16_t* ws = w.block_scale + r0 * blocks;
  for (int64_t b = 0; b < blocks; ++b) {
    uint8_t* o = p + b * kBlockBytes;
    __m512i v[8];
    const uint8_t* src[16];
    if constexpr (F == BlockFormat::Q4_0) {
      for (int i = 0; i < 16; ++i) src[i] = row[i] ? row[i] + b * 16 : kZero;
      __m512i raw[4];
      load_rows16(src, 0, raw);
      const __m512i nib = _mm512_set1_epi8(0x0F);
      for (int k = 0; k < 4; ++k) {  // byte j: value j (low nibble), j + 16 (high)
        v[k] = _mm512_and_si512(raw[k], nib);
        v[4 + k] = _mm512_and_si512(_mm512_srli_epi16(raw[k], 4), nib);
      }
    } else {
      for (int i = 0; i < 16; ++i) src[i] = row[i] ? row[i] + b * 32 : kZero;
      load_rows16(src, 0, v);
      load_rows16(src, 16, v + 4);
      const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
      for (int k = 0; k < 8; ++k) v[k] = _mm512_xor_si512(v[k], flip);
    }
    for (int k = 0; k < 8; ++k) _mm512_store_si512(o + 64 * k, v[k]);
    auto* s = reinterpret_cast<float*>(o + 8 * 64);
    for (int i = 0; i < 16; ++i) s[i] = i < nr ? _cvtsh_ss(ws[i * blocks + b]) : 0.0f;
  }
}

// The activations in runs of 16 tokens, per block kActBytes: the 16 tokens' 32 quants (token t at
// 32 t), their -o Σ qx (int32, o = 128 for Q8_0's offset to unsigned, 8 for Q4_0's) and their
// scales dx (float); tokens past T zero. Run c of head h at xp + (h * runs + c) * blocks *
// kActBytes.
constexpr int64_t kActBytes = 16 * 32 + 16 * 4 + 16 * 4;

void pack_run(const QuantActs& qa, int64_t arow, int64_t n, int64_t blocks, int32_t offset,
              uint8_t* out) {
  for (int64_t b = 0; b < blocks; ++b) {
    uint8_t* o = out + b * kActBytes;
    auto* c = reinterpret_cast<int32_t*>(o + 16 * 32);
    auto* d = reinterpret_cast<float*>(o + 16 * 32 + 16 * 4);
    for (int64_t t = 0; t < 16; ++t) {
      if (t >= n) {
        std::memset(o + 32 * t, 0, 32), c[t] = 0, d[t] = 0;
        continue;
      }
      std::memcpy(o + 32 * t, qa.q_row(arow + t) + 32 * b, 32);
      c[t] = -offset * qa.block_qsum(arow + t, b);
      d[t] = qa.d_row(arow + t)[8 * b];
    }
  }
}

// y[t][0..nr) for tokens t0..t0+NT of a packed run (x) against the staged group p, blocks
// [b0, b1), continuing the sums in y past block 0.
template <int NT>
void group_tokens(const uint8_t* p, const uint8_t* x, int t0, int64_t b0, int64_t b1, float* y,
                  int64_t ldy, int64_t nr) {
  const __mmask16 m = static_cast<__mmask16>((1u << nr) - 1);
  __m512 acc[NT];
#pragma GCC unroll 16
  for (int t = 0; t < NT; ++t)
    acc[t] = b0 == 0 ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m, y + t * ldy);
  for (int64_t b = b0; b < b1; ++b) {
    const uint8_t* o = p + b * kBlockBytes;
    const uint8_t* xb = x + b * kActBytes;
    const auto* xq = reinterpret_cast<const int32_t*>(xb);
    const auto* xc = reinterpret_cast<const int32_t*>(xb + 16 * 32);
    const auto* xd = reinterpret_cast<const float*>(xb + 16 * 32 + 16 * 4);
    __m512i v[8];
#pragma GCC unroll 8
    for (int k = 0; k < 8; ++k) v[k] = _mm512_load_si512(o + 64 * k);
    const __m512 dw = _mm512_load_ps(reinterpret_cast<const float*>(o + 8 * 64));
#pragma GCC unroll 16
    for (int t = 0; t < NT; ++t) {
      __m512i s = _mm512_set1_epi32(xc[t0 + t]);
#pragma GCC unroll 8
      for (int k = 0; k < 8; ++k)
        s = _mm512_dpbusd_epi32(s, v[k], _mm512_set1_epi32(xq[8 * (t0 + t) + k]));
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_set1_ps(xd[t0 + t])),
                               acc[t]);
    }
  }
#pragma GCC unroll 16
  for (int t = 0; t < NT; ++t) _mm512_mask_storeu_ps(y + t * ldy, m, acc[t]);
}

// Blocks [b0, b1) of a packed run of n tokens against the staged group p.
void group_run(const uint8_t* p, const uint8_t* x, int64_t n, int64_t b0, int64_t b1, float* y,
               int64_t ldy, int64_t nr) {
  if (n == 16) return group_tokens<16>(p, x, 0, b0, b1, y, ldy, nr);
  int t = 0;
  if (t + 8 <= n) group_tokens<8>(p, x, t, b0, b1, y + t * ldy, ldy, nr), t += 8;
  if (t + 4 <= n) group_tokens<4>(p, x, t, b0, b1, y + t * ldy, ldy, nr), t += 4;
  for (; t < n; ++t) group_tokens<1>(p, x, t, b0, b1, y + t * ldy, ldy, nr);
}

template <BlockFormat F>
void panel_heads(const HeadMatmulArgs& a, const QuantActs& qa, ThreadPool& pool) {
  const WeightRef& w = *a.w;
  const int64_t K = w.cols, blocks = K / 32, n = a.n_heads * a.T;
  const int64_t runs = (a.T + 15) / 16;
  auto* xp = static_cast<uint8_t*>(gemm_scratch(2, a.n_heads * runs * blocks * kActBytes));
  const auto pack = [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      pack_run(qa, i / runs * a.T + i % runs * 16, std::min<int64_t>(16, a.T - i % runs * 16),
               blocks, F == BlockFormat::Q8_0 ? 128 : 8, xp + i * blocks * kActBytes);
  };
  if (n * K < (int64_t{1} << 16))
    pack(0, a.n_heads * runs);
  else
    pool.parallel_for(a.n_heads * runs, pack);
  const int64_t group_bytes = blocks * kBlockBytes;
  const int64_t per_head = (a.w_rows + kRowsPerTask - 1) / kRowsPerTask;
  run_tasks(pool, a.n_heads * per_head, n * a.w_rows * K, [&](int64_t b, int64_t e) {
    auto* p = static_cast<uint8_t*>(gemm_scratch(0, kRowsPerTask / kLanes * group_bytes));
    for (int64_t task = b; task < e; ++task) {
      const int64_t h = task / per_head, r0 = task % per_head * kRowsPerTask;
      const int64_t rows = std::min(kRowsPerTask, a.w_rows - r0);
      const int64_t ng = (rows + kLanes - 1) / kLanes;
      for (int64_t g = 0; g < ng; ++g)
        stage_group<F>(w, a.w_row0 + h * a.w_head_stride + r0 + g * kLanes,
                       std::min(kLanes, rows - g * kLanes), p + g * group_bytes);
      // Cache blocking: kChunkBlocks of K by kRunTokens tokens at a time, so the groups' chunk
      // and the tokens' activations stay in L2 while the other is swept; each output continues
      // its sum through y, block order unchanged.
      for (int64_t c0 = 0; c0 < blocks; c0 += kChunkBlocks)
        for (int64_t t0 = 0; t0 < a.T; t0 += kRunTokens)
          for (int64_t g = 0; g < ng; ++g)
            for (int64_t t = t0; t < std::min(a.T, t0 + kRunTokens); t += 16)
              group_run(p + g * group_bytes, xp + (h * runs + t / 16) * blocks * kActBytes,
                        std::min<int64_t>(16, a.T - t), c0, std::min(blocks, c0 + kChunkBlocks),
                        a.y + h * a.y_head_stride + t * a.y_row_stride + r0 + g * kLanes,
                        a.y_row_stride, std::min(kLanes, rows - g * kLanes));
    }
  });
}

}  // namespace

void qmatmul_panel_vnni(const HeadMatmulArgs& a, const QuantActs& qa, ThreadPool& pool) {
  if (a.w->quant->format == BlockFormat::Q8_0)
    panel_heads<BlockFormat::Q8_0>(a, qa, pool);
  else
    panel_heads<BlockFormat::Q4_0>(a, qa, pool);
}

}  // namespace dsv3::cpu

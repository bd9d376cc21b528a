// The BF16-weight inference matmuls that round the activations to BF16 (nearest even; float32
// subnormals flush to zero, as the BF16 instructions do), as llama.cpp rounds them for its BF16
// weights: y[t, r] = Σ_k bf16(x[t, k]) · w[r, k], the products exact, the sums FP32. The table's
// matmul / matmul_heads take them for BF16 weights (bf16_activation_matmul(), cpu_kernels.cc):
// the AMX one where the CPU has AMX, else the AVX512-BF16 one.
//
// Both keep the row independence the batch and speculative decoding rely on: every output is one
// sum in a fixed order whatever tile computes it and however many tokens the call has, so a
// prefill row equals its decode bit for bit (tests/unit/kernels/test_cpu_kernels.cc).
//
// AMX (matmul_heads_bf16_amx). Orientation: the weight rows are the A tiles, read in place from
// the memory-mapped file (16 rows of 32 k, the row stride of the matrix; a row or k tail through a
// zero-padded copy), the rows of x the B tiles (packed once per call: pack_rows_as_b_tiles), so
// the C tiles hold yᵀ: 16 weight rows x 16 tokens, written back transposed. Every C tile sums k in
// the same 32-wide steps from zero to K. Tiles 0-3 hold a 2 x 2 block of C (32 weight rows x 32
// tokens) over all of K, 4-5 the two A tiles, 6-7 the two B tiles. A task is kRowsPerTask rows of
// one head's W_h; it walks its rows 32 at a time, each such panel (32 x K BF16, in L2) against
// every 32 tokens. Decode (T <= 16) streams the weights from memory once: the rows are prefetched
// a few k steps ahead.
//
// AVX512-BF16 (matmul_heads_bf16_dp): x rounded into BF16 rows padded with zeros to a multiple of
// 32; each output keeps one 16-lane vdpbf16ps sum (lane i: the pairs 32 s + 2i, 32 s + 2i + 1)
// over k in order and reduces the lanes with hsum at the end. Prefill runs 4 rows of x against 4
// weight rows per step, decode 8 weight rows, prefetched ahead.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/gemm_util.h"
#include "kernels/ref/ref.h"

#pragma GCC target("avx512f,avx512bw,avx512vl,avx512bf16,amx-tile,amx-bf16")  // after includes

#include "kernels/cpu/amx_tiles.h"
#include "kernels/cpu/simd.h"

namespace dsv3::cpu {
namespace {

constexpr int64_t kRowsPerTask = 64;
constexpr int64_t kDpRowsPerTask = 16;
constexpr int64_t kPrefetchBytes = 2048;  // the dot-product kernel's distance ahead on each row
constexpr int64_t kPrefetchSteps = 4;     // k steps (64 bytes of each row) ahead, when streaming

// Where a task reads one head's weight rows and writes its outputs.
struct Panel {
  const uint16_t* w;  // the panel's first row
  int64_t K, kb;      // columns, k steps (ceil(K / 32))
  int64_t rows;       // rows of this panel (<= 32)
};

// A tile (rows [16 i, 16 i + 16) of the panel, k step kb) into tile register 4 + i: in place when
// all 16 rows and 32 k exist, else from a zero-padded copy in pad.
template <int I>
void load_a(const Panel& p, int64_t kb, uint16_t* pad) {
  const int64_t r0 = 16 * I, nr = std::min<int64_t>(16, p.rows - r0), k0 = kb * 32;
  const uint16_t* src = p.w + r0 * p.K + k0;
  if (nr == 16 && k0 + 32 <= p.K) {
    if constexpr (I == 0) _tile_loadd(4, src, p.K * 2);
    if constexpr (I == 1) _tile_loadd(5, src, p.K * 2);
    return;
  }
  std::memset(pad, 0, 16 * 64);
  const int64_t nk = std::min<int64_t>(32, p.K - k0);
  for (int64_t r = 0; r < nr; ++r) std::memcpy(pad + r * 32, src + r * p.K, nk * 2);
  if constexpr (I == 0) _tile_loadd(4, pad, 64);
  if constexpr (I == 1) _tile_loadd(5, pad, 64);
}

// C tile T (16 weight rows x 16 tokens) into y[t * ldy + r] for the rows and tokens that exist.
template <int T>
void store_yt(float* y, int64_t ldy, int64_t rows, int64_t tokens, float* buf) {
  tile_store<T>(buf, 64);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t t = 0; t < tokens; ++t) y[t * ldy + r] = buf[r * 16 + t];
}

// y for the panel's rows (TI A tiles) x 16 TJ tokens starting at packed token tile xt.
template <int TI, int TJ>
void block(const Panel& p, const uint32_t* xt, float* y, int64_t ldy, int64_t tokens, bool stream,
           uint16_t* pad, float* buf) {
  tile_zero<0>();
  if constexpr (TJ == 2) tile_zero<1>();
  if constexpr (TI == 2) tile_zero<2>();
  if constexpr (TI == 2 && TJ == 2) tile_zero<3>();
  for (int64_t kb = 0; kb < p.kb; ++kb) {
    if (stream && kb + kPrefetchSteps < p.kb)
      for (int64_t r = 0; r < p.rows; ++r)
        _mm_prefetch(reinterpret_cast<const char*>(p.w + r * p.K + (kb + kPrefetchSteps) * 32),
                     _MM_HINT_T0);
    load_a<0>(p, kb, pad);
    _tile_loadd(6, xt + kb * 256, 64);
    _tile_dpbf16ps(0, 4, 6);
    if constexpr (TJ == 2) {
      _tile_loadd(7, xt + (p.kb + kb) * 256, 64);
      _tile_dpbf16ps(1, 4, 7);
    }
    if constexpr (TI == 2) {
      load_a<1>(p, kb, pad);
      _tile_dpbf16ps(2, 5, 6);
    }
    if constexpr (TI == 2 && TJ == 2) _tile_dpbf16ps(3, 5, 7);
  }
  const int64_t r0 = std::min<int64_t>(16, p.rows), t0 = std::min<int64_t>(16, tokens);
  store_yt<0>(y, ldy, r0, t0, buf);
  if constexpr (TJ == 2) store_yt<1>(y + 16 * ldy, ldy, r0, tokens - 16, buf);
  if constexpr (TI == 2) store_yt<2>(y + 16, ldy, p.rows - 16, t0, buf);
  if constexpr (TI == 2 && TJ == 2)
    store_yt<3>(y + 16 * ldy + 16, ldy, p.rows - 16, tokens - 16, buf);
}

// y[t * ldy + i] for t < NT, i < NR: the weight rows w + i * K against the BF16 rows xb + t * ldx
// (padded with zeros to a multiple of 32).
template <int NT, int NR>
void dp_tile(float* y, int64_t ldy, const uint16_t* xb, int64_t ldx, const uint16_t* w, int64_t K,
             bool stream) {
  __m512 acc[NT][NR];
#pragma GCC unroll 8
  for (int t = 0; t < NT; ++t)
#pragma GCC unroll 8
    for (int i = 0; i < NR; ++i) acc[t][i] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; k += 32) {
    const __mmask32 m = K - k >= 32 ? ~__mmask32(0) : (__mmask32(1) << (K - k)) - 1;
    __m512bh wv[NR];
#pragma GCC unroll 8
    for (int i = 0; i < NR; ++i) {
      wv[i] = reinterpret_cast<__m512bh>(_mm512_maskz_loadu_epi16(m, w + i * K + k));
      if (stream)
        _mm_prefetch(reinterpret_cast<const char*>(w + i * K + k) + kPrefetchBytes, _MM_HINT_T0);
    }
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) {
      const __m512bh xv = reinterpret_cast<__m512bh>(_mm512_loadu_si512(xb + t * ldx + k));
#pragma GCC unroll 8
      for (int i = 0; i < NR; ++i) acc[t][i] = _mm512_dpbf16_ps(acc[t][i], xv, wv[i]);
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < NT; ++t)
#pragma GCC unroll 8
    for (int i = 0; i < NR; ++i) y[t * ldy + i] = hsum(acc[t][i]);
}

// Every head's rows of x as BF16 rows of kp values (K rounded up to 32, zeros past K):
// [head][t][kp] at out. The empty-K case is the callers'.
void pack_bf16_rows(const HeadMatmulArgs& a, int64_t K, int64_t kp, uint16_t* out) {
  for (int64_t h = 0; h < a.n_heads; ++h)
    for (int64_t t = 0; t < a.T; ++t) {
      const float* x = a.x + t * a.x_row_stride + h * a.x_head_stride;
      uint16_t* o = out + (h * a.T + t) * kp;
      for (int64_t k = 0; k < kp; k += 32) {
        const int64_t n = K - k;
        const __m512 lo = _mm512_maskz_loadu_ps(n > 0 ? tail_mask(n) : 0, x + k);
        const __m512 hi = _mm512_maskz_loadu_ps(n > 16 ? tail_mask(n - 16) : 0, x + k + 16);
        _mm512_storeu_si512(o + k, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo)));
      }
    }
}

// Empty sums: every output 0.
void fill_zero(const HeadMatmulArgs& a) {
  for (int64_t h = 0; h < a.n_heads; ++h)
    for (int64_t t = 0; t < a.T; ++t)
      std::fill_n(a.y + t * a.y_row_stride + h * a.y_head_stride, a.w_rows, 0.0f);
}

}  // namespace

void matmul_heads_bf16_dp(const HeadMatmulArgs& a, ThreadPool& pool) {
  const WeightRef& w = *a.w;
  const int64_t K = w.cols, kp = (K + 31) / 32 * 32;
  if (a.T == 0 || a.w_rows == 0) return;
  if (K == 0) return fill_zero(a);
  auto* xb = static_cast<uint16_t*>(gemm_scratch(2, a.n_heads * a.T * kp * 2));
  pack_bf16_rows(a, K, kp, xb);
  const int64_t per_head = (a.w_rows + kDpRowsPerTask - 1) / kDpRowsPerTask;
  const auto* w16 = static_cast<const uint16_t*>(w.data);
  run_tasks(pool, a.n_heads * per_head, a.n_heads * a.T * a.w_rows * K, [&](int64_t b, int64_t e) {
    for (int64_t task = b; task < e; ++task) {
      const int64_t h = task / per_head, r0 = task % per_head * kDpRowsPerTask;
      const int64_t nr = std::min(kDpRowsPerTask, a.w_rows - r0);
      const uint16_t* wr = w16 + (a.w_row0 + h * a.w_head_stride + r0) * K;
      const uint16_t* xh = xb + h * a.T * kp;
      float* y = a.y + h * a.y_head_stride + r0;
      const int64_t ldy = a.y_row_stride;
      int64_t t = 0;
      for (; t + 4 <= a.T; t += 4) {
        int64_t r = 0;
        for (; r + 4 <= nr; r += 4)
          dp_tile<4, 4>(y + t * ldy + r, ldy, xh + t * kp, kp, wr + r * K, K, t == 0);
        for (; r < nr; ++r)
          dp_tile<4, 1>(y + t * ldy + r, ldy, xh + t * kp, kp, wr + r * K, K, t == 0);
      }
      for (; t < a.T; ++t) {
        int64_t r = 0;
        for (; r + 8 <= nr; r += 8)
          dp_tile<1, 8>(y + t * ldy + r, ldy, xh + t * kp, kp, wr + r * K, K, t == 0);
        for (; r < nr; ++r)
          dp_tile<1, 1>(y + t * ldy + r, ldy, xh + t * kp, kp, wr + r * K, K, t == 0);
      }
    }
  });
}

void matmul_heads_bf16_amx(const HeadMatmulArgs& a, ThreadPool& pool) {
  const WeightRef& w = *a.w;
  const int64_t K = w.cols, kb = (K + 31) / 32, t16 = (a.T + 15) / 16;
  if (a.T == 0 || a.w_rows == 0) return;
  if (K == 0) return fill_zero(a);
  // Every head's rows of x as B tiles: [head][t16][kb] tiles of 1 KiB.
  const int64_t head_tiles = t16 * kb;
  auto* xp = static_cast<uint32_t*>(gemm_scratch(2, a.n_heads * head_tiles * 1024));
  const int64_t macs = a.n_heads * a.T * a.w_rows * K;
  const auto pack = [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const int64_t h = i / t16, g = i % t16;
      pack_rows_as_b_tiles(a.x + h * a.x_head_stride, a.x_row_stride, a.T, K,
                           xp + (h * head_tiles + g * kb) * 256, g, g + 1);
    }
  };
  if (macs < kGemmSerialMacs || a.n_heads * t16 < 2)
    pack(0, a.n_heads * t16);
  else
    pool.parallel_for(a.n_heads * t16, pack);
  const int64_t per_head = (a.w_rows + kRowsPerTask - 1) / kRowsPerTask;
  const auto* w16 = static_cast<const uint16_t*>(w.data);
  run_tasks(pool, a.n_heads * per_head, macs, [&](int64_t b, int64_t e) {
    configure_tiles();
    alignas(64) uint16_t pad[16 * 32];
    alignas(64) float buf[256];
    for (int64_t task = b; task < e; ++task) {
      const int64_t h = task / per_head, r0 = task % per_head * kRowsPerTask;
      const int64_t nr = std::min(kRowsPerTask, a.w_rows - r0);
      const uint32_t* xh = xp + h * head_tiles * 256;
      for (int64_t p0 = 0; p0 < nr; p0 += 32) {
        const Panel p{w16 + (a.w_row0 + h * a.w_head_stride + r0 + p0) * K, K, kb,
                      std::min<int64_t>(32, nr - p0)};
        float* yp = a.y + h * a.y_head_stride + r0 + p0;
        for (int64_t g = 0; g < t16; g += 2) {
          const int64_t tokens = std::min<int64_t>(32, a.T - 16 * g);
          const uint32_t* xt = xh + g * kb * 256;
          float* y = yp + 16 * g * a.y_row_stride;
          const bool stream = g == 0;
          if (p.rows > 16 && tokens > 16)
            block<2, 2>(p, xt, y, a.y_row_stride, tokens, stream, pad, buf);
          else if (p.rows > 16)
            block<2, 1>(p, xt, y, a.y_row_stride, tokens, stream, pad, buf);
          else if (tokens > 16)
            block<1, 2>(p, xt, y, a.y_row_stride, tokens, stream, pad, buf);
          else
            block<1, 1>(p, xt, y, a.y_row_stride, tokens, stream, pad, buf);
        }
      }
    }
    _tile_release();
  });
}

}  // namespace dsv3::cpu

// AMX-INT8 matmul for Q8_0 and Q4_0 weights (ref/qmatmul.cc states the arithmetic): tiles from
// kAmxMinTokens rows of x on, a VNNI GEMV below, both with the same FP32 arithmetic per output, so
// that a prefill row equals its decode bit for bit (qmatmul_panel.cc does the same on VNNI alone).
//
// Tiles. The weight rows are the A tiles (16 rows x 32 int8: one 32-value block), the int8
// activations (quant_acts.h) the B tiles (8 rows of 4 k x n tokens, packed once per call), so one
// tdpbssd gives the exact integer sums I of one block for 16 weight rows x n tokens. A tile holds
// one block only because every block has its own scales: each C tile is stored and its sums added
// in FP32 by AVX-512 as acc = fma(float(I), dw * dx, acc), block after block from 0 to K/32, one
// accumulator per output (lanes = the tokens: dx a vector, dw broadcast).
//
// Blocking: a task is up to 64 rows of one head's weight (4 A tiles). Q8_0 rows that fill whole A
// tiles are read in place; Q4_0 (unpacked to q - 8, the offset taken out exactly, in [-8, 7]) and
// row tails are staged into a per-thread panel (64 x K bytes, in L2); the panel's block scales are
// converted to float [block][64] beside it. Then every tile of 16 tokens runs against the panel
// over all of K, so the weights are read from memory once per call and from L2 once per 16 tokens.
// Without AMX-INT8 the cpu table runs the VNNI kernel (qmatmul.cc).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/gemm_util.h"
#include "kernels/quant_acts.h"
#include "kernels/ref/ref.h"

#pragma GCC target( \
    "avx512f,avx512bw,avx512vl,avx512vnni,f16c,fma,amx-tile,amx-int8")  // after includes

namespace dsv3::cpu {
namespace {

constexpr int64_t kRowsPerTask = 64;  // 4 A tiles of 16 weight rows

// Tiles 0-1: C (16 rows x n tokens of int32), 4-5: A (16 weight rows x 32 k), 6-7: B (8 rows of
// 4 k x n tokens).
void configure_int8_tiles(int64_t n) {
  struct alignas(64) {
    uint8_t palette = 1, start_row = 0, reserved[14] = {};
    uint16_t colsb[16] = {};
    uint8_t rows[16] = {};
  } cfg;
  for (int t = 0; t < 2; ++t) cfg.colsb[t] = static_cast<uint16_t>(4 * n), cfg.rows[t] = 16;
  for (int t = 4; t < 6; ++t) cfg.colsb[t] = 32, cfg.rows[t] = 16;
  for (int t = 6; t < 8; ++t) cfg.colsb[t] = static_cast<uint16_t>(4 * n), cfg.rows[t] = 8;
  _tile_loadconfig(&cfg);
}

// C tile I (0 or 1) = the block's integer sums of the A tile rows a (stride lda) against the B
// tile b (its 8 rows 4 n bytes apart), stored at c; A in tile 4 + I, B in 6 + I, so that the two
// blocks in flight use disjoint tiles.
template <int I>
void block_sums(const int8_t* a, int64_t lda, const int8_t* b, int32_t* c, int64_t n) {
  if constexpr (I == 0) {
    _tile_loadd(6, b, 4 * n);
    _tile_loadd(4, a, lda);
    _tile_zero(0);
    _tile_dpbssd(0, 4, 6);
    _tile_stored(0, c, 4 * n);
  } else {
    _tile_loadd(7, b, 4 * n);
    _tile_loadd(5, a, lda);
    _tile_zero(1);
    _tile_dpbssd(1, 5, 7);
    _tile_stored(1, c, 4 * n);
  }
}

// The activations of every head as B tiles: for head h and its token tile g (n = min(16, T - 16
// g) tokens), the 4-byte groups of k as dwords [k / 4][n] at xb + h * T * K + 16 g * K (bytes),
// and the block scales dx as [K / 32][16] floats at dx + (h * ceil(T / 16) + g) * (K / 2).
void pack_acts(const QuantActs& qa, int64_t h, int64_t T, int64_t K, int64_t g, int8_t* xb,
               float* dx) {
  const int64_t n = std::min<int64_t>(16, T - 16 * g), blocks = K / 32;
  auto* out = reinterpret_cast<int32_t*>(xb + (h * T + 16 * g) * K);
  float* d = dx + (h * ((T + 15) / 16) + g) * blocks * 16;
  for (int64_t t = 0; t < n; ++t) {
    const int8_t* q = qa.q_row(h * T + 16 * g + t);
    const float* s = qa.d_row(h * T + 16 * g + t);
    for (int64_t k4 = 0; k4 < K / 4; ++k4) std::memcpy(out + k4 * n + t, q + 4 * k4, 4);
    for (int64_t b = 0; b < blocks; ++b) d[b * 16 + t] = s[b * 8];
  }
  for (int64_t t = n; t < 16; ++t)
    for (int64_t b = 0; b < blocks; ++b) d[b * 16 + t] = 0;
}

// Rows [r0, r0 + rows) of w as int8 values, lda bytes apart, at the pointer returned: in place for
// Q8_0 rows that fill whole A tiles, else staged into p (kRowsPerTask rows of K bytes, rows past
// `rows` zero); their block scales as floats [K / 32][kRowsPerTask] at s.
const int8_t* stage_panel(const WeightRef& w, int64_t r0, int64_t rows, int8_t* p, float* s,
                          int64_t* lda) {
  const int64_t K = w.cols, blocks = K / 32, rb = w.row_bytes();
  const auto* src = static_cast<const uint8_t*>(w.data) + r0 * rb;
  const bool q8 = w.quant->format == BlockFormat::Q8_0;
  const uint16_t* d = w.block_scale + r0 * blocks;
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t r = 0; r < kRowsPerTask; ++r)
      s[b * kRowsPerTask + r] = r < rows ? _cvtsh_ss(d[r * blocks + b]) : 0.0f;
  if (q8 && rows % 16 == 0) {  // whole A tiles: read in place
    *lda = rb;
    return reinterpret_cast<const int8_t*>(src);
  }
  *lda = K;
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* q = src + r * rb;
    int8_t* o = p + r * K;
    if (q8) {
      std::memcpy(o, q, K);
      continue;
    }
    // Q4_0: byte j of a block holds value j (low nibble) and j + 16 (high); two blocks a step.
    const __m256i nib = _mm256_set1_epi8(0x0F), eight = _mm256_set1_epi8(8);
    int64_t k = 0;
    for (; k + 64 <= K; k += 64) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + k / 2));
      const __m256i lo = _mm256_sub_epi8(_mm256_and_si256(v, nib), eight);
      const __m256i hi = _mm256_sub_epi8(_mm256_and_si256(_mm256_srli_epi16(v, 4), nib), eight);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + k),
                          _mm256_permute2x128_si256(lo, hi, 0x20));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + k + 32),
                          _mm256_permute2x128_si256(lo, hi, 0x31));
    }
    for (; k < K; k += 32)
      for (int j = 0; j < 16; ++j) {
        o[k + j] = static_cast<int8_t>((q[k / 2 + j] & 0x0F) - 8);
        o[k + j + 16] = static_cast<int8_t>((q[k / 2 + j] >> 4) - 8);
      }
  }
  std::memset(p + rows * K, 0, (kRowsPerTask - rows) * K);
  return p;
}

// y for the panel's tiles (na A tiles) against one token tile of n tokens: packed activations xt
// y for the panel's rows (A tiles of 16 rows, lda bytes apart) against one token tile of n
// tokens: packed activations xt ([K / 4][n] dwords), their scales dx ([K / 32][16]), output rows
// 0..rows-1 at y (ldy apart). One A tile at a time, its 16 accumulators (lanes = the tokens) in
// registers; two C tiles in turn, block b + 1's sums computed and stored before block b's are
// scaled, so the tile unit works while the vector units scale and the stores have reached L1
// when the vector loads read them.
void panel_tile(const int8_t* p, int64_t lda, const float* s, int64_t K, int64_t rows,
                const int8_t* xt, const float* dx, int64_t n, float* y, int64_t ldy) {
  alignas(64) int32_t c[2][16 * 16];
  alignas(64) float out[16 * 16];
  const int64_t blocks = K / 32;
  const __mmask16 m = static_cast<__mmask16>((1u << n) - 1);
  for (int64_t i = 0; i * 16 < rows; ++i) {
    const int8_t* a = p + 16 * i * lda;
    const auto sums = [&](int64_t b) {
      if (b & 1)
        block_sums<1>(a + b * 32, lda, xt + b * 32 * n, c[1], n);
      else
        block_sums<0>(a + b * 32, lda, xt + b * 32 * n, c[0], n);
    };
    __m512 acc[16];
    for (int r = 0; r < 16; ++r) acc[r] = _mm512_setzero_ps();
    sums(0);
    for (int64_t b = 0; b < blocks; ++b) {
      if (b + 1 < blocks) sums(b + 1);
      const int32_t* cb = c[b & 1];
      const __m512 dxv = _mm512_load_ps(dx + b * 16);
      const float* sb = s + b * kRowsPerTask + 16 * i;
#pragma GCC unroll 16
      for (int r = 0; r < 16; ++r) {
        const __m512 prod = _mm512_mul_ps(dxv, _mm512_set1_ps(sb[r]));
        acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(m, cb + r * n)), prod,
                                 acc[r]);
      }
    }
    for (int r = 0; r < 16; ++r) _mm512_store_ps(out + 16 * r, acc[r]);
    const int64_t nr = std::min<int64_t>(16, rows - 16 * i);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t r = 0; r < nr; ++r) y[t * ldy + 16 * i + r] = out[16 * r + t];
  }
}

constexpr int64_t kAmxMinTokens = 4;  // below: the 16-row GEMV (qmatmul_gemv16.cc)

}  // namespace

void qmatmul_heads_amx(const HeadMatmulArgs& a, ThreadPool& pool) {
  ref::check_head_args(a);
  const WeightRef& w = *a.w;
  const BlockFormat f = w.quant != nullptr ? w.quant->format : BlockFormat::BF16;
  if (f != BlockFormat::Q8_0 && f != BlockFormat::Q4_0) return qmatmul_heads_vnni(a, pool);
  if (a.T == 0 || a.w_rows == 0) return;
  static thread_local QuantActs acts;
  QuantActs& qa = acts;  // the calling thread's: a lambda naming `acts` would get its worker's
  ref::quantize_head_acts(a, qa, pool, quantize_acts_row);
  if (a.T < kAmxMinTokens) return qmatmul_gemv16(a, qa, pool, gfni_supported());
  const int64_t K = w.cols, T = a.T, t16 = (T + 15) / 16, blocks = K / 32;
  auto* xb = static_cast<int8_t*>(gemm_scratch(2, a.n_heads * T * K));
  auto* dx = static_cast<float*>(gemm_scratch(3, a.n_heads * t16 * blocks * 16 * 4));
  const int64_t macs = a.n_heads * T * a.w_rows * K;
  const auto pack = [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) pack_acts(qa, i / t16, T, K, i % t16, xb, dx);
  };
  if (macs < kGemmSerialMacs || a.n_heads * t16 < 2)
    pack(0, a.n_heads * t16);
  else
    pool.parallel_for(a.n_heads * t16, pack);
  const int64_t per_head = (a.w_rows + kRowsPerTask - 1) / kRowsPerTask;
  run_tasks(pool, a.n_heads * per_head, macs, [&](int64_t b, int64_t e) {
    auto* p = static_cast<int8_t*>(gemm_scratch(0, kRowsPerTask * K));
    auto* s = static_cast<float*>(gemm_scratch(1, kRowsPerTask * blocks * 4));
    int64_t configured = 0;
    for (int64_t task = b; task < e; ++task) {
      const int64_t h = task / per_head, r0 = task % per_head * kRowsPerTask;
      const int64_t rows = std::min(kRowsPerTask, a.w_rows - r0);
      int64_t lda = 0;
      const int8_t* panel = stage_panel(w, a.w_row0 + h * a.w_head_stride + r0, rows, p, s, &lda);
      for (int64_t g = 0; g < t16; ++g) {
        const int64_t n = std::min<int64_t>(16, T - 16 * g);
        if (n != configured) configure_int8_tiles(n), configured = n;
        panel_tile(panel, lda, s, K, rows, xb + (h * T + 16 * g) * K,
                   dx + (h * t16 + g) * blocks * 16, n,
                   a.y + h * a.y_head_stride + 16 * g * a.y_row_stride + r0, a.y_row_stride);
      }
    }
    if (configured != 0) _tile_release();
  });
}

}  // namespace dsv3::cpu

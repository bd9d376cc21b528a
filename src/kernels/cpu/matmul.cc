// AVX-512 matmuls: y = x·wᵀ (matmul) and y = x·w (matmul_xw), every weight dtype read in place
// (F32, BF16, F16, FP8 E4M3 with its block scales), FP32 accumulation throughout. The head-batched
// versions (matmul_heads, matmul_xw_heads) run the same tiles on each head's rows of w, x and y,
// all heads' tasks in one pass over the pool; the plain ops are their one-head case, so a head's
// outputs are bit for bit those of matmul on its slice_rows. (Training's GEMMs are gemm.cc's.)
//
// matmul keeps one 16-lane partial sum per output y[t, r], walks the columns in order 16 at a time
// (a block's tail masked) and reduces the 16 lanes in a fixed order at the end, so every y[t, r]
// is the same sum in the same order whichever tile computes it: a prefill row equals the
// token-by-token decode of the same row bit for bit. Decode (T = 1) streams 8 weight rows at a
// time (memory bound); prefill multiplies 4 rows of x by 4 weight rows per step, so each weight
// vector loaded feeds 4 FMAs, over kKc columns at a time (the weight slice stays in L1 while the
// rows of x pass) with the partial sums parked in a buffer between column blocks. Ops under 2^17
// multiply-adds stay on the calling thread (run_tasks).
// GCC 12's AVX-512 headers build "undefined" vectors as `__m512 __Y = __Y;`, which its own
// -Wuninitialized flags once inlined here (GCC PR 105593, fixed in 13): silence just those.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "base/error.h"
#include "kernels/cpu/cpu.h"
#include "kernels/ref/ref.h"

// After every include: only this file's own functions are compiled for AVX-512 (cpu_kernels.cc
// checks the CPU before handing them out).
#pragma GCC target("avx512f,avx512bw,avx512vl")

#include "kernels/cpu/simd.h"

namespace dsv3::cpu {
namespace {

template <DType D>
using Elem = std::conditional_t<D == DType::F32, float,
                                std::conditional_t<D == DType::F8_E4M3, uint8_t, uint16_t>>;

// 16 weights at p as float32, lanes outside `m` zero; FP8 still without its block scale. All
// exact: BF16 is the top half of a float32; an E4M3 code s.eeee.mmm placed as the half
// s.0eeee.mmm0000000 is the same value times 2^-8 (exponent bias 15 instead of 7, subnormals
// included), which the caller folds into the scale; codes 0x7F / 0xFF are NaN (tensor/fp8.h).
template <DType D>
inline __m512 load16(const Elem<D>* p, __mmask16 m) {
  if constexpr (D == DType::F32) {
    return _mm512_maskz_loadu_ps(m, p);
  } else if constexpr (D == DType::BF16) {
    const __m256i h = _mm256_maskz_loadu_epi16(m, p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  } else if constexpr (D == DType::F16) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
  } else {
    const __m256i c = _mm256_cvtepu8_epi16(_mm_maskz_loadu_epi8(m, p));
    const __m256i mag = _mm256_and_si256(c, _mm256_set1_epi16(0x7F));
    const __m256i h =
        _mm256_or_si256(_mm256_slli_epi16(_mm256_and_si256(c, _mm256_set1_epi16(0x80)), 8),
                        _mm256_slli_epi16(mag, 7));
    const __mmask16 nan = _mm256_cmpeq_epi16_mask(mag, _mm256_set1_epi16(0x7F));
    return _mm512_mask_blend_ps(nan, _mm512_cvtph_ps(h),
                                _mm512_set1_ps(std::numeric_limits<float>::quiet_NaN()));
  }
}

// Where the kernels read weight rows: row r's first element, and for FP8 the scale row.
template <DType D>
struct Rows {
  const Elem<D>* data;
  int64_t ld;          // elements between rows (w.cols)
  const float* scale;  // FP8 only, like the rest: scale_inv, its blocks and w's first row in it
  int64_t block_rows, block_cols, col_blocks, scale_row0;

  Rows(const WeightRef& w, int64_t r0)
      : data(static_cast<const Elem<D>*>(w.data) + r0 * w.cols),
        ld(w.cols),
        scale(w.scale_inv),
        block_rows(w.block_rows),
        block_cols(w.block_cols),
        col_blocks(D == DType::F8_E4M3 ? (w.cols + w.block_cols - 1) / w.block_cols : 0),
        scale_row0(w.scale_row0 + r0) {}
  const float* scale_row(int64_t r) const {
    return scale + ((scale_row0 + r) / block_rows) * col_blocks;
  }
};

constexpr int64_t kPrefetchBytes = 2048;

// acc[t * lda + r * 16 + lane] += the products of x[t * ldx + k] and weight row r over columns
// [k0, k1) for t < NT, r < NR (weights from rows.data + r * rows.ld, r counted from `r`).
// `first`: start from zero instead of acc. `stream`: the weights come from DRAM this time (the
// first rows of x to pass over them), so ask for each row kPrefetchBytes ahead (past a short row's
// end that is the next row, also ours soon).
template <DType D, int NT, int NR>
void tile(float* acc, int64_t lda, bool first, const float* x, int64_t ldx, const Rows<D>& rows,
          int64_t r, int64_t k0, int64_t k1, bool stream) {
  __m512 a[NT][NR];
#pragma GCC unroll 8
  for (int t = 0; t < NT; ++t)
#pragma GCC unroll 8
    for (int i = 0; i < NR; ++i)
      a[t][i] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(acc + t * lda + i * 16);
  const Elem<D>* w = rows.data + r * rows.ld;
  // FP8: the scales of the current column block, reloaded where a block starts (block_cols is a
  // multiple of 16, so a 16-column step never straddles two scales). The small loops carry unroll
  // pragmas: without them GCC 12 keeps the partial sums on the stack, storing them every step.
  __m512 sv[NR];
  int64_t next_block = k0;
  for (int64_t k = k0; k < k1; k += 16) {
    if constexpr (D == DType::F8_E4M3) {
      if (k == next_block) {
        const int64_t blk = k / rows.block_cols;
#pragma GCC unroll 8
        for (int i = 0; i < NR; ++i)  // x 2^8: see load16
          sv[i] = _mm512_set1_ps(rows.scale_row(r + i)[blk] * 256.0f);
        next_block = (blk + 1) * rows.block_cols;
      }
    }
    const __mmask16 m = tail_mask(k1 - k);
    __m512 wv[NR];
#pragma GCC unroll 8
    for (int i = 0; i < NR; ++i) {
      wv[i] = load16<D>(w + i * rows.ld + k, m);
      if (stream)
        _mm_prefetch(reinterpret_cast<const char*>(w + i * rows.ld + k) + kPrefetchBytes,
                     _MM_HINT_T0);
      if constexpr (D == DType::F8_E4M3) wv[i] = _mm512_mul_ps(wv[i], sv[i]);
    }
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) {
      const __m512 xv = _mm512_maskz_loadu_ps(m, x + t * ldx + k);
#pragma GCC unroll 8
      for (int i = 0; i < NR; ++i) a[t][i] = _mm512_fmadd_ps(xv, wv[i], a[t][i]);
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < NT; ++t)
#pragma GCC unroll 8
    for (int i = 0; i < NR; ++i) _mm512_storeu_ps(acc + t * lda + i * 16, a[t][i]);
}

constexpr int64_t kRowsPerTask = 16;
constexpr int64_t kTc = 64;  // rows of x per pass (the partial-sum buffer is kTc x 16 vectors)
// Columns per block when T > 4: the task's weight slice (16 rows x kKc) stays in L1 meanwhile.
constexpr int64_t kKc = 512;

// y[t * ldy + r] for t < T, r < nr: weight rows `rows` against rows of x (K columns each, ldx
// apart).
template <DType D>
void panel(float* y, int64_t ldy, const float* x, int64_t ldx, int64_t K, const Rows<D>& rows,
           int64_t nr, int64_t T, float* acc) {
  constexpr int64_t lda = kRowsPerTask * 16;
  for (int64_t tc = 0; tc < T; tc += kTc) {
    const int64_t tn = std::min(kTc, T - tc);
    const float* xc = x + tc * ldx;
    const int64_t kc = tn > 4 ? kKc : K;
    for (int64_t k0 = 0; k0 < K; k0 += kc) {
      const int64_t k1 = std::min(K, k0 + kc);
      const bool first = k0 == 0;
      int64_t t = 0;
      for (; t + 4 <= tn; t += 4) {
        int64_t r = 0;
        for (; r + 4 <= nr; r += 4)
          tile<D, 4, 4>(acc + t * lda + r * 16, lda, first, xc + t * ldx, ldx, rows, r, k0, k1,
                        tc + t == 0);
        for (; r < nr; ++r)
          tile<D, 4, 1>(acc + t * lda + r * 16, lda, first, xc + t * ldx, ldx, rows, r, k0, k1,
                        tc + t == 0);
      }
      for (; t < tn; ++t) {
        int64_t r = 0;
        for (; r + 8 <= nr; r += 8)
          tile<D, 1, 8>(acc + t * lda + r * 16, lda, first, xc + t * ldx, ldx, rows, r, k0, k1,
                        tc + t == 0);
        for (; r < nr; ++r)
          tile<D, 1, 1>(acc + t * lda + r * 16, lda, first, xc + t * ldx, ldx, rows, r, k0, k1,
                        tc + t == 0);
      }
    }
    for (int64_t t = 0; t < tn; ++t)
      for (int64_t r = 0; r < nr; ++r)
        y[(tc + t) * ldy + r] = hsum(_mm512_loadu_ps(acc + t * lda + r * 16));
  }
}

// Tasks of kRowsPerTask rows of one head's W_h, head-major: every head's row panels in one pass.
template <DType D>
void matmul_heads_dtype(const HeadMatmulArgs& a, ThreadPool& pool) {
  const WeightRef& w = *a.w;
  if (w.cols == 0) {  // empty sums
    for (int64_t h = 0; h < a.n_heads; ++h)
      for (int64_t t = 0; t < a.T; ++t)
        std::fill_n(a.y + t * a.y_row_stride + h * a.y_head_stride, a.w_rows, 0.0f);
    return;
  }
  const int64_t per_head = (a.w_rows + kRowsPerTask - 1) / kRowsPerTask;
  const auto run = [&](int64_t b, int64_t e) {
    std::vector<float> acc(std::min(a.T, kTc) * kRowsPerTask * 16);
    for (int64_t task = b; task < e; ++task) {
      const int64_t h = task / per_head, r0 = task % per_head * kRowsPerTask;
      const int64_t nr = std::min(kRowsPerTask, a.w_rows - r0);
      panel<D>(a.y + h * a.y_head_stride + r0, a.y_row_stride, a.x + h * a.x_head_stride,
               a.x_row_stride, w.cols, Rows<D>(w, a.w_row0 + h * a.w_head_stride + r0), nr, a.T,
               acc.data());
    }
  };
  run_tasks(pool, a.n_heads * per_head, a.n_heads * a.T * a.w_rows * w.cols, run);
}

}  // namespace

void matmul_heads(const HeadMatmulArgs& a, ThreadPool& pool) {
  ref::check_head_args(a);
  const WeightRef& w = *a.w;
  if (w.quant) return qmatmul_heads(a, pool);  // integer block formats
  switch (w.dtype) {
    case DType::F32:
      return matmul_heads_dtype<DType::F32>(a, pool);
    case DType::BF16:
      if (const HeadMatmulFn f = bf16_activation_matmul()) return f(a, pool);
      return matmul_heads_dtype<DType::BF16>(a, pool);
    case DType::F16:
      return matmul_heads_dtype<DType::F16>(a, pool);
    case DType::F8_E4M3:
      DSV3_CHECK(w.scale_inv != nullptr, "kernels: F8_E4M3 weight without scale_inv",
                 "FP8 weights need their weight_scale_inv (SPEC §3.2)");
      if (w.block_rows <= 0 || w.block_cols <= 0 || w.block_cols % 16 != 0)
        return ref::matmul_heads(a, pool);  // never in checkpoints (config: 128 x 128)
      return matmul_heads_dtype<DType::F8_E4M3>(a, pool);
    default:
      return ref::matmul_heads(a, pool);  // ref throws the dtype error
  }
}

void matmul(float* y, const float* x, const WeightRef& w, int64_t T, ThreadPool& pool) {
  matmul_heads(ref::one_head(y, w.rows, x, w.cols, w, T), pool);
}

namespace {

// y[t * ldy + c] for c < nc (nc <= 64) and NT rows t: (first ? 0 : y[t * ldy + c]) plus the sum
// over weight rows r < rows in order of x[t * ldx + r * ldr] * w[r, c0 + c] (the weight columns
// counted from c0), four 16-lane accumulators per row of x. load(r, i, m) gives weight row r's
// columns c0 + 16 i .. + 15 as floats (lanes outside m zero).
template <int NT, class Load>
void xw_tile(float* y, int64_t ldy, bool first, const float* x, int64_t ldx, int64_t ldr,
             const Load& load, int64_t rows, int64_t nc) {
  __mmask16 m[4];
#pragma GCC unroll 8
  for (int i = 0; i < 4; ++i) m[i] = nc > 16 * i ? tail_mask(nc - 16 * i) : __mmask16(0);
  __m512 acc[NT][4];
#pragma GCC unroll 8
  for (int t = 0; t < NT; ++t)
#pragma GCC unroll 8
    for (int i = 0; i < 4; ++i)
      acc[t][i] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m[i], y + t * ldy + 16 * i);
  for (int64_t r = 0; r < rows; ++r) {
    __m512 wv[4];
#pragma GCC unroll 8
    for (int i = 0; i < 4; ++i) wv[i] = load(r, i, m[i]);
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) {
      const __m512 xr = _mm512_set1_ps(x[t * ldx + r * ldr]);
#pragma GCC unroll 8
      for (int i = 0; i < 4; ++i) acc[t][i] = _mm512_fmadd_ps(xr, wv[i], acc[t][i]);
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < NT; ++t)
#pragma GCC unroll 8
    for (int i = 0; i < 4; ++i) _mm512_mask_storeu_ps(y + t * ldy + 16 * i, m[i], acc[t][i]);
}

// The weight loader of xw_tile for a file dtype: FP8 with its block scale (each 16-column vector
// lies in one scale block: block_cols is a multiple of 16).
template <DType D>
struct DtypeColumns {
  Rows<D> w;
  int64_t c0, blk[4];  // FP8: the scale column of each vector (clamped for empty vectors)
  DtypeColumns(const WeightRef& wr, int64_t r0, int64_t c) : w(wr, r0), c0(c) {
    for (int i = 0; i < 4; ++i) blk[i] = std::min((c0 + 16 * i) / w.block_cols, w.col_blocks - 1);
  }
  __m512 operator()(int64_t r, int i, __mmask16 m) const {
    const __m512 v = load16<D>(w.data + r * w.ld + c0 + 16 * i, m);
    if constexpr (D == DType::F8_E4M3)  // x 2^8: see load16
      return _mm512_mul_ps(v, _mm512_set1_ps(w.scale_row(r)[blk[i]] * 256.0f));
    return v;
  }
};

// The weight loader of xw_tile for an integer block format (Q8_0, Q4_0, Q4_1): 16 values of one
// 32-block decoded as the format's dequantize does (d * q, d * (n - 8), d * n + m).
template <BlockFormat F>
struct BlockColumns {
  const unsigned char* q;  // row 0's quants
  const uint16_t *d, *mn;  // row 0's scales (and Q4_1 minimums)
  int64_t rb, blocks, c0;
  BlockColumns(const WeightRef& w, int64_t r0, int64_t c)
      : q(static_cast<const unsigned char*>(w.data) + r0 * w.row_bytes()),
        d(w.block_scale + r0 * (w.cols / 32)),
        mn(w.block_min ? w.block_min + r0 * (w.cols / 32) : nullptr),
        rb(w.row_bytes()),
        blocks(w.cols / 32),
        c0(c) {}
  __m512 operator()(int64_t r, int i, __mmask16 m) const {
    if (m == 0) return _mm512_setzero_ps();  // past the row (cols is a multiple of 32)
    const int64_t c = c0 + 16 * i, b = c / 32;
    const __m512 s = _mm512_set1_ps(_cvtsh_ss(d[r * blocks + b]));
    if constexpr (F == BlockFormat::Q8_0) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + r * rb + c));
      return _mm512_mul_ps(s, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(v)));
    } else {  // byte j of a block: value j in the low nibble, j + 16 in the high one
      __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + r * rb + 16 * b));
      if (c % 32 != 0) v = _mm_srli_epi16(v, 4);
      const __m512i n = _mm512_cvtepu8_epi32(_mm_and_si128(v, _mm_set1_epi8(0x0F)));
      if constexpr (F == BlockFormat::Q4_0)
        return _mm512_mul_ps(s, _mm512_cvtepi32_ps(_mm512_sub_epi32(n, _mm512_set1_epi32(8))));
      return _mm512_add_ps(_mm512_mul_ps(s, _mm512_cvtepi32_ps(n)),
                           _mm512_set1_ps(_cvtsh_ss(mn[r * blocks + b])));
    }
  }
};

// Tasks of kColsPerTask output columns of one head, head-major: every head's columns in one pass;
// Columns(w, r0, c0) loads the head's weight rows from r0 on, columns from c0 on.
template <class Columns>
void matmul_xw_tasks(const HeadMatmulArgs& a, ThreadPool& pool) {
  constexpr int64_t kColsPerTask = 64;
  const WeightRef& w = *a.w;
  const int64_t per_head = (w.cols + kColsPerTask - 1) / kColsPerTask;
  const int64_t ldx = a.x_row_stride, ldy = a.y_row_stride;
  run_tasks(pool, a.n_heads * per_head, a.n_heads * a.T * a.w_rows * w.cols,
            [&](int64_t b, int64_t e) {
              for (int64_t task = b; task < e; ++task) {
                const int64_t h = task / per_head, c0 = task % per_head * kColsPerTask;
                const int64_t nc = std::min(kColsPerTask, w.cols - c0);
                const Columns load(w, a.w_row0 + h * a.w_head_stride, c0);
                const float* x = a.x + h * a.x_head_stride;
                float* y = a.y + h * a.y_head_stride + c0;
                int64_t t = 0;
                for (; t + 4 <= a.T; t += 4)
                  xw_tile<4>(y + t * ldy, ldy, true, x + t * ldx, ldx, 1, load, a.w_rows, nc);
                for (; t < a.T; ++t)
                  xw_tile<1>(y + t * ldy, ldy, true, x + t * ldx, ldx, 1, load, a.w_rows, nc);
              }
            });
}

}  // namespace

void matmul_xw_heads(const HeadMatmulArgs& a, ThreadPool& pool) {
  ref::check_head_args(a);
  const WeightRef& w = *a.w;
  if (w.quant != nullptr && w.block_scale != nullptr && w.cols % 32 == 0 &&
      (w.quant->format != BlockFormat::Q4_1 || w.block_min != nullptr)) {
    switch (w.quant->format) {
      case BlockFormat::Q8_0:
        return matmul_xw_tasks<BlockColumns<BlockFormat::Q8_0>>(a, pool);
      case BlockFormat::Q4_0:
        return matmul_xw_tasks<BlockColumns<BlockFormat::Q4_0>>(a, pool);
      case BlockFormat::Q4_1:
        return matmul_xw_tasks<BlockColumns<BlockFormat::Q4_1>>(a, pool);
      default:
        break;
    }
  }
  switch (w.dtype) {
    case DType::F32:
      return matmul_xw_tasks<DtypeColumns<DType::F32>>(a, pool);
    case DType::BF16:
      return matmul_xw_tasks<DtypeColumns<DType::BF16>>(a, pool);
    case DType::F16:
      return matmul_xw_tasks<DtypeColumns<DType::F16>>(a, pool);
    case DType::F8_E4M3:
      if (w.scale_inv != nullptr && w.block_rows > 0 && w.block_cols > 0 && w.block_cols % 16 == 0)
        return matmul_xw_tasks<DtypeColumns<DType::F8_E4M3>>(a, pool);
      [[fallthrough]];
    default:
      return ref::matmul_xw_heads(a, pool);  // ref throws errors
  }
}

void matmul_xw(float* y, int64_t y_stride, const float* x, int64_t x_stride, const WeightRef& w,
               int64_t T, ThreadPool& pool) {
  matmul_xw_heads(ref::one_head(y, y_stride, x, x_stride, w, T), pool);
}

}  // namespace dsv3::cpu

// AVX-512 matmuls: y = x·wᵀ (matmul) and y = x·w (matmul_xw) for F32 and BF16 weights read in
// place, other dtypes dequantised a panel of rows at a time (FP32 accumulate throughout).
//
// matmul keeps one 16-lane accumulator per output y[t, r], walks the columns in order 16 at a time
// (the tail masked) and reduces the 16 lanes in a fixed order, so every y[t, r] is the same sum in
// the same order whichever tile computes it: a prefill row equals the token-by-token decode of the
// same row bit for bit. Decode (T = 1) streams 8 weight rows at a time (memory bound); prefill
// multiplies 4 rows of x by 4 weight rows per pass, so each weight vector loaded feeds 4 FMAs.
// GCC 12's AVX-512 headers build "undefined" vectors as `__m512 __Y = __Y;`, which its own
// -Wuninitialized flags once inlined here (GCC PR 105593, fixed in 13): silence just those.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "kernels/cpu/cpu.h"
#include "kernels/ref/ref.h"

// After every include: only this file's own functions are compiled for AVX-512 (cpu_kernels.cc
// checks the CPU before handing them out).
#pragma GCC target("avx512f,avx512bw,avx512vl")

#include "kernels/cpu/simd.h"

namespace dsv3::cpu {
namespace {

template <DType D>
using Elem = std::conditional_t<D == DType::F32, float, uint16_t>;

// 16 weights at p as float32, lanes outside `m` zero. BF16 widens exactly: its bits are the top
// half of the float32.
template <DType D>
inline __m512 load16(const Elem<D>* p, __mmask16 m) {
  if constexpr (D == DType::F32) {
    return _mm512_maskz_loadu_ps(m, p);
  } else {
    const __m256i h = _mm256_maskz_loadu_epi16(m, p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
}

// y[t * ldy + r] = x[t * ldx + 0 .. K) · w[r * ldw + 0 .. K) for t < NT, r < NR.
template <DType D, int NT, int NR>
void tile(float* y, int64_t ldy, const float* x, int64_t ldx, const Elem<D>* w, int64_t ldw,
          int64_t K) {
  __m512 acc[NT][NR];
  for (int t = 0; t < NT; ++t)
    for (int r = 0; r < NR; ++r) acc[t][r] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; k += 16) {
    const __mmask16 m = tail_mask(K - k);
    __m512 wv[NR];
    for (int r = 0; r < NR; ++r) wv[r] = load16<D>(w + r * ldw + k, m);
    for (int t = 0; t < NT; ++t) {
      const __m512 xv = _mm512_maskz_loadu_ps(m, x + t * ldx + k);
      for (int r = 0; r < NR; ++r) acc[t][r] = _mm512_fmadd_ps(xv, wv[r], acc[t][r]);
    }
  }
  for (int t = 0; t < NT; ++t)
    for (int r = 0; r < NR; ++r) y[t * ldy + r] = hsum(acc[t][r]);
}

// y[T, nr] (row stride ldy) = x[T, K] · w[nr, K]ᵀ (weight row stride ldw).
template <DType D>
void panel(float* y, int64_t ldy, const float* x, const Elem<D>* w, int64_t ldw, int64_t nr,
           int64_t T, int64_t K) {
  int64_t t = 0;
  for (; t + 4 <= T; t += 4) {
    int64_t r = 0;
    for (; r + 4 <= nr; r += 4)
      tile<D, 4, 4>(y + t * ldy + r, ldy, x + t * K, K, w + r * ldw, ldw, K);
    for (; r < nr; ++r) tile<D, 4, 1>(y + t * ldy + r, ldy, x + t * K, K, w + r * ldw, ldw, K);
  }
  for (; t < T; ++t) {
    int64_t r = 0;
    for (; r + 8 <= nr; r += 8)
      tile<D, 1, 8>(y + t * ldy + r, ldy, x + t * K, K, w + r * ldw, ldw, K);
    for (; r < nr; ++r) tile<D, 1, 1>(y + t * ldy + r, ldy, x + t * K, K, w + r * ldw, ldw, K);
  }
}

constexpr int64_t kRowsPerTask = 16;

}  // namespace

void matmul(float* y, const float* x, const WeightRef& w, int64_t T, ThreadPool& pool) {
  const int64_t K = w.cols, tasks = (w.rows + kRowsPerTask - 1) / kRowsPerTask;
  pool.parallel_for(tasks, [&](int64_t b, int64_t e) {
    std::vector<float> deq;  // F16 / FP8: the task's rows as float32 (SPEC §3.2 block scales)
    if (w.dtype != DType::F32 && w.dtype != DType::BF16) deq.resize(kRowsPerTask * K);
    for (int64_t task = b; task < e; ++task) {
      const int64_t r0 = task * kRowsPerTask, nr = std::min(kRowsPerTask, w.rows - r0);
      if (w.dtype == DType::F32) {
        panel<DType::F32>(y + r0, w.rows, x, static_cast<const float*>(w.data) + r0 * K, K, nr, T,
                          K);
      } else if (w.dtype == DType::BF16) {
        panel<DType::BF16>(y + r0, w.rows, x, static_cast<const uint16_t*>(w.data) + r0 * K, K, nr,
                           T, K);
      } else {
        weight_block_f32(w, r0, nr, 0, K, deq.data());
        panel<DType::F32>(y + r0, w.rows, x, deq.data(), K, nr, T, K);
      }
    }
  });
}

namespace {

// y[t, c0 .. c0 + nc) (nc <= 64) for NT rows t: the sum over weight rows r in order of
// x[t, r] * w[r, c], four 16-lane accumulators per row of x.
template <DType D, int NT>
void xw_tile(float* y, int64_t ldy, const float* x, int64_t ldx, const Elem<D>* w, int64_t ldw,
             int64_t rows, int64_t nc) {
  __mmask16 m[4];
  for (int i = 0; i < 4; ++i) m[i] = nc > 16 * i ? tail_mask(nc - 16 * i) : __mmask16(0);
  __m512 acc[NT][4];
  for (int t = 0; t < NT; ++t)
    for (int i = 0; i < 4; ++i) acc[t][i] = _mm512_setzero_ps();
  for (int64_t r = 0; r < rows; ++r) {
    __m512 wv[4];
    for (int i = 0; i < 4; ++i) wv[i] = load16<D>(w + r * ldw + 16 * i, m[i]);
    for (int t = 0; t < NT; ++t) {
      const __m512 xr = _mm512_set1_ps(x[t * ldx + r]);
      for (int i = 0; i < 4; ++i) acc[t][i] = _mm512_fmadd_ps(xr, wv[i], acc[t][i]);
    }
  }
  for (int t = 0; t < NT; ++t)
    for (int i = 0; i < 4; ++i) _mm512_mask_storeu_ps(y + t * ldy + 16 * i, m[i], acc[t][i]);
}

template <DType D>
void xw_columns(float* y, int64_t y_stride, const float* x, int64_t x_stride, const Elem<D>* w,
                int64_t rows, int64_t cols, int64_t c0, int64_t nc, int64_t T) {
  int64_t t = 0;
  for (; t + 4 <= T; t += 4)
    xw_tile<D, 4>(y + t * y_stride + c0, y_stride, x + t * x_stride, x_stride, w + c0, cols, rows,
                  nc);
  for (; t < T; ++t)
    xw_tile<D, 1>(y + t * y_stride + c0, y_stride, x + t * x_stride, x_stride, w + c0, cols, rows,
                  nc);
}

}  // namespace

void matmul_xw(float* y, int64_t y_stride, const float* x, int64_t x_stride, const WeightRef& w,
               int64_t T, ThreadPool& pool) {
  if (w.dtype != DType::F32 && w.dtype != DType::BF16) {
    ref::matmul_xw(y, y_stride, x, x_stride, w, T, pool);  // small (MLA absorb): not worth more
    return;
  }
  constexpr int64_t kColsPerTask = 64;
  const int64_t tasks = (w.cols + kColsPerTask - 1) / kColsPerTask;
  pool.parallel_for(tasks, [&](int64_t b, int64_t e) {
    for (int64_t task = b; task < e; ++task) {
      const int64_t c0 = task * kColsPerTask, nc = std::min(kColsPerTask, w.cols - c0);
      if (w.dtype == DType::F32)
        xw_columns<DType::F32>(y, y_stride, x, x_stride, static_cast<const float*>(w.data), w.rows,
                               w.cols, c0, nc, T);
      else
        xw_columns<DType::BF16>(y, y_stride, x, x_stride, static_cast<const uint16_t*>(w.data),
                                w.rows, w.cols, c0, nc, T);
    }
  });
}

}  // namespace dsv3::cpu

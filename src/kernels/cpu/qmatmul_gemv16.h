// The 16-row GEMV of Q8_0 and Q4_0 decode (qmatmul_gemv16.cc), as a header because its Q4_0
// kernel is compiled twice: qmatmul_gemv16.cc splits the nibbles with a shift and a mask,
// qmatmul_gemv16_gfni.cc with one GFNI affine instruction (a target that older AVX-512 VNNI CPUs
// lack), each defining `High` before it includes this. Include after the file's target pragma, and
// after the headers below (included before the pragma, so that only this code takes the target);
// everything here is file-local (an anonymous namespace), so each file has its own copy (as
// qmatmul_driver.h).
//
// Q8_0 and Q4_0 decode (T < 4) with the arithmetic of the AMX tiles (qmatmul_amx.cc) and of the
// VNNI panel (qmatmul_panel.cc), so that a prefill row equals its decode bit for bit on either
// CPU: the weights read in place, 16 rows at a time. vpdpbusd gives each row's products summed in
// groups of 4 in 16 lanes (Q8_0: two blocks a step, lanes 0-7 block b; Q4_0: four, lanes 4j..4j+3
// block b + j), the weights the unsigned operand (Q8_0 offset by 128, Q4_0 its nibbles 0..15; the
// offset o taken back exactly as o * -Σ qx per block); a fixed tree of integer adds (exact) turns
// the 16 rows' vectors into one per block whose lanes are the rows' block sums I, then acc =
// fma(float(I), dw * dx, acc) as on tiles (lanes = the rows: dw a vector, dx broadcast; dw * dx =
// dx * dw exactly, so the same three roundings per block and output as on tiles). A tile would
// waste 15 of its 16 columns here.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/gemm_util.h"
#include "kernels/quant_acts.h"

namespace dsv3::cpu {
namespace {

constexpr int64_t kGemvRows = 16;

// The first two levels of the rows-to-lanes tree (integer adds, exact): pairs of rows, then
// pairs of pairs, so that dword j of each 128-bit lane of w[i] sums row 4 i + j's four dwords of
// that lane in v.
inline void sum_row_quads(const __m512i v[16], __m512i w[4]) {
  __m512i u[8];
  for (int i = 0; i < 8; ++i)
    u[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2 * i], v[2 * i + 1]),
                            _mm512_unpackhi_epi32(v[2 * i], v[2 * i + 1]));
  for (int i = 0; i < 4; ++i)
    w[i] = _mm512_add_epi32(_mm512_unpacklo_epi64(u[2 * i], u[2 * i + 1]),
                            _mm512_unpackhi_epi64(u[2 * i], u[2 * i + 1]));
}

// v[0..15] (row i: lanes 0-7 block b, 8-15 block b + 1) -> lanes = rows, block b and b + 1.
inline void rows_to_lanes(__m512i v[16], __m512i* sb, __m512i* sb1) {
  __m512i w[4], x[2];
  sum_row_quads(v, w);
  for (int j = 0; j < 2; ++j)
    x[j] = _mm512_add_epi32(_mm512_shuffle_i32x4(w[2 * j], w[2 * j + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                            _mm512_shuffle_i32x4(w[2 * j], w[2 * j + 1], _MM_SHUFFLE(3, 1, 3, 1)));
  *sb = _mm512_shuffle_i32x4(x[0], x[1], _MM_SHUFFLE(2, 0, 2, 0));
  *sb1 = _mm512_shuffle_i32x4(x[0], x[1], _MM_SHUFFLE(3, 1, 3, 1));
}

// Q8_0: 64 (two blocks) or 32 (`two` false, the upper half zero) weight values from value k on,
// plus 128 (unsigned).
inline __m512i load_q8_unsigned(const uint8_t* row, int64_t k, bool two) {
  const __m512i v =
      two ? _mm512_loadu_si512(row + k)
          : _mm512_zextsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + k)));
  return _mm512_xor_si512(v, _mm512_set1_epi8(static_cast<char>(0x80)));
}

// The F16 scales of 16 weight rows (sidx: each row's first scale) at blocks b and b + 1 (`two`;
// else b only, *d1 untouched): one 4-byte gather for both.
inline void pair_scales(const uint16_t* ws, __m512i idx, const int32_t* sidx, int64_t b, bool two,
                        __m512* d0, __m512* d1) {
  if (two) {
    const __m512i g = _mm512_i32gather_epi32(
        _mm512_add_epi32(idx, _mm512_set1_epi32(static_cast<int32_t>(b))), ws, 2);
    *d0 = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(g));
    *d1 = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(g, 16)));
  } else {
    alignas(64) float d[16];
    for (int i = 0; i < 16; ++i) d[i] = _cvtsh_ss(ws[sidx[i] + b]);
    *d0 = _mm512_load_ps(d);
  }
}

// The F16 scales of 16 weight rows (sidx: each row's first scale) at blocks b..b + 3 (all four in
// the row), lanes = rows, as floats in d[0..3]: two 8-byte gathers of 8 rows each and two word
// permutes, half the gathered elements of two pair_scales.
inline void quad_scales(const uint16_t* ws, const int32_t* sidx, int64_t b, __m512 d[4]) {
  const __m256i off = _mm256_set1_epi32(static_cast<int32_t>(b));
  const __m512i g0 = _mm512_i32gather_epi64(
      _mm256_add_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(sidx)), off), ws, 2);
  const __m512i g1 = _mm512_i32gather_epi64(
      _mm256_add_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(sidx + 8)), off), ws, 2);
  // Word 4 r + j of g0 (rows 0-7) or of g1 (word 32 + 4 (r - 8) + j): block j of row r.
  alignas(64) static const uint16_t kSel[2][32] = {
      {0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56, 60,
       1, 5, 9, 13, 17, 21, 25, 29, 33, 37, 41, 45, 49, 53, 57, 61},
      {2, 6, 10, 14, 18, 22, 26, 30, 34, 38, 42, 46, 50, 54, 58, 62,
       3, 7, 11, 15, 19, 23, 27, 31, 35, 39, 43, 47, 51, 55, 59, 63}};
  for (int h = 0; h < 2; ++h) {
    const __m512i s = _mm512_permutex2var_epi16(g0, _mm512_load_si512(kSel[h]), g1);
    d[2 * h] = _mm512_cvtph_ps(_mm512_castsi512_si256(s));
    d[2 * h + 1] = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(s, 1));
  }
}

// acc += float(s + corr) * (dw * dx): one block's sums for 16 rows (lanes), as on tiles.
inline __m512 scale_add(__m512i s, int32_t corr, __m512 dw, float dx, __m512 acc) {
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s, _mm512_set1_epi32(corr))),
                         _mm512_mul_ps(dw, _mm512_set1_ps(dx)), acc);
}

// Rows past nr repeat row 0 (their outputs are dropped); sidx: each row's first scale index.
inline void gemv_rows(const uint8_t* wq, int64_t rb, int64_t blocks, int64_t nr,
                      const uint8_t* row[16], int32_t sidx[16]) {
  for (int i = 0; i < 16; ++i) {
    const int64_t r = i < nr ? i : 0;
    row[i] = wq + r * rb;
    sidx[i] = static_cast<int32_t>(r * blocks);
  }
}

// Q8_0: y[0..nr) for one activation row (quants xq, block scales xd[8 b], -128 Σ qx per block
// in corr) against the nr <= 16 weight rows from wq (rb bytes apart, F16 scales ws, `blocks` a
// row), two blocks a step.
inline void gemv16_q8(const uint8_t* wq, int64_t rb, const uint16_t* ws, int64_t blocks,
                      const int8_t* xq, const float* xd, const int32_t* corr, float* y,
                      int64_t nr) {
  const uint8_t* row[16];
  alignas(64) int32_t sidx[16];
  gemv_rows(wq, rb, blocks, nr, row, sidx);
  const __m512i idx = _mm512_load_si512(sidx);
  __m512 acc = _mm512_setzero_ps();
  for (int64_t b = 0; b < blocks; b += 2) {
    const bool two = b + 1 < blocks;
    const int64_t k = b * 32;
    const __m512i xv = _mm512_loadu_si512(xq + k);  // QuantActs pads rows with zeros to 64
    __m512i v[16];
    for (int i = 0; i < 16; ++i) {
      v[i] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), load_q8_unsigned(row[i], k, two), xv);
      // The same bytes of the next group's row (rows are short: a distance ahead within a row
      // lands in rows this group reads already), and the next group's scales every 32 blocks.
      _mm_prefetch(reinterpret_cast<const char*>(row[i] + 16 * rb + k), _MM_HINT_T0);
      if (b % 32 == 0)
        _mm_prefetch(reinterpret_cast<const char*>(ws + sidx[i] + 16 * blocks + b), _MM_HINT_T0);
    }
    __m512i sb, sb1;
    rows_to_lanes(v, &sb, &sb1);
    __m512 dwb, dwb1 = _mm512_setzero_ps();
    pair_scales(ws, idx, sidx, b, two, &dwb, &dwb1);
    acc = scale_add(sb, corr[b], dwb, xd[8 * b], acc);
    if (two) acc = scale_add(sb1, corr[b + 1], dwb1, xd[8 * b + 8], acc);
  }
  _mm512_mask_storeu_ps(y, static_cast<__mmask16>((1u << nr) - 1), acc);
}

// Q4_0's activations for gemv16_q4: per 128 values (four blocks) the values 0-15 of the four
// blocks, then their values 16-31, matching the nibbles as they lie (byte j of a block: value j
// low, j + 16 high); blocks past K zero. K rounded up to 128 bytes at out.
inline void permute_q4_acts(const int8_t* xq, int64_t blocks, int8_t* out) {
  for (int64_t b = 0; b < (blocks + 3) / 4 * 4; ++b) {
    int8_t* o = out + b / 4 * 128 + b % 4 * 16;
    if (b < blocks) {
      std::memcpy(o, xq + 32 * b, 16);
      std::memcpy(o + 64, xq + 32 * b + 16, 16);
    } else {
      std::memset(o, 0, 16);
      std::memset(o + 64, 0, 16);
    }
  }
}

// Q4_0 (corr: -8 Σ qx per block; xp: permute_q4_acts), four blocks a step: a 64-byte load of a
// row's quants, its low and high nibbles against the permuted activations, two vpdpbusd, no byte
// shuffles; lanes 4j..4j+3 hold block j's partial sums. High::nibbles(q) gives each byte's high
// nibble (the including file's instruction for it).
template <class High>
void gemv16_q4(const uint8_t* wq, int64_t rb, const uint16_t* ws, int64_t blocks, const int8_t* xp,
               const float* xd, const int32_t* corr, float* y, int64_t nr) {
  const uint8_t* row[16];
  alignas(64) int32_t sidx[16];
  gemv_rows(wq, rb, blocks, nr, row, sidx);
  const __m512i idx = _mm512_load_si512(sidx), nib = _mm512_set1_epi8(0x0F);
  __m512 acc = _mm512_setzero_ps();
  for (int64_t b = 0; b < blocks; b += 4) {
    const int64_t nb = std::min<int64_t>(4, blocks - b);
    const __mmask64 m = nb == 4 ? ~__mmask64(0) : (__mmask64(1) << (16 * nb)) - 1;
    const __m512i xlo = _mm512_loadu_si512(xp + 32 * b), xhi = _mm512_loadu_si512(xp + 32 * b + 64);
    __m512i v[16];
    for (int i = 0; i < 16; ++i) {
      const __m512i q = _mm512_maskz_loadu_epi8(m, row[i] + 16 * b);
      const __m512i lo = _mm512_and_si512(q, nib);
      const __m512i hi = High::nibbles(q);
      v[i] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, xlo), hi, xhi);
      _mm_prefetch(reinterpret_cast<const char*>(row[i] + 16 * rb + 16 * b),
                   _MM_HINT_T0);  // as Q8_0
      if (b % 32 == 0)
        _mm_prefetch(reinterpret_cast<const char*>(ws + sidx[i] + 16 * blocks + b), _MM_HINT_T0);
    }
    // Rows to lanes: pairs of rows, pairs of pairs (each 128-bit lane then one block of 4 rows),
    // then a 4 x 4 transpose of the 128-bit lanes; integer adds, exact.
    __m512i w4[4], sblk[4];
    sum_row_quads(v, w4);
    const __m512i t0 = _mm512_shuffle_i32x4(w4[0], w4[1], _MM_SHUFFLE(1, 0, 1, 0));
    const __m512i t1 = _mm512_shuffle_i32x4(w4[0], w4[1], _MM_SHUFFLE(3, 2, 3, 2));
    const __m512i t2 = _mm512_shuffle_i32x4(w4[2], w4[3], _MM_SHUFFLE(1, 0, 1, 0));
    const __m512i t3 = _mm512_shuffle_i32x4(w4[2], w4[3], _MM_SHUFFLE(3, 2, 3, 2));
    sblk[0] = _mm512_shuffle_i32x4(t0, t2, _MM_SHUFFLE(2, 0, 2, 0));
    sblk[1] = _mm512_shuffle_i32x4(t0, t2, _MM_SHUFFLE(3, 1, 3, 1));
    sblk[2] = _mm512_shuffle_i32x4(t1, t3, _MM_SHUFFLE(2, 0, 2, 0));
    sblk[3] = _mm512_shuffle_i32x4(t1, t3, _MM_SHUFFLE(3, 1, 3, 1));
    if (nb == 4) {
      __m512 d[4];
      quad_scales(ws, sidx, b, d);
      for (int j = 0; j < 4; ++j) acc = scale_add(sblk[j], corr[b + j], d[j], xd[8 * (b + j)], acc);
      continue;
    }
    for (int64_t j = 0; j < nb; j += 2) {
      __m512 d0, d1 = _mm512_setzero_ps();
      pair_scales(ws, idx, sidx, b + j, j + 1 < nb, &d0, &d1);
      acc = scale_add(sblk[j], corr[b + j], d0, xd[8 * (b + j)], acc);
      if (j + 1 < nb) acc = scale_add(sblk[j + 1], corr[b + j + 1], d1, xd[8 * (b + j + 1)], acc);
    }
  }
  _mm512_mask_storeu_ps(y, static_cast<__mmask16>((1u << nr) - 1), acc);
}

// One matmul of a batch, prepared: where its offset corrections (-o * Σ qx per block of every
// activation row: o = 128, Q8_0's offset to unsigned, or 8) and Q4_0's permuted activations lie.
struct GemvPlan {
  const HeadMatmulArgs* a;
  const QuantActs* qa;
  int64_t corr, xp;    // offsets into the batch's scratch (ints, bytes)
  int64_t per_head;    // tasks of kGemvRows rows per head
  int64_t first_task;  // of the batch's task list
};

inline int64_t permuted_bytes(int64_t blocks) {
  return (blocks + 3) / 4 * 128;
}

// The matmuls a[0..n) (each a Q8_0 or Q4_0 weight, T < 4) against their quantized activations
// qa[i], as one task list over the pool: every matmul's 16-row tasks in turn, so a thread streams
// from one matrix into the next (a MoE layer's experts) with one hand-off for all of them.
template <class High>
void gemv_batch(const HeadMatmulArgs* a, const QuantActs* const* qa, int64_t n, ThreadPool& pool) {
  thread_local std::vector<GemvPlan> caller_plans;  // the tasks below name it, not the workers'
  std::vector<GemvPlan>& plans = caller_plans;
  plans.resize(static_cast<size_t>(n));
  int64_t n_corr = 0, n_xp = 0, tasks = 0, macs = 0;
  for (int64_t j = 0; j < n; ++j) {
    const int64_t blocks = a[j].w->cols / 32, rows = a[j].n_heads * a[j].T;
    const bool q4 = a[j].w->quant->format == BlockFormat::Q4_0;
    plans[j] = {&a[j], qa[j], n_corr, n_xp, (a[j].w_rows + kGemvRows - 1) / kGemvRows, tasks};
    n_corr += rows * blocks;
    n_xp += q4 ? rows * permuted_bytes(blocks) : 0;
    tasks += a[j].n_heads * plans[j].per_head;
    macs += rows * a[j].w_rows * a[j].w->cols;
  }
  auto* corr = static_cast<int32_t*>(gemm_scratch(2, std::max<int64_t>(1, n_corr) * 4));
  auto* xp = static_cast<int8_t*>(gemm_scratch(3, std::max<int64_t>(1, n_xp)));
  for (const GemvPlan& p : plans) {
    const int64_t blocks = p.a->w->cols / 32, rows = p.a->n_heads * p.a->T;
    const bool q4 = p.a->w->quant->format == BlockFormat::Q4_0;
    for (int64_t i = 0; i < rows; ++i) {
      for (int64_t b = 0; b < blocks; ++b)
        corr[p.corr + i * blocks + b] = (q4 ? -8 : -128) * p.qa->block_qsum(i, b);
      if (q4) permute_q4_acts(p.qa->q_row(i), blocks, xp + p.xp + i * permuted_bytes(blocks));
    }
  }
  run_tasks(pool, tasks, macs, [&](int64_t b, int64_t e) {
    int64_t j = 0;
    for (int64_t task = b; task < e; ++task) {
      while (task >= plans[j].first_task + plans[j].a->n_heads * plans[j].per_head) ++j;
      const GemvPlan& p = plans[j];
      const HeadMatmulArgs& m = *p.a;
      const WeightRef& w = *m.w;
      const int64_t blocks = w.cols / 32, rb = w.row_bytes(), local = task - p.first_task;
      const int64_t h = local / p.per_head, r0 = local % p.per_head * kGemvRows;
      const int64_t r = m.w_row0 + h * m.w_head_stride + r0,
                    nr = std::min(kGemvRows, m.w_rows - r0);
      const auto* wq = static_cast<const uint8_t*>(w.data) + r * rb;
      for (int64_t t = 0; t < m.T; ++t) {
        const int64_t i = h * m.T + t;
        float* y = m.y + h * m.y_head_stride + t * m.y_row_stride + r0;
        const int32_t* ci = corr + p.corr + i * blocks;
        if (w.quant->format == BlockFormat::Q8_0)
          gemv16_q8(wq, rb, w.block_scale + r * blocks, blocks, p.qa->q_row(i), p.qa->d_row(i), ci,
                    y, nr);
        else
          gemv16_q4<High>(wq, rb, w.block_scale + r * blocks, blocks,
                          xp + p.xp + i * permuted_bytes(blocks), p.qa->d_row(i), ci, y, nr);
      }
    }
  });
}

}  // namespace
}  // namespace dsv3::cpu

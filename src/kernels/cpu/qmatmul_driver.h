// The ISA-independent part of the integer block-format matmuls (qmatmul.cc: AVX-512 VNNI, whose
// Q8_0 and Q4_0 go to qmatmul_panel.cc / qmatmul_gemv16.cc instead; qmatmul_avx2.cc: AVX2):
// activations quantized once per call (quant_acts.h, into a per-thread buffer that only grows: no
// allocation per token once the shapes have been seen), then tasks of 16 weight rows of one head,
// each walking the rows of x 4 at a time against 4 weight rows (every weight vector loaded feeds 4
// rows of x) and the rest one at a time against 8 weight rows (decode streams 8 rows at once). An
// ISA supplies Isa::tile<F, NT, NR>, which gives y[t][i] for NT rows of x and NR weight rows, and
// Isa::kQuantizeRow, its activation quantizer (null: the scalar one); tile must compute each
// y[t][i] by the same instructions in the same order whatever NT and NR are, so an output depends
// on its own row of x only: a prefill row equals its decode bit for bit
// (tests/unit/kernels/test_qmatmul.cc checks it). Include after the file's target pragma, and after
// kernels/cpu/cpu.h and kernels/ref/ref.h (included before the pragma, so that only this code takes
// the file's target); everything here is file-local (an anonymous namespace), so each ISA's file
// has its own copy.
#pragma once

#include "kernels/cpu/cpu.h"
#include "kernels/quant_acts.h"
#include "kernels/ref/ref.h"

namespace dsv3::cpu {
namespace {

// The weight rows of an integer block-format matrix from row r0 on.
struct QRows {
  const uint8_t* q;   // quants of row r0
  int64_t rb;         // bytes between rows of q
  const uint16_t* d;  // F16 scales of row r0, `blocks` per row
  const uint16_t* m;  // Q4_1: F16 minimums; else null
  int64_t blocks;

  QRows(const WeightRef& w, int64_t r0)
      : q(static_cast<const uint8_t*>(w.data) + r0 * w.row_bytes()),
        rb(w.row_bytes()),
        d(w.block_scale + r0 * (w.cols / 32)),
        m(w.block_min ? w.block_min + r0 * (w.cols / 32) : nullptr),
        blocks(w.cols / 32) {}
};

template <class Isa, BlockFormat F>
void qpanel(float* y, int64_t ldy, const QuantActs& qa, int64_t arow, int64_t T, const QRows& w,
            int64_t nr, int64_t K) {
  int64_t t = 0;
  for (; t + 4 <= T; t += 4) {
    int64_t r = 0;
    for (; r + 4 <= nr; r += 4)
      Isa::template tile<F, 4, 4>(y + t * ldy + r, ldy, qa, arow + t, w, r, K);
    for (; r < nr; ++r) Isa::template tile<F, 4, 1>(y + t * ldy + r, ldy, qa, arow + t, w, r, K);
  }
  for (; t < T; ++t) {
    int64_t r = 0;
    for (; r + 8 <= nr; r += 8)
      Isa::template tile<F, 1, 8>(y + t * ldy + r, ldy, qa, arow + t, w, r, K);
    for (; r < nr; ++r) Isa::template tile<F, 1, 1>(y + t * ldy + r, ldy, qa, arow + t, w, r, K);
  }
}

constexpr int64_t kRowsPerTask = 16;  // weight rows per task

template <class Isa, BlockFormat F>
void qmatmul_format(const HeadMatmulArgs& a, const QuantActs& qa, ThreadPool& pool) {
  const WeightRef& w = *a.w;
  const int64_t per_head = (a.w_rows + kRowsPerTask - 1) / kRowsPerTask;
  // The task captures two references only, so std::function (ThreadPool::parallel_for) keeps it
  // in place instead of allocating: nothing on the heap per call.
  const auto task = [&a, &qa](int64_t b, int64_t e) {
    const int64_t per = (a.w_rows + kRowsPerTask - 1) / kRowsPerTask;
    for (int64_t i = b; i < e; ++i) {
      const int64_t h = i / per, r0 = i % per * kRowsPerTask;
      const int64_t nr = std::min(kRowsPerTask, a.w_rows - r0);
      qpanel<Isa, F>(a.y + h * a.y_head_stride + r0, a.y_row_stride, qa, h * a.T, a.T,
                     QRows(*a.w, a.w_row0 + h * a.w_head_stride + r0), nr, a.w->cols);
    }
  };
  run_tasks(pool, a.n_heads * per_head, a.n_heads * a.T * a.w_rows * w.cols, task);
}

template <class Isa>
void qmatmul_heads_isa(const HeadMatmulArgs& a, ThreadPool& pool) {
  ref::check_head_args(a);
  static thread_local QuantActs qa;
  ref::quantize_head_acts(a, qa, pool, Isa::kQuantizeRow);
  const BlockFormat f = a.w->quant->format;
  if constexpr (requires { Isa::kBlockSums; }) {  // Q8_0 / Q4_0: the AMX tiles' arithmetic
    if (f == BlockFormat::Q8_0 || f == BlockFormat::Q4_0)
      return a.T < 4 ? qmatmul_gemv16(a, qa, pool, Isa::kGfni && gfni_supported())
                     : qmatmul_panel_vnni(a, qa, pool);
  } else {
    if (f == BlockFormat::Q8_0) return qmatmul_format<Isa, BlockFormat::Q8_0>(a, qa, pool);
    if (f == BlockFormat::Q4_0) return qmatmul_format<Isa, BlockFormat::Q4_0>(a, qa, pool);
  }
  if (f == BlockFormat::Q4_1) return qmatmul_format<Isa, BlockFormat::Q4_1>(a, qa, pool);
  ref::matmul_heads(a, pool);
}

}  // namespace
}  // namespace dsv3::cpu

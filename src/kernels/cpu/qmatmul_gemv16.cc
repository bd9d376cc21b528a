// Q8_0 and Q4_0 decode by the 16-row GEMV (qmatmul_gemv16.h), Q4_0's high nibbles by a shift
// and a mask; with GFNI, the batch goes to qmatmul_gemv16_gfni.cc instead. And matmul_batch,
// whose decode jobs go there as one batch.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <vector>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/gemm_util.h"
#include "kernels/quant_acts.h"
#include "kernels/ref/ref.h"

#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,f16c,fma")  // after the includes

namespace dsv3::cpu {
namespace {
struct High {
  static __m512i nibbles(__m512i q) {
    return _mm512_and_si512(_mm512_srli_epi16(q, 4), _mm512_set1_epi8(0x0F));
  }
};
}  // namespace
}  // namespace dsv3::cpu

#include "kernels/cpu/qmatmul_gemv16.h"

namespace dsv3::cpu {

bool gfni_supported() {
  static const bool ok = __builtin_cpu_supports("gfni");
  return ok;
}

void qmatmul_gemv16(const HeadMatmulArgs* a, const QuantActs* const* qa, int64_t n,
                    ThreadPool& pool, bool gfni) {
  if (gfni)
    qmatmul_gemv16_gfni(a, qa, n, pool);
  else
    gemv_batch<High>(a, qa, n, pool);
}

void qmatmul_gemv16(const HeadMatmulArgs& a, const QuantActs& qa, ThreadPool& pool, bool gfni) {
  const QuantActs* q = &qa;
  qmatmul_gemv16(&a, &q, 1, pool, gfni);
}

void matmul_batch(const MatmulJob* jobs, int64_t n, ThreadPool& pool) {
  // The GEMV takes what qmatmul_heads would send it: Q8_0 / Q4_0 with T < 4 on VNNI or AMX.
  bool gemv = amx_int8_supported() || avx512_vnni_supported();
  for (int64_t i = 0; gemv && i < n; ++i) {
    const WeightRef& w = *jobs[i].w;
    gemv = w.quant != nullptr && jobs[i].T > 0 && jobs[i].T < 4 && w.cols % 32 == 0 &&
           (w.quant->format == BlockFormat::Q8_0 || w.quant->format == BlockFormat::Q4_0);
  }
  if (!gemv) {
    for (int64_t i = 0; i < n; ++i) matmul(jobs[i].y, jobs[i].x, *jobs[i].w, jobs[i].T, pool);
    return;
  }
  // One QuantActs per distinct activation (gate and up share theirs), kept per thread: no
  // allocation per token once the shapes have been seen.
  thread_local std::vector<HeadMatmulArgs> args;
  thread_local std::vector<const QuantActs*> qa;
  thread_local std::deque<QuantActs> acts;
  args.clear();
  qa.clear();
  size_t used = 0;
  for (int64_t i = 0; i < n; ++i) {
    const MatmulJob& j = jobs[i];
    args.push_back(ref::one_head(j.y, j.w->rows, j.x, j.w->cols, *j.w, j.T));
    ref::check_head_args(args.back());
    const bool same =
        i > 0 && j.x == jobs[i - 1].x && j.T == jobs[i - 1].T && j.w->cols == jobs[i - 1].w->cols;
    if (!same) {
      if (used == acts.size()) acts.emplace_back();
      ref::quantize_head_acts(args.back(), acts[used++], pool, quantize_acts_row);
    }
    qa.push_back(&acts[used - 1]);
  }
  qmatmul_gemv16(args.data(), qa.data(), n, pool, gfni_supported());
}

}  // namespace dsv3::cpu

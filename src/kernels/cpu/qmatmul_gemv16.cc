// Q8_0 and Q4_0 decode by the 16-row GEMV (qmatmul_gemv16.h), Q4_0's high nibbles by a shift
// and a mask; with GFNI, Q4_0 goes to qmatmul_gemv16_gfni.cc instead.
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

void qmatmul_gemv16(const HeadMatmulArgs& a, const QuantActs& qa, ThreadPool& pool, bool gfni) {
  if (a.w->quant->format == BlockFormat::Q8_0)
    gemv_heads<BlockFormat::Q8_0, High>(a, qa, pool);
  else if (gfni)
    qmatmul_gemv16_q4_gfni(a, qa, pool);
  else
    gemv_heads<BlockFormat::Q4_0, High>(a, qa, pool);
}

}  // namespace dsv3::cpu

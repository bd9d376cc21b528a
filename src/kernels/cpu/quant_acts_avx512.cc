// QuantActs::quantize_row (quant_acts.h) with AVX-512, bit for bit the same: per 32-block the
// largest |x| (max is exact, so the lane order does not matter), d = amax / 127, q = clamp(
// roundscale-to-nearest-even(x / d), -127, 127) (the scalar version's nearbyint in the default
// rounding mode), q = 0 where d = 0 or the row holds a value that is not finite (d = NaN then).
// The per-group sums are the scalar version's. The scalar loop of divisions was a sixth of the
// time of a quantized prefill on AMX tiles. test_qmatmul compares the two on every field.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <limits>

#include "kernels/cpu/cpu.h"
#include "kernels/quant_acts.h"

#pragma GCC target("avx512f,avx512bw,avx512vl")  // after includes

#include "kernels/cpu/simd.h"

namespace dsv3::cpu {

void quantize_acts_row(QuantActs& qa, int64_t row, const float* x) {
  const int64_t K = qa.K, Kp = qa.Kp;
  int8_t* qr = qa.q.data() + row * Kp;
  float* dr = qa.d.data() + row * (Kp / 4);
  int32_t* nr = qa.neg8.data() + row * (Kp / 4);
  float* sr = qa.dsum.data() + row * (Kp / 4);
  __mmask16 bad = 0;  // x - x is NaN exactly for an infinite or NaN x
  for (int64_t k = 0; k < K; k += 16) {
    const __mmask16 m = tail_mask(K - k);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + k);
    bad |= _mm512_mask_cmp_ps_mask(m, _mm512_sub_ps(v, v), _mm512_setzero_ps(), _CMP_NEQ_UQ);
  }
  const __m512 lim = _mm512_set1_ps(127.0f),
               abs = _mm512_castsi512_ps(_mm512_set1_epi32(0x7FFFFFFF));
  for (int64_t b = 0; b < Kp / 32; ++b) {
    const int64_t k = b * 32;
    const __mmask16 m0 = k < K ? tail_mask(K - k) : 0, m1 = k + 16 < K ? tail_mask(K - k - 16) : 0;
    const __m512 v0 = _mm512_maskz_loadu_ps(m0, x + k), v1 = _mm512_maskz_loadu_ps(m1, x + k + 16);
    __m512 a = _mm512_max_ps(_mm512_and_ps(v0, abs), _mm512_and_ps(v1, abs));
    a = _mm512_max_ps(a, _mm512_shuffle_f32x4(a, a, _MM_SHUFFLE(1, 0, 3, 2)));
    a = _mm512_max_ps(a, _mm512_shuffle_f32x4(a, a, _MM_SHUFFLE(2, 3, 0, 1)));
    a = _mm512_max_ps(a, _mm512_permute_ps(a, _MM_SHUFFLE(1, 0, 3, 2)));
    a = _mm512_max_ps(a, _mm512_permute_ps(a, _MM_SHUFFLE(2, 3, 0, 1)));
    const float amax = _mm512_cvtss_f32(a);
    const float db = bad == 0 ? amax / 127.0f : std::numeric_limits<float>::quiet_NaN();
    __m128i q0 = _mm_setzero_si128(), q1 = _mm_setzero_si128();
    if (bad == 0 && db != 0) {
      const __m512 d = _mm512_set1_ps(db);
      const auto quant = [&](__m512 v) {
        const __m512 r = _mm512_roundscale_ps(_mm512_div_ps(v, d),
                                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        return _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(
            _mm512_min_ps(_mm512_max_ps(r, _mm512_sub_ps(_mm512_setzero_ps(), lim)), lim)));
      };
      q0 = quant(v0), q1 = quant(v1);
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qr + k), q0);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qr + k + 16), q1);
    for (int64_t g = b * 8; g < b * 8 + 8; ++g) {
      const int32_t s = qr[4 * g] + qr[4 * g + 1] + qr[4 * g + 2] + qr[4 * g + 3];
      dr[g] = db;
      nr[g] = -8 * s;
      sr[g] = db * static_cast<float>(s);
    }
  }
}

}  // namespace dsv3::cpu

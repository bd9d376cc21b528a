// AVX-512 helpers shared by the kernels/cpu files. Include after every other header and after the
// file's `#pragma GCC target("avx512f,avx512bw,avx512vl")`.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace dsv3::cpu {

// The first min(n, 16) lanes (n > 0).
inline __mmask16 tail_mask(int64_t n) {
  return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1);
}

// The sum of the 16 lanes in a fixed tree order (halves, quarters, pairs, neighbours), so a sum
// is the same wherever it is computed. Own code rather than _mm512_reduce_add_ps, which trips
// GCC 12's -Wmaybe-uninitialized inside its header.
inline float hsum(__m512 v) {
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(1, 0, 3, 2)));
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(2, 3, 0, 1)));
  v = _mm512_add_ps(v, _mm512_permute_ps(v, _MM_SHUFFLE(1, 0, 3, 2)));
  v = _mm512_add_ps(v, _mm512_permute_ps(v, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm512_cvtss_f32(v);
}

}  // namespace dsv3::cpu

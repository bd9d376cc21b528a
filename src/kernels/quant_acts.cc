// Activation quantization for the integer block formats (quant_acts.h).
#include "kernels/quant_acts.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "base/thread_pool.h"

namespace dsv3 {

void QuantActs::reshape(int64_t n_rows, int64_t n_cols) {
  rows = n_rows, K = n_cols, Kp = (n_cols + 63) / 64 * 64;
  const auto grow = [](auto& v, int64_t n) {
    if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  };
  grow(q, rows * Kp);
  grow(d, rows * Kp / 4);
  grow(neg8, rows * Kp / 4);
  grow(dsum, rows * Kp / 4);
}

void QuantActs::quantize_row(int64_t row, const float* x) {
  int8_t* qr = q.data() + row * Kp;
  float* dr = d.data() + row * (Kp / 4);
  int32_t* nr = neg8.data() + row * (Kp / 4);
  float* sr = dsum.data() + row * (Kp / 4);
  bool finite = true;
  for (int64_t i = 0; i < K; ++i) finite = finite && std::isfinite(x[i]);
  for (int64_t b = 0; b < Kp / 32; ++b) {
    float amax = 0;
    for (int64_t i = b * 32; i < std::min(K, b * 32 + 32); ++i)
      amax = std::max(amax, std::fabs(x[i]));
    const float db = finite ? amax / 127.0f : std::numeric_limits<float>::quiet_NaN();
    for (int64_t i = b * 32; i < b * 32 + 32; ++i)
      qr[i] = i < K && finite && db != 0
                  ? static_cast<int8_t>(std::clamp(std::nearbyint(x[i] / db), -127.0f, 127.0f))
                  : int8_t{0};
    for (int64_t g = b * 8; g < b * 8 + 8; ++g) {
      const int32_t s = qr[4 * g] + qr[4 * g + 1] + qr[4 * g + 2] + qr[4 * g + 3];
      dr[g] = db;
      nr[g] = -8 * s;
      sr[g] = db * static_cast<float>(s);
    }
  }
}

void QuantActs::group4_rows(ThreadPool& pool) {
  Kg = (Kp + 127) / 128 * 128;
  const auto grow = [](auto& v, int64_t n) {
    if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  };
  grow(q4, rows * Kg);
  grow(d4, rows * Kg / 8);
  grow(neg8_4, rows * Kg / 8);
  const int64_t blocks = Kp / 32;
  const auto group = [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int8_t* qr = q_row(r);
      int8_t* o = q4.data() + r * Kg;
      float* dr = d4.data() + r * (Kg / 8);
      int32_t* nr = neg8_4.data() + r * (Kg / 8);
      for (int64_t b = 0; b < Kg / 32; ++b) {
        int8_t* lo = o + b / 4 * 128 + b % 4 * 16;
        float* dl = dr + b / 4 * 16 + b % 4 * 4;
        int32_t* nl = nr + b / 4 * 16 + b % 4 * 4;
        int32_t sum = 0;
        for (int i = 0; i < 16; ++i) {
          lo[i] = b < blocks ? qr[32 * b + i] : int8_t{0};
          lo[64 + i] = b < blocks ? qr[32 * b + 16 + i] : int8_t{0};
          sum += lo[i] + lo[64 + i];
        }
        for (int l = 0; l < 4; ++l) {
          dl[l] = b < blocks ? d_row(r)[8 * b] : 0.0f;
          nl[l] = l == 0 ? -8 * sum : 0;
        }
      }
    }
  };
  if (rows * Kg < (int64_t{1} << 16))  // a decode row: not worth waking the pool
    group(0, rows);
  else
    pool.parallel_for(rows, group);
}

}  // namespace dsv3

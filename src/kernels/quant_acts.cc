// Activation quantization for the integer block formats (quant_acts.h).
#include "kernels/quant_acts.h"

#include <algorithm>
#include <cmath>
#include <limits>

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

}  // namespace dsv3

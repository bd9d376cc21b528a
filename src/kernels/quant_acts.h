// Activations quantized for the integer block formats' dot products (Q8_0, Q4_0, Q4_1 weights):
// each row of K values (K a multiple of 32) in blocks of 32, as llama.cpp quantizes activations
// to q8_0 for its integer dot products, but with a float32 scale:
//   d = amax / 127,  q = rint(x / d) in [-127, 127]  (ties to even; d = 0: q = 0),
// so x ~ d * q and a block's dot product with weight quants is an integer sum times scales. A
// row holding a value that is not finite gets d = NaN (its outputs are NaN, as in float). The
// rows are padded with zeros to Kp, K rounded up to 64 (a 512-bit step covers two blocks). Per
// group of 4 consecutive values (the lanes of a vpdpbusd sum) the row also keeps the block's
// scale, -8 times the group's quant sum (Q4_0's offset of 8) and the scale times that sum (Q4_1's
// minimum), so the SIMD kernels load them as vectors. Every row depends on its own values only.
#pragma once
#include <cstdint>
#include <vector>

namespace dsv3 {

struct QuantActs {
  int64_t rows = 0, K = 0, Kp = 0;
  std::vector<int8_t> q;      // [rows, Kp]
  std::vector<float> d;       // [rows, Kp / 4]: the block's scale, once per group of 4
  std::vector<int32_t> neg8;  // [rows, Kp / 4]: -8 * the group's quant sum
  std::vector<float> dsum;    // [rows, Kp / 4]: scale * the group's quant sum

  // Room for rows x K; the buffers only grow, so a buffer reused across calls allocates only
  // when a call needs more than any before it.
  void reshape(int64_t rows, int64_t K);
  // Row `row` from K floats at x.
  void quantize_row(int64_t row, const float* x);

  const int8_t* q_row(int64_t r) const { return q.data() + r * Kp; }
  const float* d_row(int64_t r) const { return d.data() + r * (Kp / 4); }
  const int32_t* neg8_row(int64_t r) const { return neg8.data() + r * (Kp / 4); }
  // Σ q over block b of row r (from its 8 groups' -8 Σ q): the kernels' -o Σ qx corrections.
  int32_t block_qsum(int64_t r, int64_t b) const {
    int32_t s = 0;
    for (int g = 0; g < 8; ++g) s += neg8_row(r)[8 * b + g];
    return s / -8;
  }
  const float* dsum_row(int64_t r) const { return dsum.data() + r * (Kp / 4); }
};

}  // namespace dsv3

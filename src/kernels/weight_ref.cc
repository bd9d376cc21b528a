// WeightRef blocks as float32: the one place kernels turn storage dtypes into compute floats.
#include <string>

#include "base/error.h"
#include "kernels/kernels.h"
#include "tensor/convert.h"

namespace dsv3 {

WeightRef slice_rows(const WeightRef& w, int64_t r0, int64_t n) {
  WeightRef s = w;
  s.data = static_cast<const unsigned char*>(w.data) + r0 * w.row_bytes();
  s.rows = n;
  s.scale_row0 = w.scale_row0 + r0;
  if (w.quant) {
    const int64_t blocks = w.cols / w.quant->block_cols;
    s.block_scale = w.block_scale + r0 * blocks;
    if (w.block_min) s.block_min = w.block_min + r0 * blocks;
  }
  return s;
}

void weight_block_f32(const WeightRef& w, int64_t r0, int64_t nr, int64_t c0, int64_t nc,
                      float* out) {
  if (w.quant) {  // integer block formats: whole blocks at once, else value by value
    const BlockFormatTraits& f = *w.quant;
    const int64_t bc = f.block_cols, blocks = w.cols / bc;
    DSV3_CHECK(w.block_scale != nullptr && (!f.has_min || w.block_min != nullptr),
               "kernels: " + std::string(f.name) + " weight without its scales");
    const auto* base = static_cast<const unsigned char*>(w.data);
    for (int64_t i = 0; i < nr; ++i) {
      const unsigned char* q = base + (r0 + i) * w.row_bytes();
      const uint16_t* d = w.block_scale + (r0 + i) * blocks;
      const uint16_t* m = f.has_min ? w.block_min + (r0 + i) * blocks : nullptr;
      float* row = out + i * nc;
      if (c0 % bc == 0 && nc % bc == 0) {
        f.dequantize_row(q + f.quant_row_bytes(c0), d + c0 / bc, m ? m + c0 / bc : nullptr, nc,
                         row);
        continue;
      }
      for (int64_t j = 0; j < nc; ++j) row[j] = dequantize_value(f.format, q, d, m, c0 + j);
    }
    return;
  }
  DSV3_CHECK(w.dtype == DType::F32 || w.dtype == DType::BF16 || w.dtype == DType::F16 ||
                 w.dtype == DType::F8_E4M3,
             "kernels: weight dtype " + std::string(dtype_name(w.dtype)) + " is not supported",
             "weights must be F32, BF16, F16 or F8_E4M3 with weight_scale_inv");
  DSV3_CHECK(w.dtype != DType::F8_E4M3 || w.scale_inv != nullptr,
             "kernels: F8_E4M3 weight without scale_inv",
             "FP8 weights need their weight_scale_inv (SPEC §3.2)");
  const size_t esize = dtype_size(w.dtype);
  const auto* base = static_cast<const unsigned char*>(w.data);
  const int64_t col_blocks = (w.cols + w.block_cols - 1) / w.block_cols;
  for (int64_t i = 0; i < nr; ++i) {
    float* row = out + i * nc;
    convert_to_f32(w.dtype, base + ((r0 + i) * w.cols + c0) * esize, row, nc);
    if (w.dtype != DType::F8_E4M3) continue;
    const float* scales = w.scale_inv + ((w.scale_row0 + r0 + i) / w.block_rows) * col_blocks;
    for (int64_t j = 0; j < nc; ++j) row[j] *= scales[(c0 + j) / w.block_cols];
  }
}

}  // namespace dsv3

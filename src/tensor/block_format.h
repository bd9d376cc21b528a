// Weight block formats: how a matrix's values are packed into blocks, apart from DType (the file
// I/O type of each stored tensor), as ggml's type traits (ARCHITECTURE habit 13). One table entry
// per format says its block size, its bytes per block, the safetensors dtype of its quants and
// how a row is quantized and dequantized. Kernels read the integer formats (Q8_0, Q4_0, Q4_1)
// through WeightRef::quant, a pointer into this table.
//
// The integer formats quantize each row in blocks of 32 consecutive values (docs/QUANTIZATION.md):
//   q8_0  d = f16(amax / 127),            q = clamp(rint(x / d), -127, 127),  x ~ d * q
//   q4_0  d = f16(v / -8) (v: the value of largest |v|),
//                                        q = clamp(rint(x / d) + 8, 0, 15),   x ~ d * (q - 8)
//   q4_1  d = f16((max - min) / 15), m = f16(min),
//                                        q = clamp(rint((x - m) / d), 0, 15), x ~ d * q + m
// rint rounds to nearest, ties to even, in float32; a zero scale gives q = 0 (q4_0: 8). The
// scale (and minimum) of a block is rounded to f16 before the quants are computed from it, so the
// quants are the best for the stored scale. 4-bit quants pack two to a byte as ggml does: byte j
// of a block holds value j in its low nibble and value j + 16 in its high nibble.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "tensor/dtype.h"

namespace dsv3 {

enum class BlockFormat : uint8_t { BF16, E4M3_128x128, Q8_0, Q4_0, Q4_1 };

struct BlockFormatTraits {
  BlockFormat format;
  const char* name;         // "bf16", "fp8_128x128", "q8_0", "q4_0", "q4_1"
  int64_t block_cols;       // values of a row one scale covers (1: no scale)
  int64_t block_rows;       // rows one scale covers (FP8: 128; else 1)
  size_t bytes_per_block;   // quants + scale (+ min) of one block_rows x block_cols block
  DType quant_dtype;        // safetensors dtype of the tensor holding the quants
  int64_t values_per_elem;  // values per element of that tensor (4-bit: 2 per U8)
  DType scale_dtype;        // of NAME_scale (F16) or NAME_scale_inv (FP8: F32); BF16: unused
  bool has_min;             // q4_1: NAME_min, F16, beside NAME_scale
  // One row of n values (n a multiple of block_cols) to quants, scales and minimums (null where
  // the format has none). Null for FP8, whose scales span 128 rows (tensor/block_scale.h).
  // Throws Error for a value that is not finite or a scale that overflows f16.
  void (*quantize_row)(const float* x, int64_t n, void* q, uint16_t* scale, uint16_t* min);
  // The inverse: n values of one row as float32. Null for FP8 (kernels' weight_block_f32).
  void (*dequantize_row)(const void* q, const uint16_t* scale, const uint16_t* min, int64_t n,
                         float* y);

  double bits_per_value() const {
    return 8.0 * static_cast<double>(bytes_per_block) /
           static_cast<double>(block_cols * block_rows);
  }
  // Bytes of the quants of one row of `cols` values (cols a multiple of block_cols).
  int64_t quant_row_bytes(int64_t cols) const {
    return cols / values_per_elem * static_cast<int64_t>(dtype_size(quant_dtype));
  }
};

const BlockFormatTraits& block_format_traits(BlockFormat f);
// "q8_0" -> Q8_0, ...; nullopt for an unknown name.
std::optional<BlockFormat> block_format_from_name(std::string_view name);
// The integer format of a quants tensor with a NAME_scale: I8 -> q8_0, U8 -> q4_0, or q4_1 when
// it also has a NAME_min; nullopt for any other dtype.
std::optional<BlockFormat> int_block_format(DType quant_dtype, bool has_min);

// One value of an integer-format row: element j of the row at q with its block's scale and min.
float dequantize_value(BlockFormat f, const void* q, const uint16_t* scale, const uint16_t* min,
                       int64_t j);

}  // namespace dsv3

// Storage dtypes, named as safetensors names them. Storage is kept apart from compute: kernels
// read any of these and compute in FP32 (ARCHITECTURE habit 13).
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace dsv3 {

enum class DType : uint8_t { F64, F32, F16, BF16, F8_E4M3, F8_E5M2, I64, I32, I16, I8, U8, BOOL };

size_t dtype_size(DType t);                              // bytes per element
std::string_view dtype_name(DType t);                    // "F32", "BF16", "F8_E4M3", ...
std::optional<DType> dtype_from_name(std::string_view);  // safetensors name -> DType
bool dtype_is_float(DType t);

using Shape = std::vector<int64_t>;
// Element count; throws Error on negative dims or overflow past 2^62.
int64_t shape_numel(const Shape& s);
std::string shape_str(const Shape& s);  // "[576, 7168]"

}  // namespace dsv3

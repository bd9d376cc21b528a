// A model folder written again, as stored (nullopt) or with every tensor in `dtype` (storage_dtype
// per tensor: F8_E4M3 is DeepSeek's FP8 checkpoint format, SPEC §3.2). What `dsv3 convert` and
// `dsv3 quantize --type fp8` run; see convert's --help for the checks and the staging.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "tensor/dtype.h"

namespace dsv3::cli {

struct ConvertResult {
  int64_t tensors = 0;
  uint64_t bytes = 0;  // tensor data, headers excluded
};

ConvertResult convert_folder(const std::string& in, const std::string& out,
                             std::optional<DType> dtype, bool force);

}  // namespace dsv3::cli

// NumPy .npy output (format version 1.0), for commands that hand arrays to Python.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "base/file.h"

namespace dsv3::cli {

// Writes float32 data of `shape` (C order) to `path` atomically; with `staged`, into it, so that
// several outputs replace their old files together at its commit().
void write_npy_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape,
                   StagedFiles* staged = nullptr);
// The same for int32 data.
void write_npy_i32(const std::string& path, const int32_t* data, const std::vector<int64_t>& shape);

}  // namespace dsv3::cli

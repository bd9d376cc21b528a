// NumPy .npy output (format version 1.0), for commands that hand arrays to Python.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dsv3::cli {

// Writes float32 data of `shape` (C order) to `path` atomically.
void write_npy_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape);
// The same for int32 data.
void write_npy_i32(const std::string& path, const int32_t* data, const std::vector<int64_t>& shape);

}  // namespace dsv3::cli

// .npy v1.0: magic, version, a little-endian uint16 header length, a Python dict literal padded
// with spaces to a 64-byte boundary and ending in '\n', then the raw little-endian data.
#include "apps/dsv3/npy.h"

#include "base/file.h"

namespace dsv3::cli {

namespace {

void write_npy(const std::string& path, const char* descr, const void* data, size_t elem,
               const std::vector<int64_t>& shape, StagedFiles* staged) {
  std::string dims;
  int64_t n = 1;
  for (int64_t d : shape) {
    dims += std::to_string(d) + ", ";
    n *= d;
  }
  if (shape.size() > 1) dims.resize(dims.size() - 1);  // "(3, 5)" but "(3,)"
  std::string header =
      std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (" + dims + "), }";
  const size_t preamble = 10;  // magic (6) + version (2) + header length (2)
  header.append(63 - (preamble + header.size()) % 64, ' ');
  header += '\n';
  std::string head = "\x93NUMPY";
  head += '\x01';
  head += '\x00';
  head += static_cast<char>(header.size() & 0xff);
  head += static_cast<char>(header.size() >> 8);
  head += header;
  auto fill = [&](FileWriter& f) {
    f.write(head);
    f.write(data, n * elem);  // the host is little-endian (x86-64, aarch64)
  };
  if (staged)
    staged->write(path, fill);
  else
    write_file_atomic(path, fill);
}

}  // namespace

void write_npy_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape,
                   StagedFiles* staged) {
  write_npy(path, "<f4", data, sizeof(float), shape, staged);
}

void write_npy_i32(const std::string& path, const int32_t* data,
                   const std::vector<int64_t>& shape) {
  write_npy(path, "<i4", data, sizeof(int32_t), shape, nullptr);
}

}  // namespace dsv3::cli

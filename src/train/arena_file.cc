// Element ranges of a checkpoint's flat state tensors, written in place: see arena_file.h.
#include "train/arena_file.h"

#include <vector>

#include "base/error.h"
#include "tensor/convert.h"

namespace dsv3 {

ArenaFileWriter::ArenaFileWriter(const std::string& path) : layout_(path), out_(path) {}

void ArenaFileWriter::write(std::string_view name, int64_t at, std::span<const float> values) {
  const TensorInfo* t = layout_.find(name);
  const std::string what = layout_.path() + ": tensor " + std::string(name);
  DSV3_CHECK(t && t->shape.size() == 1 && (t->dtype == DType::F32 || t->dtype == DType::BF16),
             what + " is not a flat F32 or BF16 tensor");
  const auto n = static_cast<int64_t>(values.size());
  DSV3_CHECK(at >= 0 && at + n <= t->shape[0],
             what + " has " + std::to_string(t->shape[0]) + " elements: cannot write [" +
                 std::to_string(at) + ", " + std::to_string(at + n) + ")");
  const size_t size = dtype_size(t->dtype);
  std::vector<std::byte> bytes(values.size() * size);
  convert_from_f32(t->dtype, values.data(), bytes.data(), n);
  out_.write_at(layout_.file_offset(*t) + static_cast<uint64_t>(at) * size, bytes.data(),
                bytes.size());
}

uint64_t ArenaFileWriter::close() {
  out_.close();
  return out_.written();
}

}  // namespace dsv3

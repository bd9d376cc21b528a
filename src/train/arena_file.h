// A checkpoint's flat state files (optimizer moments, EMA: tensors [numel] over the whole model's
// arena, ArenaLayout::whole) written by several ranks at once, none of them holding the whole
// state: rank 0 writes the file's layout (SafetensorsWriter::write_layout: the header, its size
// reserved), then each rank writes the element ranges it keeps (its ZeRO-1 shard) into place.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "base/file.h"
#include "tensor/safetensors.h"

namespace dsv3 {

class ArenaFileWriter {
 public:
  explicit ArenaFileWriter(const std::string& path);
  // values -> elements [at, at + values.size()) of the flat tensor `name`, converted to its dtype
  // (F32 or BF16). Error naming the file for a missing tensor or a range past its end.
  void write(std::string_view name, int64_t at, std::span<const float> values);
  // fsync; returns the bytes written.
  uint64_t close();

 private:
  SafetensorsFile layout_;
  FilePatcher out_;
};

}  // namespace dsv3

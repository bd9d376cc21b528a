// safetensors files: a strict reader (every rule of RELIABILITY §1 is checked when a file is
// opened, so later code may trust offsets and sizes) and a streaming, atomic writer.
//
// Format: 8-byte little-endian header length N, N bytes of UTF-8 JSON
// {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
// then the data section; offsets are relative to the data section's start.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "base/file.h"
#include "base/json.h"
#include "tensor/dtype.h"

namespace dsv3 {

class ProgressBar;

struct TensorInfo {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t offset;  // into the data section
  uint64_t nbytes;
};

struct SafetensorsHeader {
  std::vector<TensorInfo> tensors;  // in the header's order
  Json metadata;                    // the "__metadata__" object (empty object when absent)
  uint64_t data_offset;             // 8 + header length: where the data section starts in the file
};

// Parses and validates a whole file image (header and data-section size). Pure: the fuzz target's
// entry point. Throws Error naming `source` and the tensor for every violation of RELIABILITY §1.
SafetensorsHeader parse_safetensors_header(std::span<const std::byte> file,
                                           const std::string& source);

// A memory-mapped, validated safetensors file. Opening reads only the header pages.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return file_.path(); }
  const std::vector<TensorInfo>& tensors() const { return header_.tensors; }
  const TensorInfo* find(std::string_view name) const;  // nullptr when absent
  std::span<const std::byte> data(const TensorInfo& t) const;
  // Where t's bytes start in the file (for a process that writes them: FilePatcher).
  uint64_t file_offset(const TensorInfo& t) const { return header_.data_offset + t.offset; }
  const Json& metadata() const { return header_.metadata; }

 private:
  MappedFile file_;
  SafetensorsHeader header_;
  std::vector<std::pair<std::string_view, size_t>> by_name_;  // sorted, for find()
};

// Collects tensors, then writes them in one pass: header first (padded with spaces to 8-byte
// alignment), then each tensor's bytes in the order added. Written atomically (temp + rename).
class SafetensorsWriter {
 public:
  using Fill = std::function<void(std::byte* dst)>;

  // fill writes exactly nbytes of the tensor into dst (a scratch buffer the writer owns). Fills run
  // in order, one tensor at a time, so a file larger than memory streams.
  void add(std::string name, DType dtype, Shape shape, Fill fill);
  // Copies nothing now: `bytes` must stay alive until write() returns.
  void add_bytes(std::string name, DType dtype, Shape shape, std::span<const std::byte> bytes);
  void set_metadata(std::string key, std::string value);

  uint64_t data_bytes() const { return data_bytes_; }  // sum of the tensors' nbytes
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }

  // Throws Error on duplicate names or a fill that throws; the file is then left untouched.
  void write(const std::string& path, ProgressBar* progress = nullptr);
  // The file without its tensors' bytes: the header, and the data section's disk space reserved
  // (zeros until written), for processes that each write their tensors into it (FilePatcher at
  // SafetensorsFile::file_offset). No fill is called. Written atomically.
  void write_layout(const std::string& path) const;

 private:
  std::string header_text() const;  // the JSON header, padded to 8-byte alignment

  struct Entry {
    std::string name;
    DType dtype;
    Shape shape;
    uint64_t nbytes;
    Fill fill;
  };
  friend class ShardedWriter;
  std::vector<Entry> entries_;
  std::unordered_set<std::string> names_;
  std::vector<std::pair<std::string, std::string>> metadata_;
  uint64_t data_bytes_ = 0;
};

}  // namespace dsv3

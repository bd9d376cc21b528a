// A Hugging Face model folder as one tensor store, and the sharded writer that produces one.
// Folder layouts, in order of preference: model.safetensors.index.json (its weight_map names the
// shards), else model.safetensors, else every *.safetensors file in the folder.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tensor/safetensors.h"

namespace dsv3 {

class TensorStore {
 public:
  struct TensorRef {
    const TensorInfo* info;
    std::span<const std::byte> data;
    const std::string* file;  // the shard's path
    uint64_t file_offset;     // where the tensor's bytes start in that file
  };

  // Maps every shard and validates headers and the index (shards exist, each tensor lives in the
  // shard the index names, no tensor in two shards). Reads no tensor data.
  static TensorStore open(const std::string& dir);

  std::optional<TensorRef> find(std::string_view name) const;
  std::vector<std::string> names() const;  // sorted
  uint64_t total_bytes() const;            // sum of the tensors' nbytes
  const std::string& dir() const { return dir_; }
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }

 private:
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::unordered_map<std::string_view, std::pair<size_t, const TensorInfo*>> index_;  // -> file
};

// Writes a folder the way HF does: model.safetensors when everything fits in one shard, else
// model-0000i-of-0000N.safetensors plus model.safetensors.index.json ({"metadata": {"total_size"},
// "weight_map"}). Tensors go into shards in the order added; a shard is closed when the next tensor
// would push it past max_shard_bytes (a single larger tensor gets a shard of its own).
class ShardedWriter {
 public:
  explicit ShardedWriter(uint64_t max_shard_bytes = 2ull << 30)
      : max_shard_bytes_(max_shard_bytes) {}

  void add(std::string name, DType dtype, Shape shape, SafetensorsWriter::Fill fill);
  void add_bytes(std::string name, DType dtype, Shape shape, std::span<const std::byte> bytes);
  void set_metadata(std::string key, std::string value);  // copied into every shard's __metadata__
  uint64_t data_bytes() const;

  // Creates `dir` if needed. Each file is written atomically; the index is written last.
  void write(const std::string& dir, ProgressBar* progress = nullptr);
  // The same folder without the tensors' bytes (SafetensorsWriter::write_layout for each shard,
  // and the index): for processes that each write their tensors into it.
  void write_layout(const std::string& dir);

 private:
  std::vector<SafetensorsWriter> shards() const;  // the greedy packing, in the order added
  // Writes each shard by `write_shard` and the index (or removes a stale one).
  void write_folder(const std::string& dir,
                    const std::function<void(SafetensorsWriter&, const std::string&)>& write_shard);
  uint64_t max_shard_bytes_;
  SafetensorsWriter all_;
};

}  // namespace dsv3

// A model's weights: a validated view of every tensor of the parameter table, backed by the
// memory-mapped safetensors of a HF folder (nothing is read until used) or by memory (random init).
// Kernels read WeightViews in their storage dtype; FP8 views carry their 128x128 scale_inv blocks.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "model/config.h"
#include "model/param_table.h"
#include "tensor/block_format.h"
#include "tensor/dtype.h"

namespace dsv3 {

struct WeightView {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  const void* data = nullptr;
  // F8_E4M3 only: float32 [ceil(rows/128), ceil(cols/128)] (SPEC §3.2), dequant = q * scale_inv.
  const float* scale_inv = nullptr;
  int64_t block_rows = 128, block_cols = 128;
  // Integer block formats (Q8_0, Q4_0, Q4_1; docs/QUANTIZATION.md): data holds the quants (I8, or
  // U8 with two 4-bit values a byte, shape [rows, cols / 2]), block_scale the F16 NAME_scale and
  // block_min the F16 NAME_min [rows, cols / 32]. `shape` is the matrix's [rows, cols].
  const BlockFormatTraits* quant = nullptr;
  const uint16_t* block_scale = nullptr;
  const uint16_t* block_min = nullptr;

  int64_t rows() const { return shape.empty() ? 1 : shape[0]; }
  int64_t cols() const { return shape.size() < 2 ? (shape.empty() ? 1 : shape[0]) : shape[1]; }
  int64_t numel() const { return shape_numel(shape); }
  // Bytes of `data` (integer block formats: the quants alone).
  uint64_t data_bytes() const {
    return quant ? static_cast<uint64_t>(rows() * quant->quant_row_bytes(cols()))
                 : static_cast<uint64_t>(numel()) * dtype_size(dtype);
  }
  // Bytes the weight takes: data_bytes() plus the block scales and minimums.
  uint64_t stored_bytes() const {
    return quant ? static_cast<uint64_t>(numel() / quant->block_cols) * quant->bytes_per_block
                 : data_bytes();
  }
};

// The parameters a process holds when the model is split between processes (SPEC §5): every
// tensor it does not hold is absent — its view keeps name, dtype and shape but no data, and
// nothing of it is read (load) or allocated (random).
//   Expert parallelism: routed experts [expert_first, expert_first + expert_count) of every MoE
//   layer, the MTP module's included (expert_count < 0: all of them).
//   Pipeline parallelism: the decoder layers in `layers` (a list of [begin, end) ranges; empty:
//   all), the embedding when `embedding`, the final norm, the LM head and the MTP module when
//   `head` (their stage: the last).
// The default holds everything.
struct ParamSlice {
  struct Layers {
    int64_t begin = 0, end = 0;
  };
  int64_t expert_first = 0, expert_count = -1;
  std::vector<Layers> layers;
  bool embedding = true, head = true;

  static ParamSlice experts(int64_t first, int64_t count) {
    ParamSlice s;
    s.expert_first = first;
    s.expert_count = count;
    return s;
  }
  bool holds_all() const { return expert_count < 0 && layers.empty() && embedding && head; }
  bool holds(const ParamSpec& p) const;
};

class ModelWeights {
 public:
  // Opens a HF folder: config.json + model.safetensors or model.safetensors.index.json shards.
  // Every tensor of param_table(config) must be present with its shape; FP8 tensors need their
  // weight_scale_inv, integer block formats (I8 / U8 quants) their F16 NAME_scale (and NAME_min).
  // Errors name the file and the tensor. The tensors outside `slice` are checked (present, shape,
  // dtype) but left absent.
  static ModelWeights load(const std::string& dir, ParamSlice slice = {});
  // Random weights initialised as SPEC §1.2, held in memory in `dtype` (F32, BF16 or F16), with
  // the same values write_random_model writes for the same seed (for the tensors in `slice`).
  static ModelWeights random(const ModelConfig& c, uint64_t seed, DType dtype,
                             ParamSlice slice = {});

  const ModelConfig& config() const;
  // Node-limited routing (moe_router.h's limit_routing_to_nodes) on this model's config: what
  // the model built from these weights routes by, and what a folder saved from it records.
  void limit_routing_to_nodes(int64_t nodes, int64_t keep);
  bool has(std::string_view name) const;
  const WeightView& get(std::string_view name) const;  // throws Error naming the tensor
  const std::vector<WeightView>& all() const;

  ModelWeights(ModelWeights&&) noexcept;
  ModelWeights& operator=(ModelWeights&&) noexcept;
  ~ModelWeights();

 private:
  ModelWeights();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Writes a complete HF folder for `c` with random weights (SPEC §1.2), tensor by tensor so that a
// shape larger than memory can be written, sharded above 2 GB with model.safetensors.index.json.
// Also writes config.json and generation_config.json. Shows a progress bar on a terminal.
// dtype F32, BF16 or F16; F8_E4M3 writes DeepSeek's FP8 release layout (SPEC §3.2): every fp8_able
// weight as E4M3 with its F32 `<name>_scale_inv` 128x128 blocks, the rest BF16, and a
// quantization_config in config.json. The values of a tensor depend only on (seed, tensor name),
// never on the order of writing or on other tensors; MTP copies equal the tensor they copy.
void write_random_model(const ModelConfig& c, const std::string& dir, uint64_t seed, DType dtype);
// Bytes write_random_model puts on disk for the tensors (headers excluded), for a free-space check.
uint64_t random_model_bytes(const ModelConfig& c, DType dtype);

}  // namespace dsv3

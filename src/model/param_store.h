// The parameter store (ARCHITECTURE habit 9): one Param per entry of param_table, each with an
// offset into flat arenas laid out in table order. Inference reads the values in their storage
// dtype where they lie (the memory-mapped safetensors, never copied); training adds an FP32 master
// arena (the values kernels then read) and an FP32 gradient arena, and an optimizer lays its state
// out by the same offsets. Modules hold `const Param&` and read `value` at every call, so a
// trainer's update of the master arena is what the next forward sees.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/kernels.h"
#include "model/param_table.h"
#include "model/weights.h"

namespace dsv3 {

struct Param {
  const ParamSpec* spec = nullptr;
  // The values kernels read, [rows, cols] (a vector: rows = 1): the loaded storage dtype, or F32
  // into the master arena once training is enabled.
  WeightRef value;
  // FP32 values [numel]: vectors (norm gains, biases, the gate bias) always, converted once from
  // storage into the store's vector arena; every parameter after enable_training() (the master
  // arena). Null for matrices in inference.
  float* f32 = nullptr;
  // FP32 gradient [numel] after enable_training(); null for parameters the optimizer does not
  // train from a gradient (e_score_correction_bias: the trainer's balance update sets it, SPEC §2).
  float* grad = nullptr;
  int64_t offset = 0;  // element offset of values, gradient and optimizer state in the arenas
  int64_t numel = 0;
  // MTP embed_tokens / shared_head.head (SPEC §1.7 "shared embedding", "shared output head"): this
  // entry aliases the main tensor (same value, offset and gradient); save() writes it as a copy.
  bool alias = false;
  // A tensor another rank holds (ParamSlice, weights.h: a routed expert under expert parallelism,
  // another stage's under pipeline parallelism): no values, no arena space, no gradient; value
  // keeps its shape. An alias of an absent tensor is absent.
  bool absent = false;

  const std::string& name() const { return spec->name; }
};

class ShardedWriter;

// Adds an integer block-format weight (w.quant set) to `writer` as stored: NAME (I8 / U8 quants),
// NAME_scale and, for Q4_1, NAME_min (F16 [rows, cols / 32]; docs/QUANTIZATION.md).
void write_int_blocks(ShardedWriter& writer, const std::string& name, const WeightRef& w);

class ParamStore {
 public:
  // Views of `w`'s tensors (which must outlive the store); vectors converted to FP32. The arenas
  // hold the tensors in table order; when `w` holds only some routed experts (ParamSlice), the
  // other tensors come first and the held experts after them, so that the experts, which differ
  // between expert-parallel ranks, are one region at the end of every arena (src/dist reduces
  // that region over the ranks holding the same experts only, the rest over all ranks). Tensors
  // of other pipeline stages (ParamSlice::layers) take no arena space.
  explicit ParamStore(const ModelWeights& w);
  ParamStore(const ParamStore&) = delete;
  ParamStore& operator=(const ParamStore&) = delete;

  const ModelConfig& config() const { return config_; }
  // Throws Error naming the tensor when `name` is not a parameter of this model.
  const Param& get(std::string_view name) const;
  Param& get(std::string_view name);
  // get() with a shape check: a matrix [rows, cols] or a vector [rows] (cols = 0).
  const Param& matrix(const std::string& name, int64_t rows, int64_t cols) const;
  const Param& vector(const std::string& name, int64_t n) const;
  bool has(std::string_view name) const;
  std::span<Param> all() { return params_; }
  std::span<const Param> all() const { return params_; }
  // Elements in the arenas: every parameter once (aliases share their main tensor's), absent
  // tensors left out; the held experts start at expert_offset() (arena_numel() when none is).
  int64_t arena_numel() const { return arena_numel_; }
  int64_t expert_offset() const { return expert_offset_; }

  // Copies every value into an FP32 master arena (FP8 dequantised with its block scales), points
  // every Param's value and f32 at it, and allocates a zeroed FP32 gradient arena. Idempotent.
  void enable_training();
  bool training() const { return !master_.empty(); }
  std::span<float> master() { return master_; }
  std::span<float> grads() { return grads_; }
  void zero_grads();

  // Writes a Hugging Face folder: config.json and safetensors with every tensor of the table under
  // its own name (aliases as copies), sharded above 2 GB, each file atomically. dtype: F32, BF16,
  // F16 or F8_E4M3 (DeepSeek's FP8 layout: fp8_able matrices as E4M3 + weight_scale_inv, the rest
  // BF16); keep_f32 tensors stay F32. save_as_stored() keeps each tensor's current bytes exactly
  // (FP8 with its scales), so load -> save -> load is bit-identical.
  void save(const std::string& dir, DType dtype) const;
  void save_as_stored(const std::string& dir) const;
  // A save split between processes, each holding a slice of the model (a distributed
  // checkpoint): one writes the folder's layout — config.json, the index, each shard's header and
  // its reserved size, as save(dir, dtype) would (tensors this store does not hold included) —
  // then each process writes the values of the tensors `writes` selects (every selected one held
  // here) into their places, converted to the file's dtype. Together the same bytes as save().
  // dtype: F32, BF16 or F16. save_values returns the bytes it wrote.
  void save_layout(const std::string& dir, DType dtype) const;
  uint64_t save_values(const std::string& dir,
                       const std::function<bool(const Param&)>& writes) const;

 private:
  // dtype null: every tensor in its current bytes; layout_only: no tensor's bytes (save_layout).
  void save_impl(const std::string& dir, const DType* dtype, bool layout_only) const;

  ModelConfig config_;
  std::vector<ParamSpec> specs_;
  std::vector<Param> params_;  // table order; never resized after construction (stable addresses)
  std::vector<std::pair<std::string_view, size_t>> index_;  // sorted by name
  int64_t arena_numel_ = 0, expert_offset_ = 0;
  std::vector<float> vectors_;  // FP32 copies of the vectors, at their arena offsets (compact)
  std::vector<float> master_, grads_;
};

}  // namespace dsv3

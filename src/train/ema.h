// An exponential moving average of the parameters (SPEC §3.1: V3 keeps one on the CPU, updated
// after each step, to judge the model early without extra evaluation runs). It is its own FP32
// arena laid out like the store's master arena: ema = decay·ema + (1 - decay)·master over every
// element, e_score_correction_bias included (the averaged bias routes the averaged weights).
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "tensor/dtype.h"
#include "train/arena_layout.h"

namespace dsv3 {

class ParamStore;
class ThreadPool;

class ParamEma {
 public:
  // Starts at the store's current master values; training must be enabled. decay in [0, 1).
  ParamEma(ParamStore& ps, double decay);

  // ema += (1 - decay)·(master - ema), in double per element, rounded to FP32.
  void update(ParamStore& ps, ThreadPool* pool = nullptr);

  double decay() const { return decay_; }
  int64_t updates() const { return updates_; }
  std::span<const float> values() const { return ema_; }
  const ArenaLayout& layout() const { return layout_; }

  // Writes the averaged model as a Hugging Face folder (ParamStore::save's layout, `dtype` as
  // there): the averaged values are swapped into the store's master arena for the write and
  // swapped back afterwards, also when the write fails (so neither arena is copied).
  void save_model(ParamStore& ps, const std::string& dir, DType dtype);
  // The arena itself, for a checkpoint: a safetensors file with tensor "ema" [numel] F32 and the
  // decay, update count and layout in its metadata. load() checks the layout (Error naming the
  // first tensor that differs) and takes the file's update count; the decay stays this object's.
  // A job's ranks, each holding a slice (data-parallel shards, stages, experts), write the whole
  // model's file together: rank 0 its layout over `whole_layout` (save_layout: no values yet),
  // then each rank its part of values() in place (ArenaFileWriter); a store holding a slice
  // loads its tensors by name from a whole-model file, so a run resumes on another layout.
  void save(const std::string& path) const;
  void save_layout(const std::string& path, const ArenaLayout& whole_layout) const;
  void load(const std::string& path);

 private:
  ArenaLayout layout_;
  double decay_;
  int64_t updates_ = 0;
  std::vector<float> ema_;
};

}  // namespace dsv3

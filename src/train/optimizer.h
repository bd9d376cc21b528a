// AdamW over a ParamStore's FP32 master arena (SPEC §5: β = (0.9, 0.95), weight decay 0.1,
// gradient clip 1.0), with the moments in BF16 as V3 keeps them (SPEC §3.1) or in FP32. The
// moments are laid out by the store's offsets; each tensor is updated once (the MTP aliases share
// their main tensor's offset) and tensors without a gradient (e_score_correction_bias) never.
// Every element's update is independent of the others, so the result is the same whatever the
// thread count; norms are summed per fixed chunk, in order, for the same reason.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "train/arena_layout.h"

namespace dsv3 {

class ParamStore;
class ThreadPool;

struct AdamWConfig {
  double lr = 2.2e-4;  // V3's peak (SPEC §5); step() takes the scheduled value
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1;
  bool bf16_moments = true;  // SPEC §3.1; false: FP32
};

// Throws Error naming the field for a value AdamW cannot use.
void validate(const AdamWConfig& c);

// The L2 norm of every trained tensor's gradient, each tensor once, summed in double.
double global_grad_norm(const ParamStore& ps, ThreadPool* pool = nullptr);
double global_grad_norm(const ArenaLayout& l, std::span<const float> grads,
                        ThreadPool* pool = nullptr);
// Σ g² of each piece (kNormPiece elements, the last shorter) of one tensor's gradient, in double:
// the partial sums global_grad_norm adds in order (so a whole model's norm assembled from the
// tensors ranks hold is one process's, bit for bit).
inline constexpr int64_t kNormPiece = int64_t{1} << 14;
std::vector<double> piece_square_sums(std::span<const float> g);
// torch.nn.utils.clip_grad_norm_: with norm the global norm, scales every gradient by
// min(1, max_norm / (norm + 1e-6)) when that is below 1. Returns the norm before clipping.
double clip_grads(ParamStore& ps, double max_norm, ThreadPool* pool = nullptr);
double clip_grads(const ArenaLayout& l, std::span<float> grads, double max_norm,
                  ThreadPool* pool = nullptr);
// The scaling of clip_grads for a norm computed elsewhere (expert parallelism: the whole model's
// norm from the parts that ranks hold).
void clip_grads_to(const ArenaLayout& l, std::span<float> grads, double norm, double max_norm,
                   ThreadPool* pool = nullptr);

class AdamW {
 public:
  // Moments for the store's layout (zero), step count 0.
  AdamW(const ParamStore& ps, const AdamWConfig& c);
  // The same over any layout: step() then takes arenas of l.numel elements.
  AdamW(ArenaLayout l, const AdamWConfig& c);

  // One step of torch.optim.AdamW (torch 1.13, _single_tensor_adamw) with learning rate lr, for
  // every trained tensor: p *= 1 - lr·wd (matrices only), m = β1·m + (1 - β1)·g,
  // v = β2·v + (1 - β2)·g², p -= lr / (1 - β1^t) · m / (sqrt(v) / sqrt(1 - β2^t) + eps), computed
  // in double from the stored m and v (rounded to BF16 after the update when bf16_moments).
  void step(ParamStore& ps, double lr, ThreadPool* pool = nullptr);
  void step(std::span<float> values, std::span<const float> grads, double lr,
            ThreadPool* pool = nullptr);

  const AdamWConfig& config() const { return cfg_; }
  const ArenaLayout& layout() const { return layout_; }
  int64_t steps() const { return step_; }
  // The moments as FP32 (decoded from BF16), [layout().numel]; zero for untrained tensors.
  std::vector<float> exp_avg() const;
  std::vector<float> exp_avg_sq() const;

  // A safetensors file: exp_avg and exp_avg_sq [numel] (BF16 or F32) and, in its metadata, the
  // step count and the layout. Written atomically.
  void save(const std::string& path) const;
  // Reads a file save() wrote. Its layout must equal this optimizer's (Error naming the first
  // tensor that differs); moments saved in the other dtype are converted (FP32 -> BF16 rounds).
  void load(const std::string& path);
  // Replaces the moments ([layout().numel] each, FP32; rounded to BF16 when bf16_moments, which
  // is exact for values exp_avg() returned) and the step count: ZeRO-1 shards gather and scatter
  // the state through this (train/zero1.h).
  void set_state(std::span<const float> m, std::span<const float> v, int64_t steps);
  // Throws Error naming the first tensor where the store's layout differs from this optimizer's.
  void check(const ParamStore& ps) const;

 private:
  struct Chunk {
    int64_t offset, numel;
    bool decay;
  };

  AdamWConfig cfg_;
  ArenaLayout layout_;
  std::vector<Chunk> chunks_;  // the trained tensors in pieces of at most kChunk elements
  int64_t step_ = 0;
  // One of these pairs is used, [layout_.numel] each.
  std::vector<uint16_t> m16_, v16_;
  std::vector<float> m32_, v32_;
};

// The layout of the file AdamW::save writes for l, c and `steps` (SafetensorsWriter::write_layout:
// no moments yet), for ranks that each write their shard's moments into it (ArenaFileWriter).
void save_adamw_layout(const ArenaLayout& l, const AdamWConfig& c, int64_t steps,
                       const std::string& path);

}  // namespace dsv3

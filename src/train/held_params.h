// ZeRO-1 AdamW, the gradient reduction, the global norm and checkpoints over a store that holds a
// slice of the model (ParamSlice, model/weights.h): a pipeline rank's stages, an expert-parallel
// rank's experts, or both (issue 18, SPEC §4, §5). The ranks holding the same tensors ("holders":
// DualPipe's two partners, and the same position of every pipeline; under expert parallelism the
// experts have their own holders, the ranks of the same expert position) sum the gradient in rank
// order and shard the AdamW state (ZeRO-1);
// every tensor has one owner in the job, which alone counts it in the whole model's norm — each
// piece's Σg² at its one-process place, so the norm is the one process's bit for bit — and writes
// its values into a checkpoint. Checkpoints are the whole model's, as one process writes them
// (each rank writing its part in place, none gathering), so a run resumes on any layout. src/dist
// provides the groups and ownership; train knows them through this interface only.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "model/param_store.h"
#include "train/data_parallel.h"
#include "train/zero1.h"

namespace dsv3 {

class ArenaFileWriter;

class HeldParamsAdamW {
 public:
  // Whether this rank owns a tensor it holds (exactly one rank of `all` owns each).
  using Owns = std::function<bool(const std::string& tensor)>;
  // all: every rank of the job; holders: the ranks whose stores hold the same tensors as ps;
  // expert_holders (expert parallelism): those holding the same routed experts, which then lie
  // after the rest in ps's arena (ParamStore::expert_offset). Collective over all (the owners
  // are exchanged); Error unless every tensor has one owner.
  HeldParamsAdamW(const ParamStore& ps, const AdamWConfig& c, DataParallelGroup& all,
                  DataParallelGroup& holders, const Owns& owns,
                  DataParallelGroup* expert_holders = nullptr);

  // The step's gradient summed over the holders (the experts' over theirs), in rank order.
  void reduce(std::span<float> grads);
  // Collective: the whole model's gradient norm (every rank the same bits: one process's), and
  // clipping by it when max_norm > 0.
  double clip(std::span<float> grads, double max_norm, ThreadPool* pool);
  // AdamW on this rank's shard, then the allgather among the holders.
  void step(std::span<float> master, std::span<const float> grads, double lr, ThreadPool* pool);
  // A checkpoint's parts, each rank writing what it keeps into files laid out for the whole
  // model (ArenaLayout::whole): its ZeRO-1 shards of the moments (save_adamw_layout's file), of
  // another arena of this rank's layout (the EMA), and the model tensors it owns. The shards of
  // the ranks holding the same tensors partition them, and of the groups holding a tensor only
  // its owner's writes it, so every element is written once.
  void save_shard(ArenaFileWriter& out) const;
  void write_shard(ArenaFileWriter& out, std::string_view name, std::span<const float> local) const;
  bool owns(const std::string& tensor) const;
  // Every rank reads a whole-model file (written by any layout) and keeps its shard.
  void load(const std::string& path);
  int64_t steps() const { return zero_.steps(); }
  // Moment elements this rank keeps (its ZeRO-1 shard).
  int64_t shard_numel() const;

 private:
  DataParallelGroup& all_;
  DataParallelGroup& holders_;
  DataParallelGroup* expert_holders_;
  ArenaLayout local_, whole_;
  int64_t split_;                        // the experts' region: [split_, local_.numel)
  Zero1AdamW zero_;                      // the rest: [0, split_)
  std::unique_ptr<Zero1AdamW> experts_;  // the experts' region, over expert_holders_
  AdamWConfig cfg_;
  std::vector<int> owner_;          // [whole tensor] the rank of `all` that owns it
  std::vector<int64_t> local_at_;   // [whole tensor] its offset in this rank's arena, -1: absent
  std::vector<int64_t> piece_at_;   // [whole tensor] its first piece of the norm's partial sums
  std::vector<bool> group_writes_;  // [whole tensor] this rank's holders write it (own it)
  int64_t pieces_ = 0;
  // values (an arena of this rank's layout, from element `at`) into `name` at the whole places.
  void write_local(ArenaFileWriter& out, std::string_view name, int64_t at,
                   std::span<const float> values) const;
  std::unordered_map<std::string, size_t> index_;  // whole tensor name -> its index
};

}  // namespace dsv3

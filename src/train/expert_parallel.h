// Expert parallelism inside data parallelism, as the trainer sees it (SPEC §5, issue 18; V3's
// layout): the D data-parallel ranks form groups of E consecutive ranks, and the ranks of a group
// share one copy of the routed experts — position j of a group holds experts
// [j·E_r/E, (j+1)·E_r/E) of every MoE layer (parameters, gradients, AdamW state) and computes them
// for the whole group's tokens through an all-to-all dispatcher. src/dist provides the dispatcher
// and the groups over MPI; train knows them through these interfaces only.
//
// A rank's arena is [the rest | its experts] (ParamStore with a ParamSlice of its experts). After
// the backward passes the rest is summed over all D ranks and the experts over the D / E ranks that
// hold the same ones (one per group), both in rank order; ZeRO-1 shards each region over the ranks
// that reduce it. Checkpoints are the whole model's, as one process writes them.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "model/moe_dispatch.h"
#include "model/param_store.h"
#include "train/data_parallel.h"
#include "train/zero1.h"

namespace dsv3 {

struct ExpertParallel {
  MoeDispatcher* dispatcher = nullptr;    // the MoE all-to-all between the E ranks of this group
  DataParallelGroup* group = nullptr;     // those E ranks; rank(): this rank's position j
  DataParallelGroup* replicas = nullptr;  // the D / E ranks holding this rank's experts
};

// The experts position j of E holds; Error unless E divides c.n_routed_experts.
ParamSlice expert_slice(const ModelConfig& c, int64_t ep, int64_t position);

// ZeRO-1 AdamW and the gradient reductions over a store that holds one position's experts.
class ExpertParallelAdamW {
 public:
  // all: the D data-parallel ranks. ps must hold ep.group->rank()'s experts.
  ExpertParallelAdamW(const ParamStore& ps, const AdamWConfig& c, DataParallelGroup& all,
                      const ExpertParallel& ep);

  // The step's gradient: the rest summed over all ranks, the experts over the replicas.
  void reduce(std::span<float> grads);
  // The whole model's gradient norm (the rest's and every position's experts', summed in
  // position order: the same bits on every rank), and clipping by it when max_norm > 0.
  double clip(std::span<float> grads, double max_norm, ThreadPool* pool);
  // AdamW on this rank's shards, then the allgathers.
  void step(std::span<float> master, std::span<const float> grads, double lr, ThreadPool* pool);
  // Collective: the whole model's moments in one file, as one process writes it (written by the
  // rank of position 0 in the first group: rank 0 of `all`).
  void save(const std::string& path) const;
  // Every rank reads a whole-model file (written by any layout) and keeps its shards.
  void load(const std::string& path);
  int64_t steps() const { return rest_.steps(); }
  // Moment elements this rank keeps (its shards of both regions).
  int64_t shard_numel() const;

  // Collective: every position's experts from master; the lookup ParamStore::save takes for the
  // experts this rank does not hold (it owns the gathered values).
  ParamStore::AbsentValues gather_experts(std::span<const float> master);

 private:
  // Every position's expert region, one after the other ([E · region], the allgather's buffer).
  std::vector<float> gather_regions(std::span<const float> mine) const;
  // whole [whole-model numel] from the rest [split_] and every position's region.
  void place(std::span<const float> rest, std::span<const float> regions,
             std::vector<float>& whole) const;

  DataParallelGroup& all_;
  const ExpertParallel ep_;
  int64_t split_, numel_;  // the experts' region: [split_, numel_) of this rank's arena
  ArenaLayout rest_layout_, expert_layout_, whole_;
  Zero1AdamW rest_, experts_;
  AdamWConfig cfg_;
  // Whole-model tensor -> its offset in [the rest (this rank's arena) | every position's region]
  // (gather_regions' buffer placed at split_); this rank's tensors -> their whole-model offset.
  std::unordered_map<std::string, int64_t> gathered_at_, whole_at_;
};

}  // namespace dsv3

// Expert parallelism inside data parallelism, as the trainer sees it (SPEC §5, issue 18; V3's
// layout): the D data-parallel ranks form groups of E consecutive ranks, and the ranks of a group
// share one copy of the routed experts — position j of a group holds experts
// [j·E_r/E, (j+1)·E_r/E) of every MoE layer (parameters, gradients, AdamW state) and computes them
// for the whole group's tokens through an all-to-all dispatcher. src/dist provides the dispatcher
// and the groups over MPI; train knows them through these interfaces only.
//
// A rank's arena is [the rest | its experts] (ParamStore with a ParamSlice of its experts). After
// the backward passes the rest is summed over the ranks holding it (all D, or with a pipeline the
// same stages') and the experts over those holding the same ones (one per group), both in rank
// order; ZeRO-1 shards each region over the ranks that reduce it (train/held_params.h).
// Checkpoints are the whole model's, as one process writes them.
#pragma once
#include <cstdint>

#include "model/moe_dispatch.h"
#include "model/weights.h"
#include "train/data_parallel.h"

namespace dsv3 {

struct ExpertParallel {
  MoeDispatcher* dispatcher = nullptr;  // the MoE all-to-all between the E ranks of this group
  DataParallelGroup* group = nullptr;   // those E ranks; rank(): this rank's position j
  // The ranks holding this rank's experts: the D / E ranks of its position (with a pipeline,
  // those of its position that hold its stages).
  DataParallelGroup* replicas = nullptr;
};

// The experts position j of E holds; Error unless E divides c.n_routed_experts.
ParamSlice expert_slice(const ModelConfig& c, int64_t ep, int64_t position);

}  // namespace dsv3

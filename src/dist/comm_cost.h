// A paper model of what one rank sends per optimizer step under a parallel layout (issue 18,
// SPEC §4-§5): data parallel (ZeRO-1's gradient reduction and weight allgather), expert parallel
// (MoE dispatch and combine all-to-alls, forward and backward) and pipeline parallel (activations
// and their gradients across stage boundaries). The DP term is what dsv3's MpiDataParallel sends
// (docs/DISTRIBUTED.md compares it with the bytes a run counts); the EP and PP terms are the
// volumes V3's layout implies as dsv3's dispatcher sends them, uniform routing assumed (no node
// limit; V3's node-level forwarding, one IB copy a node then NVLink, is not modelled).
#pragma once
#include <cstdint>

#include "model/config.h"

namespace dsv3 {

struct ParallelPlan {
  int ranks = 1, pp = 1, ep = 1;  // dp = ranks / pp; ep divides dp (EP inside DP, as V3)
  bool dualpipe = false;          // rank r holds stages r and pp-1-r (DualPipe, 2x parameters)
  int64_t global_tokens = 0;      // tokens per optimizer step, all ranks
  // Bytes per element: gradients in the DP reduction, dispatch payload (V3: FP8), combine and
  // backward payloads (BF16), activations between stages (BF16).
  double grad_bytes = 4, dispatch_bytes = 1, combine_bytes = 2, act_bytes = 2;
  // Passes over the rank's parameters in the DP step: dsv3 sends 3 (reduce-scatter, the reduced
  // gradient's allgather so that every rank clips by the same norm, the weights' allgather);
  // ZeRO-1 by the book sends 2.
  int dp_passes = 3;
};

struct RankTraffic {
  double dense_params = 0, expert_params = 0;  // held by the busiest rank (experts: its 1/ep)
  double tokens = 0;                           // tokens through each of its stages per step
  int64_t moe_layers = 0;                      // MoE layers in its stages
  double dp_bytes = 0, ep_bytes = 0, pp_bytes = 0;
};

// Under uniform routing (K of E experts without replacement), the expected number of other ranks
// of an ep group that hold at least one of a token's experts: the token rows it sends.
double remote_ranks_per_token(const ModelConfig& c, int ep);

// The rank with the most parameters (stages: consecutive layers split evenly, the embedding on the
// first stage, the final norm, head and MTP module on the last). Throws Error for a plan whose
// numbers do not divide (ranks by pp, dp by ep, experts by ep; dualpipe needs pp even).
RankTraffic busiest_rank_traffic(const ModelConfig& c, const ParallelPlan& p);

}  // namespace dsv3

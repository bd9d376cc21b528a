// Where a pipeline's stages live (SPEC §4): stages of consecutive layers, and which rank and phase
// of its program runs stage s of direction d. Pure functions, no MPI; the runner
// (pipeline_runner.h) and its tests read them.
//   1F1B       N stages, rank r holds stage r; one direction.
//   DualPipe   N stages (N even), held twice: direction 0 enters at rank 0 (stage s on rank s),
//              direction 1 at rank N-1 (stage s on rank N-1-s). A rank's phase 0 is the direction
//              entering at its nearer end. Direction 0 runs micro-batches [0, C/2), direction 1
//              [C/2, C).
//   DualPipeV  2N stages, one direction: rank r holds stage r (phase 0, down) and 2N-1-r (phase
//              1, back up), so rank 0 holds the first and the last.
#pragma once
#include <cstdint>
#include <vector>

#include "dist/pipeline_schedule.h"
#include "model/config.h"
#include "model/weights.h"
#include "train/forward_backward.h"

namespace dsv3 {

// What a stage costs, per token (multiply-adds, the forward's; the backward's are about twice
// those everywhere): each decoder layer's (its Linears, the routed experts at top_k / n_experts
// of their weights, the attention core at seq_len / 2 keys on average), and what the first and
// the last stage add (the embedding lookup: nothing; the head, and the MTP module's projection,
// layer and head).
struct StageCosts {
  std::vector<double> layer;
  double first = 0, last = 0;
};
StageCosts stage_costs(const ModelConfig& c, int64_t seq_len);

// Stage bounds [stages + 1] (stage s: layers [b[s], b[s+1])), consecutive and at least one layer
// a stage, that minimise the costliest stage under `costs` (what bounds a pipeline's throughput);
// among those, the one with the least sum of squared stage costs. Error with fewer layers than
// stages.
std::vector<int64_t> balanced_stage_bounds(const StageCosts& costs, int stages);

struct PipelineLayout {
  // Throws Error unless the schedule runs N ranks and C micro-batches (pipeline_program) and
  // there is at least one layer per stage. bounds: the stages' first layers and the end
  // ([stages() + 1], e.g. balanced_stage_bounds'); empty: as even as the layers allow.
  PipelineLayout(PipelineSchedule schedule, int ranks, int micro_batches, int64_t layers,
                 std::vector<int64_t> bounds = {});

  PipelineSchedule schedule;
  int ranks, micro_batches;
  int64_t layers;

  int stages() const { return schedule == PipelineSchedule::DualPipeV ? 2 * ranks : ranks; }
  int directions() const { return schedule == PipelineSchedule::DualPipe ? 2 : 1; }
  // Stage s's layers: consecutive; without bounds, the first layers % stages() stages one layer
  // more.
  StageLayers stage_layers(int s) const;
  const std::vector<int64_t>& bounds() const { return bounds_; }  // [stages() + 1]
  int direction(int rank, int phase) const;
  int stage(int rank, int phase) const;
  int rank_of(int stage, int direction) const;
  // The micro-batches of direction d: [first_micro_batch(d), + micro_batches_of()).
  int first_micro_batch(int direction) const;
  int micro_batches_of() const { return micro_batches / directions(); }
  // The parameters `rank` needs (ModelWeights::load's slice): the layers of its stages, the
  // embedding with stage 0, the final norm, head and MTP module with the last stage — and the
  // embedding there too when the model has an MTP module (`mtp`), which embeds the shifted
  // tokens on the last stage (1F1B: another rank than stage 0's).
  ParamSlice slice(int rank, bool mtp) const;

 private:
  std::vector<int64_t> bounds_;
};

}  // namespace dsv3

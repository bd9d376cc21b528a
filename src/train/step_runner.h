// How one optimizer step's micro-batches become this process's gradient, when the trainer does
// not run them itself (issue 18): a pipeline (src/dist/pipeline_runner.h) runs this rank's stages
// of every micro-batch by its schedule's program. train/ knows the interface only.
#pragma once
#include <cstdint>
#include <vector>

#include "model/model.h"

namespace dsv3 {

struct TrainConfig;  // train/trainer.h

class StepRunner {
 public:
  virtual ~StepRunner() = default;
  // Once, before the first step: the trainer's model (training enabled) and its context.
  virtual void attach(Model& model, ComputeContext ctx, const TrainConfig& cfg) = 0;
  // windows: the step's cfg.accum micro-batches, each [batch, seq_len + 1], in order. Adds this
  // process's share of the step's gradient to the parameters' (zeroed) gradients; sums[5] (total,
  // ce, mtp, balance, aux, each Σ_m part / accum) and load ([L][E], then the MTP layer's; empty
  // for dense layers) get this process's share: what the trainer's data-parallel group sums over
  // the ranks (in rank order) must be the step's.
  virtual void run(const std::vector<std::vector<int32_t>>& windows, double sums[5],
                   std::vector<std::vector<int64_t>>& load) = 0;
};

}  // namespace dsv3

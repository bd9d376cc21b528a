// How one optimizer step's micro-batches become this process's gradient, when the trainer does
// not run them itself (issue 18): a pipeline (src/dist/pipeline_runner.h) runs this rank's stages
// of every micro-batch by its schedule's program. train/ knows the interface only.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/model.h"
#include "model/weights.h"
#include "train/data_parallel.h"

namespace dsv3 {

struct TrainConfig;  // train/trainer.h

class StepRunner {
 public:
  virtual ~StepRunner() = default;
  // Once, before the first step: the trainer's model (training enabled) and its context.
  virtual void attach(Model& model, ComputeContext ctx, const TrainConfig& cfg) = 0;
  // The tensors this process holds (read from the folder, trained, kept in its arenas), given
  // the model; the others are absent (ParamSlice). Asked before attach().
  virtual ParamSlice slice(const ModelConfig& c, const TrainConfig& cfg) = 0;
  // The ranks holding the same tensors as this one: its gradients are summed over them and its
  // AdamW state sharded over them (train/held_params.h).
  virtual DataParallelGroup& holders() = 0;
  // Whether this process is the one of the job that owns a tensor it holds (counts it in the
  // gradient norm, sends it to a checkpoint).
  virtual bool owns(const std::string& tensor) const = 0;
  // Collective over the job: the mean cross-entropy of windows [B, T + 1] (no MTP), every
  // process the same value: what ForwardBackward::evaluate gives one process.
  virtual double evaluate_ce(const int32_t* windows, int64_t B, int64_t T) = 0;
  // windows: the step's cfg.accum micro-batches, each [batch, seq_len + 1], in order. Adds this
  // process's share of the step's gradient to the parameters' (zeroed) gradients; sums[5] (total,
  // ce, mtp, balance, aux, each Σ_m part / accum) and load ([L][E], then the MTP layer's; empty
  // for dense layers) get this process's share: what the trainer's data-parallel group sums over
  // the ranks (in rank order) must be the step's.
  virtual void run(const std::vector<std::vector<int32_t>>& windows, double sums[5],
                   std::vector<std::vector<int64_t>>& load) = 0;
};

}  // namespace dsv3

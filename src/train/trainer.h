// The training loop (issue 13): micro-batches from the data pipeline through ForwardBackward, the
// optimizer step with clipping and V3's LR schedule, the aux-loss-free bias update over the whole
// global batch (SPEC §2), optional EMA, validation, metrics.jsonl, atomic checkpoints and exact
// resume (model, moments, step, data cursor).
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/json.h"
#include "train/data_parallel.h"
#include "train/expert_parallel.h"
#include "train/forward_backward.h"
#include "train/step_runner.h"

namespace dsv3 {

struct TrainConfig {
  // Model: a folder to start from, else a preset with random weights (seed).
  std::string init_dir, preset = "tiny";
  std::string data_dir;
  std::string out_dir;
  bool resume = false;
  uint64_t seed = 0;
  int threads = 0;
  // Batch: accum micro-batches of batch windows of seq_len tokens per optimizer step.
  int64_t seq_len = 128, batch = 8, accum = 1, steps = 100;
  // Data parallelism (SPEC §5): the accum micro-batches of a step split into dp contiguous parts
  // (accum % dp == 0); each part's gradient is accumulated on its own and the parts are summed in
  // order, part 0 first. With a DataParallelGroup of dp ranks, rank r runs part r; without one,
  // this process runs every part in turn: the same sums bit for bit (data_parallel.h).
  int64_t dp = 1;
  // Pipeline parallelism (SPEC §4): pp ranks, each running its stages of every micro-batch
  // through a StepRunner (src/dist); the group then spans dp x pp ranks.
  int64_t pp = 1;
  // How the layers split into stages: "even" (as even as they divide, SPEC §4) or "cost" (the
  // split that minimises the costliest stage, the head and MTP module counted: dist's
  // balanced_stage_bounds).
  std::string pp_split = "even";
  // Expert parallelism inside it (SPEC §5, train/expert_parallel.h): groups of ep consecutive
  // ranks share the routed experts, each holding n_routed_experts / ep of them. ep divides dp;
  // ep > 1 needs the ranks (an ExpertParallel from src/dist).
  int64_t ep = 1;
  // The MoE all-to-all's payloads (src/dist, dist/ep_payload.h): "fp32" (bit-exact) or "fp8"
  // (V3's: E4M3 dispatch with power-of-two scales, BF16 combine).
  std::string ep_dispatch = "fp32";
  // Node-limited routing (SPEC §2): > 0 routes each token to experts on at most this many of the
  // ep ranks of its group (the model's n_group := ep, topk_group := node_limit, recorded in the
  // checkpoints' config.json); 0 keeps the model's routing.
  int64_t node_limit = 0;
  // AdamW (SPEC §5) and V3's LR shape: warmup, constant until decay_start, cosine over
  // decay_steps down to final_lr, then constant.
  double lr = 1e-3, final_lr = 1e-4, beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double weight_decay = 0.1, clip = 1.0;
  // decay_start: the last step at the peak (-1: no decay); decay_steps: the cosine's length.
  int64_t warmup = 0, decay_start = -1, decay_steps = 0;
  bool bf16_moments = true;
  // The Linears' GEMMs (model/linear.h): F32 or BF16.
  Precision precision = Precision::F32;
  Fp8Recipe fp8;  // with an FP8 precision: which parts of the recipe run (ablations)
  LossWeights loss;
  double gamma = 1e-3;     // aux-loss-free bias step; 0 turns the rule off
  double ema_decay = 0;    // 0: no EMA
  bool recompute = false;  // SPEC §3.1 recomputation (ForwardBackward::set_recompute)
  // Data parallel (a store of the whole model): reduce the gradient in buckets started during
  // the last micro-batch's backward, each layer's as soon as it is final (nonblocking MPI
  // collectives); false: one blocking reduction after it. Off by default: on shared-memory
  // OpenMPI the nonblocking path measured 0.36x (docs/DISTRIBUTED.md).
  bool overlap_reduce = false;
  // Pipelines (DualPipe, DualPipeV): run each F&B pair's forward and backward chunks at once on
  // two threads, the rank's threads split between them, so that one chunk computes while the
  // other waits on its all-to-all (SPEC §4); false: the F, then the B. The same bits either way.
  bool overlap_fb = false;
  // Side work.
  int64_t val_every = 50, val_windows = 32, ckpt_every = 200;
  int keep_last = 2, max_bad_steps = 5;
  double time_limit_s = 0;  // stop (with a checkpoint) after this many seconds; 0: no limit

  Json to_json() const;
};

// Runs cfg to cfg.steps (or the time limit, or until *stop is set, checked after each step).
// Returns the last step done. Throws Error for bad configurations, a resume that does not match,
// or too many non-finite steps in a row (the last good checkpoint stays).
// on_windows, when set, sees every micro-batch's windows [batch, seq_len + 1] in order (reference
// runs replay them).
// group: the data-parallel ranks (src/dist) when cfg.dp > 1 runs over several processes: every
// rank draws the whole global batch and runs its part, the optimizer state is sharded (ZeRO-1,
// zero1.h), and only rank 0 writes the run folder (checkpoints hold the whole state).
// runner: when set, runs each step's micro-batches instead of the trainer's loop (a pipeline,
// step_runner.h); the rank loads and keeps only its stages.
// ep: with cfg.ep > 1, this rank's expert-parallel group (expert_parallel.h): it loads and keeps
// only its experts (of its stages, with a runner). Checkpoints gather what a rank does not hold
// (held_params.h).
using WindowsHook = std::function<void(int64_t step, const std::vector<int32_t>& windows)>;
int64_t train(const TrainConfig& cfg, const std::atomic<bool>* stop,
              const WindowsHook& on_windows = {}, DataParallelGroup* group = nullptr,
              const ExpertParallel* ep = nullptr, StepRunner* runner = nullptr);

}  // namespace dsv3

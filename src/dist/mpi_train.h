// `dsv3 train` as one rank of an MPI job (issue 18): the session, the data-parallel group over
// every rank and, with cfg.ep > 1, the expert-parallel groups (ranks [g·E, (g+1)·E) form group g)
// with their all-to-all dispatcher and the groups of ranks holding the same experts, or with
// cfg.pp > 1 the pipelines (ranks [d·P, (d+1)·P) form pipeline d) and their runner (written to
// RUN_DIR/pipeline.json), around
// train/trainer.h's train(). A rank that fails prints its error and ends the job (the others
// would wait for it in their next collective). Rank 0 prints what it sent.
#pragma once
#include <atomic>
#include <cstdint>

#include "dist/pipeline_schedule.h"
#include "train/trainer.h"

namespace dsv3 {

// Returns the last step done; *lead: whether this process is rank 0 (which wrote the run folder).
int64_t train_mpi(const TrainConfig& cfg, PipelineSchedule pipeline, const std::atomic<bool>* stop,
                  const WindowsHook& hook, bool* lead);

}  // namespace dsv3

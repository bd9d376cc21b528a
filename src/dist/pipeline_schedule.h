// Pipeline-parallel schedules as pure functions (SPEC §4; TR §3.2.1, Table 2): the program each
// rank runs — 1F1B (the baseline), DualPipe (N ranks, two directions, rank r holds stages r and
// N-1-r) and DualPipeV (N ranks, one direction, V layout: rank r holds stages r and 2N-1-r) — and
// a simulator that plays the programs against their data dependencies with given chunk costs, to
// measure the bubble. No MPI: the pipeline runner (pipeline_runner.h) executes these programs.
#pragma once
#include <string>
#include <vector>

namespace dsv3 {

// One step of a rank's program. Phases are the rank's own: for DualPipe, phase 0 is the direction
// that enters the pipeline at the rank's nearer end; for DualPipeV, phase 0 is the way down
// (stage r), phase 1 the way back up (stage 2N-1-r); 1F1B has phase 0 only.
struct PipeOp {
  enum Kind : unsigned char {
    F,   // forward chunk of `phase`
    B,   // backward chunk of `phase`: input and weight gradients, or with zero_bubble the input
         // gradient only, its weight gradient queued for a later W (ZeroBubble's B/W split)
    W,   // the oldest queued weight gradient
    FB,  // forward of `phase` overlapped with backward of 1 - phase ("F0&B1", "F1&B0")
  };
  Kind kind = F;
  int phase = 0;
  bool zero_bubble = false;

  bool operator==(const PipeOp&) const = default;
};

enum class PipelineSchedule { OneFOneB, DualPipe, DualPipeV };

// Throws Error (naming the requirement) unless N and C suit the schedule: DualPipe needs N even
// and C even with C >= 2N; DualPipeV needs C >= 2N; 1F1B needs C >= 1. N >= 1 always (>= 2 for
// DualPipe).
std::vector<PipeOp> pipeline_program(PipelineSchedule s, int ranks, int micro_batches, int rank);

// "F0 F0 F1 B1z W F0&B1 ...", SPEC §4's notation (1F1B's ops print as F0 / B0).
std::string to_string(const std::vector<PipeOp>& program);
const char* schedule_name(PipelineSchedule s);
// "1f1b", "dualpipe", "dualpipev"; Error otherwise.
PipelineSchedule parse_schedule(const std::string& name);

// Chunk costs for the simulator: F a forward chunk, B a full backward (input + weight gradients),
// W the weight-gradient part of B (so a zero-bubble B costs B - W), FB an overlapped pair.
struct ChunkCosts {
  double f = 1, b = 2, w = 1, fb = 3;
};

struct PipelineTiming {
  double makespan = 0;               // the last op's end
  std::vector<double> busy, bubble;  // per rank: time in ops, and makespan - busy
  // Per rank, in program order: the start time of each op.
  std::vector<std::vector<double>> start;
};

// Plays every rank's program with its data dependencies (a forward needs the previous stage's
// forward of the same micro-batch, a backward the next stage's backward and its own forward, a
// W a queued zero-bubble B), each op as early as its rank and inputs allow, communication free.
// Throws Error if the programs deadlock (a schedule bug).
PipelineTiming simulate_pipeline(PipelineSchedule s, int ranks, int micro_batches,
                                 const ChunkCosts& c);

// TR Table 2's bubble formula for the schedule at `ranks` = PP: 1F1B (PP-1)(F+B); DualPipe and
// DualPipeV (PP/2-1)(F&B+B-3W) — for DualPipeV, PP counts its 2N stages, as in the table.
double table2_bubble(PipelineSchedule s, int ranks, const ChunkCosts& c);

}  // namespace dsv3

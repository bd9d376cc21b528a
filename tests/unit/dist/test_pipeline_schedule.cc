// The pipeline programs (dist/pipeline_schedule.h) against SPEC §4: the DualPipe test vector for
// N = 4, C = 8 (computed by hand from dualpipe.py's steps, SPEC §4 "[calc]"); exactly C/2 of each
// chunk kind (F0, F1, B0, B1, counting an F&B pair as one of each) per rank for DualPipe, C for
// DualPipeV, a W for every deferred B; programs that play to the end against their dependencies
// for N = 2, 4, 8 (DualPipe) and N = 2, 3, 4 (DualPipeV) at 20 micro-batches; and the simulated
// bubble against TR Table 2's formulas: equal with equal-cost chunks (F = W = 1, B = 2, F&B = 3),
// an upper bound with others.
#include "dist/pipeline_schedule.h"

#include <gtest/gtest.h>

#include <cstdio>

#include "base/error.h"

namespace dsv3 {
namespace {

TEST(PipelineSchedule, DualPipeTestVector) {
  const std::string r0 = "F0 F0 F0 F1 B1z W F1 F0&B1 F1&B0 B1 F1&B0 B1 B0z W B0z W";
  const std::string r1 = "F0 F1 F0 F1 F0 B1 F1&B0 F0&B1 F1&B0 B1 B0 B1z B0z W W";
  EXPECT_EQ(to_string(pipeline_program(PipelineSchedule::DualPipe, 4, 8, 0)), r0);
  EXPECT_EQ(to_string(pipeline_program(PipelineSchedule::DualPipe, 4, 8, 3)), r0);
  EXPECT_EQ(to_string(pipeline_program(PipelineSchedule::DualPipe, 4, 8, 1)), r1);
  EXPECT_EQ(to_string(pipeline_program(PipelineSchedule::DualPipe, 4, 8, 2)), r1);
}

struct Counts {
  int f[2] = {0, 0}, b[2] = {0, 0}, w = 0, deferred = 0;
};

Counts count(const std::vector<PipeOp>& prog) {
  Counts c;
  for (const PipeOp& op : prog) {
    if (op.kind == PipeOp::F || op.kind == PipeOp::FB) ++c.f[op.phase];
    if (op.kind == PipeOp::B) ++c.b[op.phase], c.deferred += op.zero_bubble;
    if (op.kind == PipeOp::FB) ++c.b[1 - op.phase];
    if (op.kind == PipeOp::W) ++c.w;
  }
  return c;
}

TEST(PipelineSchedule, EachRankRunsEveryChunkOnce) {
  for (int n : {2, 4, 8})
    for (int c : {2 * n, 2 * n + 2, 20}) {
      if (c < 2 * n) continue;
      for (int r = 0; r < n; ++r) {
        const Counts k = count(pipeline_program(PipelineSchedule::DualPipe, n, c, r));
        for (int p = 0; p < 2; ++p) {
          EXPECT_EQ(k.f[p], c / 2) << "N " << n << " C " << c << " rank " << r;
          EXPECT_EQ(k.b[p], c / 2) << "N " << n << " C " << c << " rank " << r;
        }
        EXPECT_EQ(k.w, k.deferred);
      }
    }
  for (int n : {1, 2, 3, 4})
    for (int c : {2 * n, 20}) {
      for (int r = 0; r < n; ++r) {
        const Counts k = count(pipeline_program(PipelineSchedule::DualPipeV, n, c, r));
        for (int p = 0; p < 2; ++p) {
          EXPECT_EQ(k.f[p], c) << "V N " << n << " C " << c << " rank " << r;
          EXPECT_EQ(k.b[p], c) << "V N " << n << " C " << c << " rank " << r;
        }
        EXPECT_EQ(k.w, k.deferred);
      }
    }
}

TEST(PipelineSchedule, ProgramsPlayToTheEnd) {
  const ChunkCosts eq;
  for (int n : {2, 4, 8}) EXPECT_NO_THROW(simulate_pipeline(PipelineSchedule::DualPipe, n, 20, eq));
  for (int n : {2, 3, 4})
    EXPECT_NO_THROW(simulate_pipeline(PipelineSchedule::DualPipeV, n, 20, eq));
  for (int n : {1, 2, 4, 8})
    EXPECT_NO_THROW(simulate_pipeline(PipelineSchedule::OneFOneB, n, 20, eq));
}

TEST(PipelineSchedule, RefusesShapesTheScheduleCannotRun) {
  EXPECT_THROW(pipeline_program(PipelineSchedule::DualPipe, 3, 12, 0), Error);  // N odd
  EXPECT_THROW(pipeline_program(PipelineSchedule::DualPipe, 4, 6, 0), Error);   // C < 2N
  EXPECT_THROW(pipeline_program(PipelineSchedule::DualPipe, 4, 9, 0), Error);   // C odd
  EXPECT_THROW(pipeline_program(PipelineSchedule::DualPipeV, 4, 7, 0), Error);  // C < 2N
  EXPECT_THROW(pipeline_program(PipelineSchedule::OneFOneB, 4, 8, 4), Error);   // no rank 4
  EXPECT_THROW(parse_schedule("gpipe"), Error);
}

// P = 4 with equal-cost chunks (docs/DISTRIBUTED.md prints this table): the bubble of the busiest
// rank (the makespan less its busy time, the quantity Table 2 counts) beside the formula.
TEST(PipelineSchedule, BubbleAgainstTable2) {
  const ChunkCosts eq;  // F = 1, B = 2, W = 1, F&B = 3
  const int c = 20;
  std::printf("schedule   ranks stages  simulated bubble (min..max over ranks)  Table 2\n");
  struct Case {
    PipelineSchedule s;
    int ranks, stages;
  };
  for (const Case k :
       {Case{PipelineSchedule::OneFOneB, 4, 4}, Case{PipelineSchedule::DualPipe, 4, 4},
        Case{PipelineSchedule::DualPipeV, 2, 4}, Case{PipelineSchedule::DualPipeV, 4, 8}}) {
    const PipelineTiming t = simulate_pipeline(k.s, k.ranks, c, eq);
    double lo = t.bubble[0], hi = t.bubble[0];
    for (double b : t.bubble) lo = std::min(lo, b), hi = std::max(hi, b);
    const double formula = table2_bubble(k.s, k.ranks, eq);
    std::printf("%-10s %5d %6d  %8.1f .. %-8.1f (makespan %.0f)        %6.1f\n", schedule_name(k.s),
                k.ranks, k.stages, lo, hi, t.makespan, formula);
    // With equal-cost chunks every schedule's bubble is exactly its formula, on every rank.
    EXPECT_DOUBLE_EQ(lo, formula);
    EXPECT_DOUBLE_EQ(hi, formula);
  }
  // With a cheaper W (0.8) or a dearer B and pair, the formulas are upper bounds of the
  // simulated bubble for DualPipe / DualPipeV (1F1B's stays exact: it has no W or pairs).
  for (const ChunkCosts cc : {ChunkCosts{1, 2, 0.8, 2.6}, ChunkCosts{1, 2.5, 1.2, 3.2}})
    for (PipelineSchedule s : {PipelineSchedule::DualPipe, PipelineSchedule::DualPipeV})
      for (int n : {2, 4, 8}) {
        const PipelineTiming t = simulate_pipeline(s, n, c, cc);
        for (double b : t.bubble) EXPECT_LE(b, table2_bubble(s, n, cc) + 1e-9);
      }
}

}  // namespace
}  // namespace dsv3

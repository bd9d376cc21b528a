// Stage placement (dist/pipeline_layout.h) against SPEC §4's layouts, written out by hand: DualPipe
// rank r holds stages r and N-1-r (direction 0 from rank 0, direction 1 from rank N-1, a rank's
// phase 0 the direction entering at its nearer end), DualPipeV rank r holds r and 2N-1-r; stages
// are consecutive layers covering the model once; too few layers is an error.
#include "dist/pipeline_layout.h"

#include <gtest/gtest.h>

#include "base/error.h"

namespace dsv3 {
namespace {

TEST(PipelineLayout, DualPipeHoldsStagesRAndNMinus1MinusR) {
  const PipelineLayout p(PipelineSchedule::DualPipe, 4, 8, 8);
  EXPECT_EQ(p.stages(), 4);
  EXPECT_EQ(p.directions(), 2);
  // (rank, phase) -> (direction, stage), by hand from SPEC §4.
  const int want[4][2][2] = {
      {{0, 0}, {1, 3}}, {{0, 1}, {1, 2}}, {{1, 1}, {0, 2}}, {{1, 0}, {0, 3}}};
  for (int r = 0; r < 4; ++r)
    for (int ph = 0; ph < 2; ++ph) {
      EXPECT_EQ(p.direction(r, ph), want[r][ph][0]) << r << " " << ph;
      EXPECT_EQ(p.stage(r, ph), want[r][ph][1]) << r << " " << ph;
      EXPECT_EQ(p.rank_of(p.stage(r, ph), p.direction(r, ph)), r);
    }
  EXPECT_EQ(p.first_micro_batch(0), 0);
  EXPECT_EQ(p.first_micro_batch(1), 4);
  EXPECT_EQ(p.micro_batches_of(), 4);
}

TEST(PipelineLayout, DualPipeVFoldsTheStagesBack) {
  const PipelineLayout p(PipelineSchedule::DualPipeV, 3, 6, 8);
  EXPECT_EQ(p.stages(), 6);
  const int want[3][2] = {{0, 5}, {1, 4}, {2, 3}};
  for (int r = 0; r < 3; ++r)
    for (int ph = 0; ph < 2; ++ph) {
      EXPECT_EQ(p.stage(r, ph), want[r][ph]);
      EXPECT_EQ(p.direction(r, ph), 0);
      EXPECT_EQ(p.rank_of(want[r][ph], 0), r);
    }
  // 8 layers over 6 stages: the first two stages get the extra layers.
  const StageLayers want_layers[6] = {{0, 2}, {2, 4}, {4, 5}, {5, 6}, {6, 7}, {7, 8}};
  for (int s = 0; s < 6; ++s) {
    EXPECT_EQ(p.stage_layers(s).begin, want_layers[s].begin) << s;
    EXPECT_EQ(p.stage_layers(s).end, want_layers[s].end) << s;
  }
}

TEST(PipelineLayout, OneFOneBIsOneStageARank) {
  const PipelineLayout p(PipelineSchedule::OneFOneB, 4, 5, 4);
  for (int r = 0; r < 4; ++r) {
    EXPECT_EQ(p.stage(r, 0), r);
    EXPECT_EQ(p.stage_layers(r).begin, r);
    EXPECT_EQ(p.stage_layers(r).end, r + 1);
  }
  EXPECT_EQ(p.micro_batches_of(), 5);
}

TEST(PipelineLayout, BadShapesAreErrors) {
  EXPECT_THROW(PipelineLayout(PipelineSchedule::DualPipeV, 4, 8, 7), Error);  // 8 stages
  EXPECT_THROW(PipelineLayout(PipelineSchedule::DualPipe, 3, 8, 8), Error);   // odd N
  EXPECT_THROW(PipelineLayout(PipelineSchedule::DualPipe, 4, 6, 8), Error);   // C < 2N
}

}  // namespace
}  // namespace dsv3

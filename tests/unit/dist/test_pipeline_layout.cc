// Stage placement (dist/pipeline_layout.h) against SPEC §4's layouts, written out by hand: DualPipe
// rank r holds stages r and N-1-r (direction 0 from rank 0, direction 1 from rank N-1, a rank's
// phase 0 the direction entering at its nearer end), DualPipeV rank r holds r and 2N-1-r; stages
// are consecutive layers covering the model once; too few layers is an error. A rank's parameters
// (slice) are its stages' tensors, checked by hand and against the parameter table.
#include "dist/pipeline_layout.h"

#include <gtest/gtest.h>

#include "base/error.h"
#include "model/param_table.h"
#include "model/presets.h"

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

// DualPipe over 4 ranks, 8 layers (stages of 2): rank 1 holds stages 1 and 2, rank 0 stages 0
// and 3 with the embedding, the final norm, the head and the MTP module.
TEST(PipelineLayout, SliceHoldsTheRanksStages) {
  const PipelineLayout p(PipelineSchedule::DualPipe, 4, 8, 8);
  const ParamSlice r0 = p.slice(0, true), r1 = p.slice(1, true);
  ASSERT_EQ(r1.layers.size(), 2u);
  EXPECT_EQ(r1.layers[0].begin, 2);
  EXPECT_EQ(r1.layers[0].end, 4);
  EXPECT_EQ(r1.layers[1].begin, 4);
  EXPECT_EQ(r1.layers[1].end, 6);
  EXPECT_FALSE(r1.embedding || r1.head);
  EXPECT_TRUE(r0.embedding && r0.head);
  EXPECT_EQ(r0.expert_count, -1);  // every expert of its layers
  const PipelineLayout one(PipelineSchedule::OneFOneB, 4, 4, 8);
  EXPECT_TRUE(one.slice(3, true).embedding);  // its MTP module embeds the shifted tokens
  EXPECT_FALSE(one.slice(3, false).embedding);
  EXPECT_FALSE(one.slice(0, true).head);
}

// Over the whole parameter table (tiny preset, 8 layers, one MTP module): each tensor is held by
// exactly the ranks that run its stage — DualPipe's two partners, one rank otherwise — plus, for
// 1F1B, the embedding on the last rank (the MTP module's input).
TEST(PipelineLayout, SlicesCoverTheModel) {
  ModelConfig c = preset_config("tiny");
  c.num_hidden_layers = 8;
  ASSERT_GT(c.num_nextn_predict_layers, 0);
  struct Case {
    PipelineSchedule s;
    int ranks, holders;
  };
  for (const Case& k :
       {Case{PipelineSchedule::DualPipe, 4, 2}, Case{PipelineSchedule::DualPipe, 8, 2},
        Case{PipelineSchedule::DualPipeV, 2, 1}, Case{PipelineSchedule::DualPipeV, 4, 1},
        Case{PipelineSchedule::OneFOneB, 4, 1}}) {
    const PipelineLayout p(k.s, k.ranks, 2 * k.ranks, c.num_hidden_layers);
    for (const ParamSpec& t : param_table(c)) {
      int held = 0;
      for (int r = 0; r < k.ranks; ++r) held += p.slice(r, true).holds(t) ? 1 : 0;
      const bool mtp_input =
          k.s == PipelineSchedule::OneFOneB && t.name == "model.embed_tokens.weight";
      EXPECT_EQ(held, k.holders + (mtp_input ? 1 : 0)) << schedule_name(k.s) << " " << t.name;
    }
  }
}

TEST(PipelineLayout, BadShapesAreErrors) {
  EXPECT_THROW(PipelineLayout(PipelineSchedule::DualPipeV, 4, 8, 7), Error);  // 8 stages
  EXPECT_THROW(PipelineLayout(PipelineSchedule::DualPipe, 3, 8, 8), Error);   // odd N
  EXPECT_THROW(PipelineLayout(PipelineSchedule::DualPipe, 4, 6, 8), Error);   // C < 2N
}

}  // namespace
}  // namespace dsv3

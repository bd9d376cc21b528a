// Stage placement (dist/pipeline_layout.h) against SPEC §4's layouts, written out by hand: DualPipe
// rank r holds stages r and N-1-r (direction 0 from rank 0, direction 1 from rank N-1, a rank's
// phase 0 the direction entering at its nearer end), DualPipeV rank r holds r and 2N-1-r; stages
// are consecutive layers covering the model once; too few layers is an error. A rank's parameters
// (slice) are its stages' tensors, checked by hand and against the parameter table. The balanced
// split (--pp-split cost) against brute force over every split, and its cost model against the
// config's fields written out.
#include "dist/pipeline_layout.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "base/error.h"
#include "base/rng.h"
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
  // Bounds that leave a stage empty, miss a layer or do not fit the stages.
  EXPECT_THROW(PipelineLayout(PipelineSchedule::OneFOneB, 2, 2, 4, {0, 0, 4}), Error);
  EXPECT_THROW(PipelineLayout(PipelineSchedule::OneFOneB, 2, 2, 4, {0, 2, 3}), Error);
  EXPECT_THROW(PipelineLayout(PipelineSchedule::OneFOneB, 2, 2, 4, {0, 1, 2, 4}), Error);
  EXPECT_THROW(balanced_stage_bounds(StageCosts{{1, 1}, 0, 0}, 3), Error);
}

TEST(PipelineLayout, GivenBoundsPlaceTheLayers) {
  const PipelineLayout p(PipelineSchedule::DualPipeV, 2, 4, 8, {0, 3, 5, 7, 8});
  const StageLayers want[4] = {{0, 3}, {3, 5}, {5, 7}, {7, 8}};
  for (int s = 0; s < 4; ++s) {
    EXPECT_EQ(p.stage_layers(s).begin, want[s].begin) << s;
    EXPECT_EQ(p.stage_layers(s).end, want[s].end) << s;
  }
  // Rank 0 holds stages 0 and 3: layers 0-2 and 7.
  const ParamSlice sl = p.slice(0, true);
  ASSERT_EQ(sl.layers.size(), 2u);
  EXPECT_EQ(sl.layers[0].begin, 0);
  EXPECT_EQ(sl.layers[1].begin, 7);
}

// Against every split of L layers into S non-empty stages, by brute force: the least costliest
// stage, and among those the least sum of squared stage costs. Integer costs keep the sums exact.
TEST(PipelineLayout, BalancedBoundsAreTheBestSplit) {
  Rng rng(5);
  for (int trial = 0; trial < 40; ++trial) {
    StageCosts k;
    const int L = 2 + trial % 9;
    for (int i = 0; i < L; ++i) k.layer.push_back(static_cast<double>(1 + rng.below(9)));
    k.first = static_cast<double>(rng.below(4));
    k.last = static_cast<double>(rng.below(30));
    for (int S = 1; S <= L; ++S) {
      const auto score = [&](const std::vector<int64_t>& b) {
        double most = 0, squares = 0;
        for (int s = 0; s < S; ++s) {
          double c = (s == 0 ? k.first : 0) + (s == S - 1 ? k.last : 0);
          for (int64_t l = b[s]; l < b[s + 1]; ++l) c += k.layer[static_cast<size_t>(l)];
          most = std::max(most, c);
          squares += c * c;
        }
        return std::pair{most, squares};
      };
      std::pair<double, double> best{1e300, 1e300};
      for (uint32_t mask = 0; mask < (1u << (L - 1)); ++mask) {  // bit i: a stage starts at i + 1
        if (__builtin_popcount(mask) != S - 1) continue;
        std::vector<int64_t> b{0};
        for (int i = 0; i < L - 1; ++i)
          if (mask >> i & 1) b.push_back(i + 1);
        b.push_back(L);
        best = std::min(best, score(b));
      }
      const std::vector<int64_t> got = balanced_stage_bounds(k, S);
      ASSERT_EQ(got.size(), static_cast<size_t>(S) + 1);
      EXPECT_EQ(got.front(), 0);
      EXPECT_EQ(got.back(), L);
      for (int s = 0; s < S; ++s) EXPECT_LT(got[s], got[s + 1]) << "L " << L << " S " << S;
      EXPECT_EQ(score(got), best) << "L " << L << " S " << S << " trial " << trial;
    }
  }
}

// The cost model written out from the config's fields for the tiny preset (layer 0 dense, the rest
// MoE; MLA with q_lora; an MTP module): multiply-adds per token of each Linear, the routed experts
// at top_k of them, the attention core at (T + 1) / 2 keys.
TEST(PipelineLayout, StageCostsCountEachLayersMultiplyAdds) {
  const ModelConfig c = preset_config("tiny");
  const int64_t T = 64, d = c.hidden_size, H = c.num_attention_heads;
  const double attn_core =
      (T + 1) / 2.0 *
      static_cast<double>(H * (c.qk_nope_head_dim + c.qk_rope_head_dim + c.v_head_dim));
  const double mla = static_cast<double>(
      d * c.q_lora_rank + c.q_lora_rank * H * (c.qk_nope_head_dim + c.qk_rope_head_dim) +
      d * (c.kv_lora_rank + c.qk_rope_head_dim) +
      c.kv_lora_rank * H * (c.qk_nope_head_dim + c.v_head_dim) + H * c.v_head_dim * d);
  const double dense = 3.0 * static_cast<double>(d * c.intermediate_size);
  const double moe = static_cast<double>(d * c.n_routed_experts +
                                         3 * d * c.moe_intermediate_size * c.num_experts_per_tok +
                                         3 * d * c.moe_intermediate_size * c.n_shared_experts);
  const double head = static_cast<double>(d * c.vocab_size);
  const StageCosts k = stage_costs(c, T);
  ASSERT_EQ(k.layer.size(), static_cast<size_t>(c.num_hidden_layers));
  ASSERT_EQ(c.first_k_dense_replace, 1);
  EXPECT_DOUBLE_EQ(k.layer[0], attn_core + mla + dense);
  for (size_t l = 1; l < k.layer.size(); ++l) EXPECT_DOUBLE_EQ(k.layer[l], attn_core + mla + moe);
  EXPECT_DOUBLE_EQ(k.first, 0);
  // The head; the MTP module: its projection of [emb; h], one MoE layer and its head.
  EXPECT_DOUBLE_EQ(k.last, head + 2.0 * static_cast<double>(d * d) + attn_core + mla + moe + head);
}

}  // namespace
}  // namespace dsv3

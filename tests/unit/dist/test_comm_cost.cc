// The communication model (dist/comm_cost.h): its DP term against the bytes MpiDataParallel counts
// (3 passes of (n-1)/n of the arena, the arena's size from count_params, independent of the
// model's stage walk), its EP and PP terms against the formulas written out for a one-stage plan,
// the refusals, and the V3 layout (PP16 DualPipe, EP64, 2048 ranks, 15360 x 4096 tokens per step)
// printed for docs/DISTRIBUTED.md.
#include "dist/comm_cost.h"

#include <gtest/gtest.h>

#include <cstdio>

#include "base/error.h"
#include "model/param_table.h"
#include "model/presets.h"

namespace dsv3 {
namespace {

TEST(CommCost, DataParallelTermIsThreeArenaPasses) {
  const ModelConfig c = preset_config("tiny");
  const ParamCounts n = count_params(c);
  const double arena = static_cast<double>(n.main_total + n.mtp_unique);
  for (int ranks : {2, 4}) {
    ParallelPlan p;
    p.ranks = ranks;
    p.global_tokens = 4 * 2 * 32;
    const RankTraffic t = busiest_rank_traffic(c, p);
    EXPECT_DOUBLE_EQ(t.dense_params + t.expert_params, arena);
    EXPECT_DOUBLE_EQ(t.dp_bytes, 3 * 4 * arena * (ranks - 1) / ranks);
    EXPECT_EQ(t.ep_bytes, 0);
    EXPECT_EQ(t.pp_bytes, 0);
  }
}

TEST(CommCost, ExpertAndPipelineTermsOfOneStage) {
  const ModelConfig c = preset_config("tiny");  // 3 MoE layers + the MTP's, K = 4, d = 256
  ParallelPlan p;
  p.ranks = 8;
  p.pp = 2;
  p.ep = 4;
  p.global_tokens = 4096;
  const RankTraffic t = busiest_rank_traffic(c, p);
  const double tokens = 4096.0 / 4;  // dp = 4
  EXPECT_DOUBLE_EQ(t.tokens, tokens);
  // A token's row goes once to each other rank holding one of its 4 experts (4 of the 16 each):
  // another rank holds none with probability C(12,4)/C(16,4) = 495/1820. Its 3 remote slots of
  // 4 come back as rows and 12 bytes of words each.
  const double token_rows = 3 * (1 - 495.0 / 1820);
  EXPECT_DOUBLE_EQ(remote_ranks_per_token(c, 4), token_rows);
  EXPECT_DOUBLE_EQ(remote_ranks_per_token(c, 1), 0);
  EXPECT_DOUBLE_EQ(t.ep_bytes, tokens * static_cast<double>(t.moe_layers) *
                                   (token_rows * 256 * (1 + 2) + 4 * 0.75 * (256 * (2 + 2) + 12)));
  EXPECT_DOUBLE_EQ(t.pp_bytes, tokens * 256 * 2 * 2);
  EXPECT_THROW(busiest_rank_traffic(c, {.ranks = 6, .pp = 4}), Error);
  EXPECT_THROW(busiest_rank_traffic(c, {.ranks = 8, .pp = 2, .ep = 3}), Error);
  EXPECT_THROW(busiest_rank_traffic(c, {.ranks = 6, .pp = 3, .dualpipe = true}), Error);
}

TEST(CommCost, V3Layout) {
  const ModelConfig c = preset_config("deepseek-v3");
  ParallelPlan p;
  p.ranks = 2048;
  p.pp = 16;
  p.ep = 64;
  p.dualpipe = true;
  p.global_tokens = int64_t{15360} * 4096;
  for (int passes : {3, 2}) {
    p.dp_passes = passes;
    const RankTraffic t = busiest_rank_traffic(c, p);
    std::printf(
        "V3 PP16 DualPipe EP64 DP128, %d DP passes: busiest rank holds %.2fB dense + %.2fB expert "
        "parameters, %lld MoE layers, %.0f tokens per stage per step; sends DP %.1f GB, EP %.1f "
        "GB, PP %.1f GB per step\n",
        passes, t.dense_params / 1e9, t.expert_params / 1e9, static_cast<long long>(t.moe_layers),
        t.tokens, t.dp_bytes / 1e9, t.ep_bytes / 1e9, t.pp_bytes / 1e9);
    // The busiest is rank 0: stage 0 (the embedding, layers 0-3: 3 dense, 1 MoE) and stage 15
    // (layers 58-60 and the MTP module: 4 MoE, the head); 256 / 64 = 4 experts of each MoE layer.
    EXPECT_EQ(t.moe_layers, 5);
    EXPECT_NEAR(t.expert_params / (static_cast<double>(t.moe_layers) * 4 * 3 * 7168 * 2048), 1.0,
                1e-9);
  }
}

}  // namespace
}  // namespace dsv3

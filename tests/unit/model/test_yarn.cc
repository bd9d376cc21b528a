// YaRN frequencies and the attention softmax scale: the test vectors of SPEC §1.4 and §1.3
// (computed independently from the formulas there) on the real DeepSeek-V3 and V2-Lite configs.
#include <gtest/gtest.h>

#include <cmath>

#include "base/error.h"
#include "model/presets.h"
#include "model/yarn_rope.h"

namespace dsv3 {
namespace {

TEST(Yarn, DeepseekV3FrequenciesMatchSpecVectors) {
  const ModelConfig c = preset_config("deepseek-v3");
  const YarnRange r = yarn_correction_range(32, 1, 64, 10000, 4096);
  EXPECT_EQ(r.low, 10);
  EXPECT_EQ(r.high, 23);
  const RopeParams p = rope_params(c);
  ASSERT_EQ(p.dim, 64);
  ASSERT_EQ(p.inv_freq.size(), 32u);
  EXPECT_TRUE(p.interleaved);
  // Tolerances: half a unit in the last digit SPEC prints.
  EXPECT_NEAR(p.inv_freq[0], 1.0, 1e-15);
  EXPECT_NEAR(p.inv_freq[10], 0.0562341, 5e-8);  // below low: unchanged
  EXPECT_NEAR(p.inv_freq[10], std::pow(10000.0, -20.0 / 64), 1e-15);
  EXPECT_NEAR(p.inv_freq[11], 0.0390069, 5e-8);
  EXPECT_NEAR(p.inv_freq[16], 0.0055, 1e-15);  // exactly 0.01 * (7/13 + 6/13/40)
  EXPECT_NEAR(p.inv_freq[22], 1.778e-4, 5e-8);
  EXPECT_NEAR(p.inv_freq[23], 3.3338e-5, 5e-10);  // f_23 / 40
  EXPECT_NEAR(p.inv_freq[31], std::pow(10000.0, -62.0 / 64) / 40, 1e-18);
  EXPECT_DOUBLE_EQ(p.cos_sin_scale, 1.0);  // mscale == mscale_all_dim
}

TEST(Yarn, SoftmaxScales) {
  EXPECT_NEAR(attention_softmax_scale(preset_config("deepseek-v3")), 0.1352338, 5e-8);
  EXPECT_NEAR(attention_softmax_scale(preset_config("deepseek-v2-lite")), 0.1147214, 5e-8);
  EXPECT_NEAR(yarn_mscale(40, 1.0), 1.368888, 5e-7);
  // YaRN off: plain (d_n + d_r)^-0.5.
  ModelConfig c = preset_config("deepseek-v3");
  c.rope_scaling = RopeScaling{};
  EXPECT_DOUBLE_EQ(attention_softmax_scale(c), 1.0 / std::sqrt(192.0));
}

TEST(Yarn, RopeTablesScaleByMscaleRatio) {
  ModelConfig c = preset_config("deepseek-v3");
  c.rope_scaling.mscale = 0.5;  // cos/sin get m(40, 0.5) / m(40, 1.0)
  const RopeParams p = rope_params(c);
  const double ratio = (0.05 * std::log(40.0) + 1) / (0.1 * std::log(40.0) + 1);
  EXPECT_NEAR(p.cos_sin_scale, ratio, 1e-15);
  std::vector<float> cos(32 * 2), sin(32 * 2);
  rope_tables(p, 1000, 2, cos.data(), sin.data());
  for (int i = 0; i < 32; ++i) {
    const double angle = 1001.0 * p.inv_freq[i];
    EXPECT_NEAR(cos[32 + i], std::cos(angle) * ratio, 1e-7);
    EXPECT_NEAR(sin[32 + i], std::sin(angle) * ratio, 1e-7);
  }
}

TEST(Yarn, Llama3BandsAndUnsupportedTypes) {
  ModelConfig c;
  c.arch = Arch::Llama;
  c.model_type = "llama";
  c.head_dim = 16;
  c.rope_theta = 500000;
  c.rope_scaling.type = "llama3";
  c.rope_scaling.factor = 8;
  c.rope_scaling.low_freq_factor = 1;
  c.rope_scaling.high_freq_factor = 4;
  c.rope_scaling.original_max_position_embeddings = 64;
  const RopeParams p = rope_params(c);
  EXPECT_FALSE(p.interleaved);
  const double f0 = 1.0, f1 = std::pow(500000.0, -2.0 / 16), f2 = std::pow(500000.0, -4.0 / 16);
  EXPECT_DOUBLE_EQ(p.inv_freq[0], f0);                   // wavelength 6.3 < 64/4: kept
  const double smooth = (64 / (2 * M_PI / f1) - 1) / 3;  // wavelength 32: blended
  EXPECT_NEAR(p.inv_freq[1], (1 - smooth) * f1 / 8 + smooth * f1, 1e-15);
  EXPECT_NEAR(p.inv_freq[2], f2 / 8, 1e-18);  // wavelength 167 > 64: scaled
  c.rope_scaling.type = "yarn";
  EXPECT_THROW(rope_params(c), Error);
}

}  // namespace
}  // namespace dsv3

// Rotary position embedding parameters from a config: base frequencies, YaRN (SPEC §1.4), llama3
// and linear scaling, the cos/sin tables the rope kernels take, and the attention softmax scale
// with YaRN's mscale (SPEC §1.3). dsv3 follows Hugging Face: YaRN applies whenever
// rope_scaling.type == "yarn", whatever the run's sequence length (SPEC §9).
#pragma once
#include <cstdint>
#include <vector>

#include "model/config.h"

namespace dsv3 {

struct RopeParams {
  int64_t dim = 0;  // rotated values per head (qk_rope_head_dim for MLA, head_dim otherwise)
  bool interleaved = true;       // pairs (x[2i], x[2i+1]) for DeepSeek; rotate-half for Qwen2/Llama
  std::vector<double> inv_freq;  // [dim/2] angle per position of pair i
  double cos_sin_scale = 1.0;    // YaRN: m(factor, mscale) / m(factor, mscale_all_dim) (HF)
};

// YaRN's m = 0.1 * mscale * ln(factor) + 1 for factor > 1, else 1 (HF yarn_get_mscale).
double yarn_mscale(double factor, double mscale);

// The YaRN ramp bounds of SPEC §1.4: low = max(floor(corr(beta_fast)), 0),
// high = min(ceil(corr(beta_slow)), dim - 1), corr(r) = dim ln(L0 / (2 pi r)) / (2 ln base).
struct YarnRange {
  double low = 0, high = 0;
};
YarnRange yarn_correction_range(double beta_fast, double beta_slow, int64_t dim, double base,
                                int64_t original_max_position_embeddings);

// Throws Error naming the rope_scaling type when the architecture does not support it.
RopeParams rope_params(const ModelConfig& c);

// (d_n + d_r)^-0.5 * m(factor, mscale_all_dim)^2 for MLA with YaRN (SPEC §1.3), head_dim^-0.5 else.
double attention_softmax_scale(const ModelConfig& c);

// cos/sin tables [T, dim/2] for positions pos0 .. pos0 + T - 1, times cos_sin_scale. Angles are
// formed in double so that long positions keep their precision.
void rope_tables(const RopeParams& p, int64_t pos0, int64_t T, float* cos, float* sin);

}  // namespace dsv3

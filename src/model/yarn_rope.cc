// Rotary frequencies: plain, YaRN (SPEC §1.4, HF DeepseekV3YarnRotaryEmbedding), llama3 (HF
// _compute_llama3_parameters) and linear position interpolation.
#include "model/yarn_rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "base/error.h"

namespace dsv3 {

double yarn_mscale(double factor, double mscale) {
  return factor <= 1.0 ? 1.0 : 0.1 * mscale * std::log(factor) + 1.0;
}

YarnRange yarn_correction_range(double beta_fast, double beta_slow, int64_t dim, double base,
                                int64_t original_max_position_embeddings) {
  auto corr = [&](double rotations) {
    return static_cast<double>(dim) *
           std::log(static_cast<double>(original_max_position_embeddings) /
                    (rotations * 2.0 * std::numbers::pi)) /
           (2.0 * std::log(base));
  };
  YarnRange r;
  r.low = std::max(std::floor(corr(beta_fast)), 0.0);
  r.high = std::min(std::ceil(corr(beta_slow)), static_cast<double>(dim - 1));
  return r;
}

namespace {

void apply_yarn(const RopeScaling& s, double base, RopeParams& p) {
  DSV3_CHECK(
      s.factor > 0 && s.original_max_position_embeddings > 0,
      "config.json: rope_scaling (yarn) needs factor > 0 and original_max_position_embeddings");
  YarnRange r = yarn_correction_range(s.beta_fast, s.beta_slow, p.dim, base,
                                      s.original_max_position_embeddings);
  if (r.low == r.high) r.high += 0.001;  // SPEC §1.4: avoid a zero-width ramp
  for (size_t i = 0; i < p.inv_freq.size(); ++i) {
    const double ramp = std::clamp((static_cast<double>(i) - r.low) / (r.high - r.low), 0.0, 1.0);
    p.inv_freq[i] = p.inv_freq[i] * (1.0 - ramp) + p.inv_freq[i] / s.factor * ramp;
  }
  p.cos_sin_scale = yarn_mscale(s.factor, s.mscale) / yarn_mscale(s.factor, s.mscale_all_dim);
}

void apply_llama3(const RopeScaling& s, RopeParams& p) {
  DSV3_CHECK(
      s.factor > 0 && s.original_max_position_embeddings > 0 &&
          s.high_freq_factor > s.low_freq_factor,
      "config.json: rope_scaling (llama3) needs factor > 0, original_max_position_embeddings "
      "and high_freq_factor > low_freq_factor");
  const double old_len = static_cast<double>(s.original_max_position_embeddings);
  const double low_wavelen = old_len / s.low_freq_factor,
               high_wavelen = old_len / s.high_freq_factor;
  for (double& f : p.inv_freq) {
    const double wavelen = 2.0 * std::numbers::pi / f;
    if (wavelen > low_wavelen) {
      f /= s.factor;
    } else if (wavelen >= high_wavelen) {  // medium band: blend scaled and unscaled
      const double smooth =
          (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      f = (1.0 - smooth) * f / s.factor + smooth * f;
    }
  }
}

}  // namespace

RopeParams rope_params(const ModelConfig& c) {
  RopeParams p;
  p.dim = c.is_mla() ? c.qk_rope_head_dim : c.head_dim;
  p.interleaved = c.is_mla();
  DSV3_CHECK(p.dim > 0 && p.dim % 2 == 0,
             "config.json: rotary dimension must be even and positive");
  for (int64_t i = 0; i < p.dim / 2; ++i)
    p.inv_freq.push_back(1.0 / std::pow(c.rope_theta, static_cast<double>(2 * i) / p.dim));
  const std::string& type = c.rope_scaling.type;
  if (type.empty()) return p;
  if (type == "linear") {
    for (double& f : p.inv_freq) f /= c.rope_scaling.factor;
  } else if (type == "yarn" && c.is_mla()) {
    apply_yarn(c.rope_scaling, c.rope_theta, p);
  } else if (type == "llama3" && !c.is_mla()) {
    apply_llama3(c.rope_scaling, p);
  } else {
    throw Error(
        "config.json: rope_scaling type '" + type + "' is not supported for " + c.model_type,
        "supported: yarn (deepseek), llama3 (llama/qwen2), linear");
  }
  return p;
}

double attention_softmax_scale(const ModelConfig& c) {
  if (!c.is_mla()) return 1.0 / std::sqrt(static_cast<double>(c.head_dim));
  double scale = 1.0 / std::sqrt(static_cast<double>(c.qk_head_dim()));
  const RopeScaling& s = c.rope_scaling;
  if (s.type == "yarn" && s.mscale_all_dim != 0.0) {
    const double m = yarn_mscale(s.factor, s.mscale_all_dim);
    scale *= m * m;
  }
  return scale;
}

void rope_tables(const RopeParams& p, int64_t pos0, int64_t T, float* cos, float* sin) {
  const int64_t half = p.dim / 2;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < half; ++i) {
      const double angle = static_cast<double>(pos0 + t) * p.inv_freq[i];
      cos[t * half + i] = static_cast<float>(std::cos(angle) * p.cos_sin_scale);
      sin[t * half + i] = static_cast<float>(std::sin(angle) * p.cos_sin_scale);
    }
}

}  // namespace dsv3

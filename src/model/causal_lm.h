// The decoder stack every architecture shares: embedding -> layers -> final norm -> LM head (SPEC
// §1.2), plus the MTP module for DeepSeek (SPEC §1.7). The arch_*.cc / deepseek_v3.cc files check
// their configs and choose the LayerOptions.
#pragma once
#include <memory>
#include <optional>
#include <vector>

#include "model/decoder_layer.h"
#include "model/mtp.h"
#include "model/yarn_rope.h"

namespace dsv3 {

// Activations of one forward chunk, kept for a backward pass.
struct StackActs {
  std::vector<float> x;       // [T, d] residual stream, embedding in, last layer output out
  std::vector<float> normed;  // [T, d] final RMSNorm(x)
  std::vector<float> cos, sin;
  DecoderActs layer;  // shared by the layers in inference
};

class CausalLm : public Model {
 public:
  CausalLm(const ModelWeights& w, ComputeContext ctx, const LayerOptions& opt);
  const ModelConfig& config() const override { return c_; }
  CacheLayout cache_layout() const override;
  void forward(const int32_t* ids, int64_t T, AttentionCache& cache, float* logits, float* hidden,
               LogitsRows rows) override;
  bool has_mtp() const override { return mtp_.has_value(); }
  CacheLayout mtp_cache_layout() const override;
  void forward_mtp(const float* hidden, const int32_t* next_ids, int64_t T, AttentionCache& cache,
                   float* logits) override;
  void set_attention_path(AttentionPath p) override { path_ = p; }

 private:
  // logits: [T, vocab], or [vocab] for the chunk's last row when last_row_only.
  void forward_chunk(const int32_t* ids, int64_t T, AttentionCache& cache, float* logits,
                     bool last_row_only, float* hidden);
  void check_cache(const AttentionCache& cache, const CacheLayout& want) const;

  const ModelConfig& c_;
  ComputeContext ctx_;
  AttentionPath path_ = AttentionPath::Absorbed;
  RopeParams rope_;
  WeightRef embed_, head_;
  std::vector<float> final_norm_;
  std::vector<DecoderLayer> layers_;
  std::optional<Mtp> mtp_;
  StackActs acts_;
  MtpActs mtp_acts_;
};

}  // namespace dsv3

// The Multi-Token Prediction module, depth 1 (SPEC §1.7): for position i, with h_i the main
// model's last hidden state after model.norm and t_{i+1} the token that follows,
//   x = eh_proj(cat[enorm(Emb(t_{i+1})), hnorm(h_i)])   (embedding first, SPEC §9)
//   logits_{i+2} = shared_head.head(shared_head.norm(DecoderLayer(x)))
// The layer is model.layers.<num_hidden_layers> and keeps its own one-layer cache.
#pragma once
#include <vector>

#include "model/decoder_layer.h"
#include "model/yarn_rope.h"

namespace dsv3 {

struct MtpActs {
  std::vector<float> emb;     // [T, d] Emb(t_{i+1})
  std::vector<float> cat;     // [T, 2d] [enorm(emb); hnorm(h)]
  std::vector<float> x;       // [T, d] eh_proj(cat), then the layer output in place
  std::vector<float> normed;  // [T, d] shared_head.norm(x)
  std::vector<float> cos, sin;
  DecoderActs layer;
};

class Mtp {
 public:
  Mtp(const ModelConfig& c, const ModelWeights& w, const RopeParams& rope);
  CacheLayout cache_layout() const;
  void forward(ComputeContext ctx, AttentionPath path, const float* hidden, const int32_t* next_ids,
               int64_t T, AttentionCache& cache, MtpActs& a, float* logits) const;

 private:
  const ModelConfig& c_;
  const RopeParams& rope_;
  float eps_;
  WeightRef embed_, eh_proj_, head_;
  std::vector<float> enorm_, hnorm_, head_norm_;
  DecoderLayer layer_;
};

}  // namespace dsv3

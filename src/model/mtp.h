// The Multi-Token Prediction module, depth 1 (SPEC §1.7): for position i, with h_i the main
// model's last hidden state after model.norm and t_{i+1} the token that follows,
//   x = eh_proj(cat[enorm(Emb(t_{i+1})), hnorm(h_i)])   (embedding first, SPEC §9)
//   logits_{i+2} = shared_head.head(shared_head.norm(DecoderLayer(x)))
// The layer is model.layers.<num_hidden_layers> and keeps its own one-layer cache. The embedding
// and the head are the main model's (shared, SPEC §1.7; the store aliases the stored copies).
#pragma once
#include <vector>

#include "model/decoder_layer.h"
#include "model/yarn_rope.h"

namespace dsv3 {

// Activations of one batch of N rows.
struct MtpActs {
  std::vector<float> emb;      // [N, d] Emb(t_{i+1})
  std::vector<float> cat;      // [N, 2d] [enorm(emb); hnorm(h)]
  std::vector<float> x;        // [N, d] eh_proj(cat): the layer's input
  std::vector<float> y;        // [N, d] the layer's output
  std::vector<float> normed;   // [N, d] shared_head.norm(y)
  std::vector<float> head_in;  // [rows wanting logits, d]
  std::vector<float> cos, sin;
  LayerActs layer;
  // Backward scratch.
  std::vector<float> neg_sin, dnormed, dhead_in, dy, dx, dcat, demb;
};

class Mtp {
 public:
  Mtp(const ModelConfig& c, const ParamStore& ps, const RopeParams& rope);
  CacheLayout cache_layout() const;
  // b: the tokens t_{i+1} with the MTP caches; hidden [N, d]; logits [b.logit_rows(), vocab].
  void forward(ComputeContext ctx, AttentionPath path, MoeDispatcher& dispatcher,
               const float* hidden, const Batch& b, MtpActs& a, float* logits) const;
  // The backward of a training forward() (Naive, cache-less) over the same hidden, b and a: from
  // dlogits [b.logit_rows(), vocab] writes dhidden [N, d] = dL/dhidden and accumulates the
  // module's gradients (the shared embedding and head into the main model's; the embedding's
  // only with embedding_grad, else its dL/d(rows) stays in a.demb for the caller).
  void backward(ComputeContext ctx, MoeDispatcher& dispatcher, const float* hidden, const Batch& b,
                MtpActs& a, const float* dlogits, LayerGrads& g, float* dhidden,
                bool embedding_grad = true) const;
  const DecoderLayer& layer() const { return layer_; }

 private:
  const ModelConfig& c_;
  const RopeParams& rope_;
  float eps_;
  Linear eh_proj_, head_;
  const Param& embed_;
  const Param& enorm_;
  const Param& hnorm_;
  const Param& head_norm_;
  DecoderLayer layer_;
};

}  // namespace dsv3

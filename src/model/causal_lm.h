// The decoder stack every architecture shares: embedding -> layers -> final norm -> LM head (SPEC
// §1.2), plus the MTP module for DeepSeek (SPEC §1.7). The arch_*.cc / deepseek_v3.cc files check
// their configs and choose the LayerOptions.
#pragma once
#include <memory>
#include <optional>
#include <vector>

#include "model/activations.h"
#include "model/param_store.h"
#include "model/yarn_rope.h"

namespace dsv3 {

class CausalLm : public Model {
 public:
  CausalLm(const ModelWeights& w, ComputeContext ctx, const LayerOptions& opt);
  const ModelConfig& config() const override { return params_.config(); }
  CacheLayout cache_layout() const override;
  ParamStore& params() override { return params_; }
  void forward(const Batch& b, ForwardActs& acts, float* logits, float* hidden) override;
  bool has_mtp() const override { return mtp_.has_value(); }
  CacheLayout mtp_cache_layout() const override;
  void forward_mtp(const Batch& b, const float* hidden, ForwardActs& acts, float* logits) override;
  void backward(const Batch& b, ForwardActs& acts, const float* dlogits,
                const float* dhidden) override;
  void forward_layers(const Batch& b, ForwardActs& acts, int64_t begin, int64_t end, float* logits,
                      float* hidden) override;
  void backward_layers(const Batch& b, ForwardActs& acts, int64_t begin, int64_t end,
                       const float* dlogits, const float* dhidden, const float* dout) override;
  void embedding_backward(const int32_t* ids, const float* dx, int64_t n) override;
  void backward_mtp(const Batch& b, const float* hidden, ForwardActs& acts, const float* dlogits,
                    float* dhidden) override;
  void set_attention_path(AttentionPath p) override { path_ = p; }
  void set_dispatcher(MoeDispatcher* d) override { dispatcher_ = d ? d : &local_; }

 private:
  // Throws unless every sequence's cache matches `want` and the batch's positions and ids fit.
  void check_batch(const Batch& b, const CacheLayout& want) const;
  // Throws unless a backward pass can run on b (training enabled, Naive path, no caches).
  void check_backward(const Batch& b) const;
  // The context and dispatcher of a call on `a`: the model's, with a's pool and dispatcher where
  // it names them (ForwardActs::pool) and, for a backward, a's weight-gradient queue.
  ComputeContext context(const ForwardActs& a, bool backward) const;
  MoeDispatcher& dispatcher(const ForwardActs& a) const;

  ParamStore params_;
  const ModelConfig& c_;
  ComputeContext ctx_;
  AttentionPath path_ = AttentionPath::Absorbed;
  RopeParams rope_;
  Linear head_;
  const Param& embed_;
  const Param& final_norm_;
  std::vector<DecoderLayer> layers_;
  std::optional<Mtp> mtp_;
  LocalDispatcher local_;
  MoeDispatcher* dispatcher_ = &local_;
};

}  // namespace dsv3

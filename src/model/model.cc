// make_model and the model layer's weight helpers.
#include "model/model.h"

#include <algorithm>

#include "base/error.h"
#include "model/activations.h"
#include "model/batch.h"

namespace dsv3 {

namespace {
constexpr int64_t kChunk = 256;  // tokens per pass of the one-sequence calls
}  // namespace

std::unique_ptr<Model> make_deepseek_model(const ModelWeights& w, ComputeContext ctx);
std::unique_ptr<Model> make_qwen2_model(const ModelWeights& w, ComputeContext ctx);
std::unique_ptr<Model> make_llama_model(const ModelWeights& w, ComputeContext ctx);

std::unique_ptr<Model> make_model(const ModelWeights& weights, ComputeContext ctx) {
  switch (weights.config().arch) {
    case Arch::DeepseekV3:
    case Arch::DeepseekV2:
      return make_deepseek_model(weights, ctx);
    case Arch::Qwen2:
      return make_qwen2_model(weights, ctx);
    case Arch::Llama:
      return make_llama_model(weights, ctx);
  }
  throw Error("model: unknown architecture");
}

Model::~Model() = default;

void Model::forward_mtp(const Batch&, const float*, ForwardActs&, float*) {
  throw Error("model: " + config().model_type + " has no MTP module",
              "MTP needs a DeepSeek model with num_nextn_predict_layers > 0");
}

void Model::backward(const Batch&, ForwardActs&, const float*, const float*) {
  throw Error("model: training is not supported for " + config().model_type,
              "train a DeepSeek (MLA) model");
}

void Model::forward_layers(const Batch&, ForwardActs&, int64_t, int64_t, float*, float*) {
  throw Error("model: pipeline stages are not supported for " + config().model_type,
              "train a DeepSeek (MLA) model");
}

void Model::backward_layers(const Batch&, ForwardActs&, int64_t, int64_t, const float*,
                            const float*, const float*) {
  throw Error("model: training is not supported for " + config().model_type,
              "train a DeepSeek (MLA) model");
}

void Model::embedding_backward(const int32_t*, const float*, int64_t) {
  throw Error("model: training is not supported for " + config().model_type,
              "train a DeepSeek (MLA) model");
}

void Model::backward_mtp(const Batch&, const float*, ForwardActs&, const float*, float*) {
  throw Error("model: " + config().model_type + " has no MTP module to train",
              "MTP needs a DeepSeek model with num_nextn_predict_layers > 0");
}

void Model::forward(const int32_t* ids, int64_t T, AttentionCache& cache, float* logits,
                    float* hidden, LogitsRows rows) {
  if (!own_acts_) own_acts_ = std::make_unique<ForwardActs>();
  const int64_t V = config().vocab_size, d = config().hidden_size;
  check_tokens(config(), ids, T, cache.length());  // all chunks or none
  Batch b;
  for (int64_t t0 = 0; t0 < T; t0 += kChunk) {
    const int64_t n = std::min(kChunk, T - t0);
    // Last: only the final chunk's last row; None when there is nowhere to put logits.
    LogitsRows which = logits ? rows : LogitsRows::None;
    if (which == LogitsRows::Last && t0 + n < T) which = LogitsRows::None;
    b.clear();
    b.add(&cache, {ids + t0, static_cast<size_t>(n)}, which);
    float* out = nullptr;
    if (which != LogitsRows::None) out = rows == LogitsRows::Last ? logits : logits + t0 * V;
    forward(b, *own_acts_, out, hidden ? hidden + t0 * d : nullptr);
  }
}

void Model::forward_mtp(const float* hidden, const int32_t* next_ids, int64_t T,
                        AttentionCache& mtp_cache, float* logits) {
  if (!own_acts_) own_acts_ = std::make_unique<ForwardActs>();
  const int64_t V = config().vocab_size, d = config().hidden_size;
  check_tokens(config(), next_ids, T, mtp_cache.length());
  Batch b;
  for (int64_t t0 = 0; t0 < T; t0 += kChunk) {
    const int64_t n = std::min(kChunk, T - t0);
    b.clear();
    b.add(&mtp_cache, {next_ids + t0, static_cast<size_t>(n)}, LogitsRows::All);
    forward_mtp(b, hidden + t0 * d, *own_acts_, logits + t0 * V);
  }
}

void check_tokens(const ModelConfig& c, const int32_t* ids, int64_t T, int64_t pos0) {
  for (int64_t t = 0; t < T; ++t)
    DSV3_CHECK(ids[t] >= 0 && ids[t] < c.vocab_size,
               "model: token id " + std::to_string(ids[t]) + " at index " + std::to_string(t) +
                   " is outside the vocabulary [0, " + std::to_string(c.vocab_size) + ")");
  DSV3_CHECK(c.max_position_embeddings <= 0 || pos0 + T <= c.max_position_embeddings,
             "model: positions up to " + std::to_string(pos0 + T) +
                 " exceed max_position_embeddings " + std::to_string(c.max_position_embeddings),
             "shorten the prompt or the generation");
}

}  // namespace dsv3

// make_model and the model layer's weight helpers.
#include "model/model.h"

#include "base/error.h"

namespace dsv3 {

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

void Model::forward_mtp(const float*, const int32_t*, int64_t, AttentionCache&, float*) {
  throw Error("model: " + config().model_type + " has no MTP module",
              "MTP needs a DeepSeek model with num_nextn_predict_layers > 0");
}

WeightRef weight_ref(const ModelWeights& w, const std::string& name, int64_t rows, int64_t cols) {
  const WeightView& v = w.get(name);
  DSV3_CHECK(v.shape.size() == 2 && v.shape[0] == rows && v.shape[1] == cols,
             "model: tensor " + name + " has shape " + shape_str(v.shape) + ", expected " +
                 shape_str({rows, cols}),
             "the checkpoint does not match config.json");
  WeightRef r;
  r.dtype = v.dtype;
  r.data = v.data;
  r.rows = rows;
  r.cols = cols;
  r.scale_inv = v.scale_inv;
  r.block_rows = v.block_rows;
  r.block_cols = v.block_cols;
  return r;
}

std::vector<float> weight_f32(const ModelWeights& w, const std::string& name, int64_t n) {
  const WeightView& v = w.get(name);
  DSV3_CHECK(v.shape.size() == 1 && v.shape[0] == n,
             "model: tensor " + name + " has shape " + shape_str(v.shape) + ", expected [" +
                 std::to_string(n) + "]",
             "the checkpoint does not match config.json");
  WeightRef r;
  r.dtype = v.dtype;
  r.data = v.data;
  r.rows = 1;
  r.cols = n;
  r.scale_inv = v.scale_inv;
  std::vector<float> out(n);
  weight_block_f32(r, 0, 1, 0, n, out.data());
  return out;
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

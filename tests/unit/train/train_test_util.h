// Helpers of the training module's tests: the golden cases of tests/ref/optimizer_ref.py and a tiny
// model's parameter store with training enabled.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/file.h"
#include "base/json.h"
#include "base/rng.h"
#include "model/param_store.h"
#include "model/presets.h"
#include "model/weights.h"

namespace dsv3::test {

inline const Json& train_golden() {
  static const Json j =
      Json::parse(read_file(std::string(DSV3_SOURCE_DIR) + "/tests/ref/golden/train_cases.json"));
  return j;
}

inline std::vector<double> doubles(const Json& a) {
  std::vector<double> out;
  for (const Json& x : a.as_array()) out.push_back(x.as_double());
  return out;
}

inline std::vector<float> floats(const Json& a) {
  std::vector<float> out;
  for (const Json& x : a.as_array()) out.push_back(static_cast<float>(x.as_double()));
  return out;
}

// The tiny preset (every feature: MTP aliases, the gate's correction bias) with a small vocabulary.
inline ModelConfig tiny_config(int64_t vocab = 512) {
  ModelConfig c = preset_config("tiny");
  c.vocab_size = vocab;
  return c;
}

// Weights and a store over them, training enabled; the store views the weights, so both live here.
struct TinyModel {
  explicit TinyModel(int64_t vocab = 512, uint64_t seed = 5)
      : weights(ModelWeights::random(tiny_config(vocab), seed, DType::F32)),
        store(std::make_unique<ParamStore>(weights)) {
    store->enable_training();
  }
  ModelWeights weights;
  std::unique_ptr<ParamStore> store;
};

// Fills every gradient with N(0, sigma) values (aliases share their main tensor's gradient).
inline void random_grads(ParamStore& ps, uint64_t seed, float sigma = 1.0f) {
  Rng rng(seed);
  for (float& g : ps.grads()) g = static_cast<float>(rng.normal()) * sigma;
}

}  // namespace dsv3::test

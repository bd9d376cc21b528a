// ModelWeights: random init (SPEC §1.2), HF folders written and loaded back, sharded folders, FP8
// checkpoints (SPEC §3.2) and the bad inputs of RELIABILITY §1 that concern the model layer.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <string>

#include "base/error.h"
#include "base/file.h"
#include "base/thread_pool.h"
#include "model/presets.h"
#include "model/random_init.h"
#include "model/weights.h"
#include "tensor/block_scale.h"
#include "tensor/half.h"
#include "tensor/safetensors_folder.h"

namespace dsv3 {
namespace {

namespace fs = std::filesystem;

std::string temp_dir(const std::string& name) {
  std::string d = std::string(DSV3_BINARY_DIR) + "/test_weights_tmp/" + name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::vector<float> as_f32(const WeightView& v) {
  std::vector<float> out(static_cast<size_t>(v.numel()));
  if (v.dtype == DType::F32)
    std::memcpy(out.data(), v.data, out.size() * 4);
  else if (v.dtype == DType::BF16)
    for (size_t i = 0; i < out.size(); ++i)
      out[i] = bf16_to_f32(static_cast<const uint16_t*>(v.data)[i]);
  else
    ADD_FAILURE() << "unexpected dtype for " << v.name;
  return out;
}

// The tiny preset (every feature on) with a smaller vocabulary and FFNs, so that these tests stay
// fast under the sanitizers.
ModelConfig micro() {
  ModelConfig c = preset_config("tiny");
  c.vocab_size = 512;
  c.intermediate_size = 128;
  c.moe_intermediate_size = 32;
  return c;
}

// The message of the Error that fn throws ("" when it does not throw).
std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(RandomInit, DeterministicPerSeedAndTensorName) {
  ModelConfig c = micro();
  ModelWeights a = ModelWeights::random(c, 7, DType::F32);
  ModelWeights b = ModelWeights::random(c, 7, DType::F32);
  ModelWeights other = ModelWeights::random(c, 8, DType::F32);
  const char* name = "model.layers.1.self_attn.q_b_proj.weight";
  EXPECT_EQ(as_f32(a.get(name)), as_f32(b.get(name)));
  EXPECT_NE(as_f32(a.get(name)), as_f32(other.get(name)));

  // A tensor's values do not depend on the other tensors or on the thread count: one more layer
  // and a single thread give the same layer-1 values.
  ModelConfig deeper = c;
  deeper.num_hidden_layers = 5;
  ModelWeights d = ModelWeights::random(deeper, 7, DType::F32);
  EXPECT_EQ(as_f32(a.get(name)), as_f32(d.get(name)));
  ThreadPool one(1);
  for (const ParamSpec& p : param_table(c)) {
    if (p.name != name) continue;
    std::vector<float> v(static_cast<size_t>(shape_numel(p.shape)));
    random_param_f32(p, 7, v.data(), one);
    EXPECT_EQ(v, as_f32(a.get(name)));
  }
  // Two different tensors of the same shape get different values.
  EXPECT_NE(as_f32(a.get("model.layers.1.mlp.experts.0.up_proj.weight")),
            as_f32(a.get("model.layers.1.mlp.experts.1.up_proj.weight")));
}

TEST(RandomInit, InitKindsAndStatistics) {
  ModelConfig c = micro();
  ModelWeights w = ModelWeights::random(c, 1, DType::BF16);
  for (float x : as_f32(w.get("model.norm.weight"))) ASSERT_EQ(x, 1.0f);
  for (float x : as_f32(w.get("model.layers.2.self_attn.kv_a_layernorm.weight")))
    ASSERT_EQ(x, 1.0f);
  const WeightView& bias = w.get("model.layers.2.mlp.gate.e_score_correction_bias");
  EXPECT_EQ(bias.dtype, DType::F32);  // keep_f32 whatever the model dtype
  for (float x : as_f32(bias)) ASSERT_EQ(x, 0.0f);
  EXPECT_EQ(w.get("model.embed_tokens.weight").dtype, DType::BF16);

  // N(0, 0.006): over n = 131072 samples the sample std has relative standard error 1/sqrt(2n) =
  // 0.2% and the mean 0.006/sqrt(n) = 1.7e-5; 2% and 1e-4 are > 5 standard errors (bf16 rounding
  // is unbiased and adds 2^-9 relative noise at most).
  std::vector<float> e = as_f32(w.get("model.embed_tokens.weight"));
  double s = 0, s2 = 0;
  for (float x : e) s += x, s2 += double(x) * x;
  double mean = s / e.size(), sd = std::sqrt(s2 / e.size() - mean * mean);
  EXPECT_NEAR(mean, 0.0, 1e-4);
  EXPECT_NEAR(sd, 0.006, 0.006 * 0.02);

  // BF16 storage is the round-to-nearest-even of the F32 values.
  ModelWeights f = ModelWeights::random(c, 1, DType::F32);
  std::vector<float> ref = as_f32(f.get("model.layers.0.mlp.down_proj.weight"));
  std::vector<float> got = as_f32(w.get("model.layers.0.mlp.down_proj.weight"));
  for (size_t i = 0; i < ref.size(); ++i) ASSERT_EQ(got[i], bf16_to_f32(f32_to_bf16(ref[i]))) << i;

  // MTP copies equal what they copy (SPEC §6).
  EXPECT_EQ(as_f32(w.get("model.layers.4.embed_tokens.weight")), e);
  EXPECT_EQ(as_f32(w.get("model.layers.4.shared_head.head.weight")),
            as_f32(w.get("lm_head.weight")));
}

TEST(ModelFolder, WriteThenLoadGivesTheRandomWeights) {
  ModelConfig c = micro();
  for (DType dt : {DType::F32, DType::BF16}) {
    std::string dir = temp_dir(std::string("roundtrip_") + std::string(dtype_name(dt)));
    write_random_model(c, dir, 3, dt);
    EXPECT_TRUE(file_exists(dir + "/config.json"));
    EXPECT_TRUE(file_exists(dir + "/generation_config.json"));
    EXPECT_TRUE(file_exists(dir + "/model.safetensors"));  // 2 GB shards: tiny fits in one
    ModelWeights loaded = ModelWeights::load(dir);
    ModelWeights mem = ModelWeights::random(c, 3, dt);
    ASSERT_EQ(loaded.all().size(), mem.all().size());
    for (const WeightView& v : mem.all()) {
      const WeightView& l = loaded.get(v.name);
      ASSERT_EQ(l.dtype, v.dtype) << v.name;
      ASSERT_EQ(l.shape, v.shape) << v.name;
      ASSERT_EQ(std::memcmp(l.data, v.data, v.numel() * dtype_size(v.dtype)), 0) << v.name;
    }
    EXPECT_EQ(loaded.config().hidden_size, c.hidden_size);
    EXPECT_EQ(random_model_bytes(c, dt), TensorStore::open(dir).total_bytes());
  }
}

// SPEC §3.2: E4M3 weights with F32 scale_inv of [ceil(r/128), ceil(c/128)]; dequantised they are
// the random F32 weights within E4M3's precision (3 mantissa bits: relative step 2^-3, so half a
// step, 1/16 of the value, plus 2^-9 * scale for subnormals).
TEST(ModelFolder, Fp8FolderLoadsWithScales) {
  ModelConfig c = micro();
  std::string dir = temp_dir("fp8");
  write_random_model(c, dir, 5, DType::F8_E4M3);
  ModelWeights w = ModelWeights::load(dir);
  EXPECT_TRUE(w.config().fp8_weights);
  const WeightView& kv = w.get("model.layers.1.self_attn.kv_a_proj_with_mqa.weight");  // [80, 256]
  EXPECT_EQ(kv.dtype, DType::F8_E4M3);
  ASSERT_NE(kv.scale_inv, nullptr);
  EXPECT_EQ(w.get("model.embed_tokens.weight").dtype, DType::BF16);
  EXPECT_EQ(w.get("model.layers.4.eh_proj.weight").dtype, DType::BF16);
  EXPECT_EQ(w.get("model.layers.1.mlp.gate.e_score_correction_bias").dtype, DType::F32);
  TensorStore store = TensorStore::open(dir);
  auto s = store.find("model.layers.1.self_attn.kv_a_proj_with_mqa.weight_scale_inv");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->info->shape, (Shape{1, 2}));

  ThreadPool pool(1);
  for (const ParamSpec& p : param_table(c)) {
    if (p.name != kv.name) continue;
    std::vector<float> ref(static_cast<size_t>(shape_numel(p.shape)));
    random_param_f32(p, 5, ref.data(), pool);
    std::vector<float> deq(ref.size());
    dequant_e4m3_128x128(static_cast<const uint8_t*>(kv.data), kv.scale_inv, kv.rows(), kv.cols(),
                         deq.data());
    for (size_t i = 0; i < ref.size(); ++i) {
      float blk_scale = kv.scale_inv[(i % kv.cols()) / 128];
      ASSERT_NEAR(deq[i], ref[i], std::fabs(ref[i]) / 16 + blk_scale * 0x1p-9f) << i;
    }
  }
}

// A folder of the tiny model's tensors written by `edit`, for the bad-input tests below.
std::string folder_with(const std::string& name, const ModelWeights& w,
                        const std::function<bool(ShardedWriter&, const WeightView&)>& edit,
                        uint64_t max_shard = 2ull << 30) {
  std::string dir = temp_dir(name);
  write_file_atomic(dir + "/config.json", config_to_json(w.config()).dump(2));
  ShardedWriter writer(max_shard);
  for (const WeightView& v : w.all()) {
    if (edit(writer, v)) continue;
    writer.add_bytes(v.name, v.dtype, v.shape,
                     {static_cast<const std::byte*>(v.data),
                      static_cast<size_t>(v.numel()) * dtype_size(v.dtype)});
  }
  writer.write(dir);
  return dir;
}

TEST(ModelFolder, ShardedFolderLoads) {
  ModelWeights w = ModelWeights::random(micro(), 2, DType::F32);
  std::string dir = folder_with(
      "sharded", w, [](ShardedWriter&, const WeightView&) { return false; }, 1u << 20);
  EXPECT_TRUE(file_exists(dir + "/model.safetensors.index.json"));
  EXPECT_FALSE(file_exists(dir + "/model.safetensors"));
  ModelWeights l = ModelWeights::load(dir);
  const WeightView& a = l.get("model.layers.3.mlp.experts.9.down_proj.weight");
  const WeightView& b = w.get("model.layers.3.mlp.experts.9.down_proj.weight");
  EXPECT_EQ(std::memcmp(a.data, b.data, a.numel() * 4), 0);
}

// F16 folders (F16 is one of the dtypes a folder may hold): every tensor stored as IEEE half
// loads as F16 with the bytes as written.
TEST(ModelFolder, F16FolderLoadsAsStored) {
  ModelWeights w = ModelWeights::random(micro(), 2, DType::F32);
  std::map<std::string, std::vector<uint16_t>> halves;  // alive until the folder is written
  std::string dir = folder_with("f16", w, [&](ShardedWriter& writer, const WeightView& v) {
    std::vector<uint16_t>& h = halves[v.name];
    h.resize(static_cast<size_t>(v.numel()));
    f32_to_f16(static_cast<const float*>(v.data), h.data(), v.numel());
    writer.add_bytes(v.name, DType::F16, v.shape,
                     {reinterpret_cast<const std::byte*>(h.data()), h.size() * 2});
    return true;
  });
  ModelWeights l = ModelWeights::load(dir);
  ASSERT_EQ(l.all().size(), w.all().size());
  for (const WeightView& v : l.all()) {
    ASSERT_EQ(v.dtype, DType::F16) << v.name;
    ASSERT_EQ(v.shape, w.get(v.name).shape) << v.name;
    ASSERT_EQ(std::memcmp(v.data, halves.at(v.name).data(), v.numel() * 2), 0) << v.name;
  }
}

TEST(ModelFolder, BadFoldersNameTheFileAndTensor) {
  ModelWeights w = ModelWeights::random(micro(), 2, DType::F32);
  const std::string victim = "model.layers.2.self_attn.kv_b_proj.weight";

  std::string dir = folder_with(
      "missing", w, [&](ShardedWriter&, const WeightView& v) { return v.name == victim; });
  std::string msg = error_of([&] { ModelWeights::load(dir); });
  EXPECT_NE(msg.find(victim), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing"), std::string::npos) << msg;
  EXPECT_NE(msg.find(dir), std::string::npos) << msg;

  dir = folder_with("wrong_shape", w, [&](ShardedWriter& wr, const WeightView& v) {
    if (v.name != victim) return false;
    wr.add_bytes(v.name, v.dtype, {v.shape[1], v.shape[0]},
                 {static_cast<const std::byte*>(v.data), static_cast<size_t>(v.numel()) * 4});
    return true;
  });
  msg = error_of([&] { ModelWeights::load(dir); });
  EXPECT_NE(msg.find(victim), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[64, 256]"), std::string::npos) << msg;  // found [64,256], needs [256,64]

  dir = folder_with("int_dtype", w, [&](ShardedWriter& wr, const WeightView& v) {
    if (v.name != victim) return false;
    wr.add_bytes(v.name, DType::I32, v.shape,
                 {static_cast<const std::byte*>(v.data), static_cast<size_t>(v.numel()) * 4});
    return true;
  });
  msg = error_of([&] { ModelWeights::load(dir); });
  EXPECT_NE(msg.find(victim), std::string::npos) << msg;
  EXPECT_NE(msg.find("I32"), std::string::npos) << msg;

  // An extra, unknown tensor is ignored.
  dir = folder_with("extra", w, [&](ShardedWriter& wr, const WeightView& v) {
    if (v.name == "lm_head.weight") {
      static const float one = 1;
      wr.add_bytes("model.rotary_emb.inv_freq", DType::F32, {1},
                   {reinterpret_cast<const std::byte*>(&one), 4});
    }
    return false;
  });
  EXPECT_EQ(error_of([&] { ModelWeights::load(dir); }), "");
}

TEST(ModelFolder, Fp8ScalesAreChecked) {
  ModelConfig c = micro();
  std::string good = temp_dir("fp8_source");
  write_random_model(c, good, 4, DType::F8_E4M3);
  TensorStore store = TensorStore::open(good);
  const std::string victim =
      "model.layers.1.self_attn.o_proj.weight";  // [256, 128] -> scale [2, 1]
  const std::string scale = victim + "_scale_inv";

  // Rewrites the good folder with `edit` applied to the scale tensor (nullptr drops it).
  auto variant = [&](const std::string& name, const std::function<void(ShardedWriter&)>& edit) {
    std::string dir = temp_dir(name);
    fs::copy_file(good + "/config.json", dir + "/config.json");
    ShardedWriter writer;
    for (const std::string& n : store.names()) {
      if (n == scale) {
        if (edit) edit(writer);
        continue;
      }
      auto r = store.find(n);
      writer.add_bytes(n, r->info->dtype, r->info->shape, r->data);
    }
    writer.write(dir);
    return dir;
  };
  auto expect_error = [&](const std::string& dir, const std::vector<std::string>& parts) {
    std::string msg = error_of([&] { ModelWeights::load(dir); });
    ASSERT_FALSE(msg.empty()) << dir << " loaded";
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << msg;
  };

  expect_error(variant("fp8_no_scale", nullptr), {victim, "scale_inv"});
  static const float bad_values[][2] = {
      {1.0f, NAN}, {1.0f, 0.0f}, {-1.0f, 1.0f}, {1e-40f, 1.0f}, {INFINITY, 1.0f}};
  for (const auto& vals : bad_values) {
    expect_error(
        variant(
            "fp8_bad_value",
            [&](ShardedWriter& w) {
              w.add_bytes(scale, DType::F32, {2, 1}, {reinterpret_cast<const std::byte*>(vals), 8});
            }),
        {scale, "scale element"});
  }
  static const float three[3] = {1, 1, 1};
  expect_error(
      variant(
          "fp8_scale_shape",
          [&](ShardedWriter& w) {
            w.add_bytes(scale, DType::F32, {3, 1}, {reinterpret_cast<const std::byte*>(three), 12});
          }),
      {scale, "[3, 1]", "[2, 1]"});
  static const uint16_t half[2] = {0x3f80, 0x3f80};
  expect_error(
      variant(
          "fp8_scale_dtype",
          [&](ShardedWriter& w) {
            w.add_bytes(scale, DType::BF16, {2, 1}, {reinterpret_cast<const std::byte*>(half), 4});
          }),
      {scale, "F32"});
}

TEST(ModelWeights, GetUnknownNameThrows) {
  ModelWeights w = ModelWeights::random(micro(), 0, DType::F32);
  EXPECT_TRUE(w.has("lm_head.weight"));
  EXPECT_FALSE(w.has("lm_head.bias"));
  EXPECT_NE(error_of([&] { w.get("lm_head.bias"); }).find("lm_head.bias"), std::string::npos);
  EXPECT_NE(error_of([&] { ModelWeights::random(w.config(), 0, DType::I32); }), "");
}

}  // namespace
}  // namespace dsv3

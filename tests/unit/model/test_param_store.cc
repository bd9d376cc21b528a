// ParamStore: views of the loaded weights in param_table order, MTP copies as aliases, the FP32
// master and gradient arenas of enable_training(), and save / save_as_stored written to a folder
// and loaded back (what `dsv3 convert` does).
#include "model/param_store.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/file.h"
#include "model/presets.h"
#include "model/weights.h"
#include "tensor/block_scale.h"
#include "tensor/fp8.h"
#include "tensor/half.h"
#include "tensor/safetensors_folder.h"
#include "unit/tensor/temp_dir.h"

namespace dsv3 {
namespace {

// The tiny preset (every feature, one MTP layer, FP8 edge tiles: 96 and 80 rows) with a vocabulary
// of 512, so that a folder is a few MB.
ModelConfig tiny() {
  ModelConfig c = preset_config("tiny");
  c.vocab_size = 512;
  return c;
}

std::string folder(const test::TempDir& tmp, const std::string& name, DType dtype,
                   uint64_t seed = 11) {
  std::string dir = tmp.file(name);
  write_random_model(tiny(), dir, seed, dtype);
  return dir;
}

size_t nbytes(const WeightView& v) {
  return static_cast<size_t>(v.numel()) * dtype_size(v.dtype);
}

size_t scale_count(const WeightView& v) {
  return static_cast<size_t>(shape_numel(scale_shape_128x128(v.rows(), v.cols())));
}

// Every tensor of `a` and `b` has the same dtype, shape and bytes (FP8: and the same scales).
void expect_same_tensors(const ModelWeights& a, const ModelWeights& b) {
  ASSERT_EQ(a.all().size(), b.all().size());
  for (const WeightView& x : a.all()) {
    const WeightView& y = b.get(x.name);
    ASSERT_EQ(x.dtype, y.dtype) << x.name;
    ASSERT_EQ(x.shape, y.shape) << x.name;
    ASSERT_EQ(std::memcmp(x.data, y.data, nbytes(x)), 0) << x.name;
    ASSERT_EQ(x.scale_inv == nullptr, y.scale_inv == nullptr) << x.name;
    if (x.scale_inv) {
      ASSERT_EQ(std::memcmp(x.scale_inv, y.scale_inv, scale_count(x) * sizeof(float)), 0)
          << x.name << "_scale_inv";
    }
  }
}

// A tensor as FP32, decoded here element by element (not through the kernels' weight_block_f32
// that the store uses): FP8 code times its 128x128 block's scale_inv (SPEC §3.2).
// Every file of folder a has the same bytes in folder b, and b has no other file.
void expect_same_files(const std::string& a, const std::string& b) {
  namespace fs = std::filesystem;
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(a)) {
    const std::string name = e.path().filename().string();
    EXPECT_EQ(read_file(e.path().string()), read_file(path_join(b, name))) << name;
    ++n;
  }
  EXPECT_EQ(n, static_cast<size_t>(std::distance(fs::directory_iterator(b), {})));
}

// Elements of every tensor a save writes (the MTP copies included).
int64_t total_numel(const ParamStore& ps) {
  int64_t n = 0;
  for (const Param& p : ps.all()) n += p.numel;
  return n;
}

std::vector<float> dequant(const WeightView& v) {
  std::vector<float> out(static_cast<size_t>(v.numel()));
  const auto* raw = static_cast<const unsigned char*>(v.data);
  const int64_t block_cols = (v.cols() + 127) / 128;
  for (int64_t i = 0; i < v.numel(); ++i) {
    uint16_t h;
    switch (v.dtype) {
      case DType::F32:
        std::memcpy(&out[i], raw + 4 * i, 4);
        break;
      case DType::BF16:
        std::memcpy(&h, raw + 2 * i, 2);
        out[i] = bf16_to_f32(h);
        break;
      case DType::F8_E4M3: {
        int64_t r = i / v.cols(), c = i % v.cols();
        out[i] = e4m3_to_f32(raw[i]) * v.scale_inv[(r / 128) * block_cols + c / 128];
        break;
      }
      default:
        ADD_FAILURE() << v.name << ": unexpected dtype " << dtype_name(v.dtype);
    }
  }
  return out;
}

// fn must throw Error with every one of `parts` in its message.
void expect_error(const std::function<void()>& fn, std::initializer_list<std::string> parts) {
  std::string what = "(no error)";
  try {
    fn();
  } catch (const Error& e) {
    what = e.what();
  }
  for (const std::string& part : parts)
    EXPECT_NE(what.find(part), std::string::npos) << "'" << part << "' not in: " << what;
}

// load -> ParamStore -> save_as_stored -> load gives every tensor back bit for bit, FP8 scales
// included, with the MTP copies written as tensors of their own; config.json says the same.
TEST(ParamStore, SaveAsStoredReloadsBitIdentical) {
  test::TempDir tmp;
  for (DType dt : {DType::F32, DType::BF16, DType::F8_E4M3}) {
    SCOPED_TRACE(std::string(dtype_name(dt)));
    std::string in = folder(tmp, std::string("in_") + std::string(dtype_name(dt)), dt);
    std::string out = tmp.file(std::string("out_") + std::string(dtype_name(dt)));
    ModelWeights w = ModelWeights::load(in);
    ParamStore store(w);
    store.save_as_stored(out);
    ModelWeights back = ModelWeights::load(out);
    expect_same_tensors(w, back);
    EXPECT_EQ(config_to_json(back.config()).dump(), config_to_json(w.config()).dump());
    TensorStore files = TensorStore::open(out);
    for (const ParamSpec& s : param_table(tiny())) EXPECT_TRUE(files.find(s.name)) << s.name;
    // Written in table order like write_random_model, so the file itself is byte for byte the same.
    EXPECT_EQ(read_file(path_join(out, "model.safetensors")),
              read_file(path_join(in, "model.safetensors")));
  }
}

// save(dir, dtype) from an F32 load rounds as write_random_model does for the same seed: BF16 to
// nearest even, FP8 quantised in 128x128 blocks with the same scales.
TEST(ParamStore, SaveInAnotherDtypeEqualsTheRandomFolderOfThatDtype) {
  test::TempDir tmp;
  ModelWeights f32 = ModelWeights::load(folder(tmp, "f32", DType::F32, 3));
  ParamStore store(f32);
  for (DType dt : {DType::BF16, DType::F8_E4M3}) {
    SCOPED_TRACE(std::string(dtype_name(dt)));
    std::string out = tmp.file(std::string("saved_") + std::string(dtype_name(dt)));
    store.save(out, dt);
    ModelWeights want = ModelWeights::load(folder(tmp, std::string(dtype_name(dt)), dt, 3));
    ModelWeights got = ModelWeights::load(out);
    expect_same_tensors(want, got);
    EXPECT_EQ(got.config().fp8_weights, dt == DType::F8_E4M3);
    EXPECT_EQ(got.config().torch_dtype, "bfloat16");
  }
  EXPECT_THROW(store.save(tmp.file("i8"), DType::I8), Error);
}

// SPEC §6: the MTP module's embed_tokens and shared_head.head are the main tensors, not copies:
// same value, same arena offset, and once training the same FP32 values and gradient.
TEST(ParamStore, MtpCopiesAreAliases) {
  test::TempDir tmp;
  ModelWeights w = ModelWeights::load(folder(tmp, "bf16", DType::BF16));
  ParamStore store(w);
  int copies = 0;
  auto check = [&](bool training) {
    for (const Param& p : store.all()) {
      if (p.spec->copy_of.empty()) {
        EXPECT_FALSE(p.alias) << p.name();
        continue;
      }
      const Param& main = store.get(p.spec->copy_of);
      copies += !training;
      EXPECT_TRUE(p.alias) << p.name();
      EXPECT_FALSE(main.alias) << main.name();
      EXPECT_EQ(p.spec->name, p.name());  // its own spec, not the main tensor's
      EXPECT_EQ(p.value.data, main.value.data) << p.name();
      EXPECT_EQ(p.value.dtype, main.value.dtype) << p.name();
      EXPECT_EQ(p.offset, main.offset) << p.name();
      EXPECT_EQ(p.numel, main.numel) << p.name();
      EXPECT_EQ(p.f32, main.f32) << p.name();
      EXPECT_EQ(p.grad, main.grad) << p.name();
      if (training) {
        EXPECT_NE(p.grad, nullptr) << p.name();
      }
    }
  };
  check(false);
  EXPECT_EQ(copies, 2);  // tiny has one MTP layer: its embedding and its head
  store.enable_training();
  check(true);
}

// enable_training: the master arena holds every weight dequantised, laid out in table order with
// no gap and no overlap; every parameter but the router's correction bias gets its gradient slice.
TEST(ParamStore, EnableTrainingMasterAndGradients) {
  test::TempDir tmp;
  ModelWeights w = ModelWeights::load(folder(tmp, "fp8", DType::F8_E4M3));
  ParamStore store(w);
  int64_t unique = 0;
  for (const ParamSpec& s : param_table(tiny()))
    if (s.copy_of.empty()) unique += shape_numel(s.shape);
  ParamCounts counts = count_params(tiny());
  EXPECT_EQ(store.arena_numel(), unique);
  EXPECT_EQ(static_cast<uint64_t>(unique), counts.main_total + counts.mtp_unique);

  // Inference: vectors have FP32 copies, matrices are read where they lie.
  for (const Param& p : store.all()) {
    if (p.alias) continue;
    if (p.spec->shape.size() == 1) {
      ASSERT_NE(p.f32, nullptr) << p.name();
      EXPECT_EQ(std::memcmp(p.f32, dequant(w.get(p.name())).data(), p.numel * 4), 0) << p.name();
    } else {
      EXPECT_EQ(p.f32, nullptr) << p.name();
      EXPECT_EQ(p.value.data, w.get(p.name()).data) << p.name();
    }
    EXPECT_EQ(p.grad, nullptr) << p.name();
  }

  store.enable_training();
  ASSERT_TRUE(store.training());
  ASSERT_EQ(static_cast<int64_t>(store.master().size()), unique);
  ASSERT_EQ(static_cast<int64_t>(store.grads().size()), unique);
  int64_t next = 0, no_grad = 0;
  for (const Param& p : store.all()) {
    if (p.alias) continue;
    EXPECT_EQ(p.offset, next) << p.name();  // table order, each right after the previous
    next = p.offset + p.numel;
    EXPECT_EQ(p.value.dtype, DType::F32) << p.name();
    EXPECT_EQ(p.value.data, store.master().data() + p.offset) << p.name();
    EXPECT_EQ(p.value.scale_inv, nullptr) << p.name();
    EXPECT_EQ(p.f32, store.master().data() + p.offset) << p.name();
    EXPECT_EQ(std::memcmp(p.f32, dequant(w.get(p.name())).data(), p.numel * 4), 0) << p.name();
    if (p.name().ends_with("e_score_correction_bias")) {
      EXPECT_EQ(p.grad, nullptr) << p.name();
      ++no_grad;
    } else {
      EXPECT_EQ(p.grad, store.grads().data() + p.offset) << p.name();
    }
  }
  EXPECT_EQ(next, store.arena_numel());
  EXPECT_EQ(no_grad, tiny().num_hidden_layers + tiny().num_nextn_predict_layers -
                         tiny().first_k_dense_replace);
  for (float g : store.grads()) ASSERT_EQ(g, 0.0f);

  // Idempotent: a second call keeps the arenas and the values in them.
  const float* master = store.master().data();
  store.get("model.norm.weight").f32[0] = 5.0f;
  store.enable_training();
  EXPECT_EQ(store.master().data(), master);
  EXPECT_EQ(store.get("model.norm.weight").f32[0], 5.0f);
  store.grads()[7] = 1.0f;
  store.zero_grads();
  EXPECT_EQ(store.grads()[7], 0.0f);
}

TEST(ParamStore, ShapeMismatchAndUnknownNamesNameTheTensor) {
  ModelWeights w = ModelWeights::random(tiny(), 1, DType::BF16);
  ParamStore store(w);
  const std::string q = "model.layers.1.self_attn.q_a_proj.weight";  // [96, 256]
  EXPECT_EQ(&store.matrix(q, 96, 256), &store.get(q));
  EXPECT_EQ(&store.vector("model.norm.weight", 256), &store.get("model.norm.weight"));
  EXPECT_TRUE(store.has(q));
  EXPECT_FALSE(store.has("model.layers.9.self_attn.q_a_proj.weight"));

  expect_error([&] { store.matrix(q, 256, 96); }, {q, "[96, 256]", "[256, 96]"});
  expect_error([&] { store.vector("model.norm.weight", 255); }, {"model.norm.weight", "[255]"});
  expect_error([&] { store.vector(q, 96); }, {q, "[96]"});  // a matrix asked for as a vector
  for (const char* name : {"model.layers.9.mlp.gate.weight", "lm_head.bias", ""}) {
    expect_error([&] { store.get(name); }, {"'" + std::string(name) + "'"});
    expect_error([&] { store.matrix(name, 1, 1); }, {"'" + std::string(name) + "'"});
  }
}

// After enable_training the store saves its master values: a changed norm gain and a changed
// embedding row are in the saved folder (the MTP copy of the embedding too), the rest unchanged.
TEST(ParamStore, SaveAfterTrainingWritesTheMasterValues) {
  test::TempDir tmp;
  ModelWeights w = ModelWeights::load(folder(tmp, "bf16", DType::BF16));
  ParamStore store(w);
  store.enable_training();
  const std::string norm = "model.layers.2.post_attention_layernorm.weight";
  const std::string embed = "model.embed_tokens.weight";
  for (int64_t i = 0; i < store.get(norm).numel; ++i) store.get(norm).f32[i] += 1.0f;
  store.get(embed).f32[3] = 0.25f;

  std::string as_stored = tmp.file("as_stored"), bf16 = tmp.file("bf16_out");
  store.save_as_stored(as_stored);  // the master arena is F32 now
  store.save(bf16, DType::BF16);
  for (const std::string& dir : {as_stored, bf16}) {
    SCOPED_TRACE(dir);
    ModelWeights back = ModelWeights::load(dir);
    EXPECT_EQ(back.get(embed).dtype, dir == bf16 ? DType::BF16 : DType::F32);
    for (float x : dequant(back.get(norm))) ASSERT_EQ(x, 2.0f);
    for (const ParamSpec& s : param_table(tiny())) {
      std::vector<float> got = dequant(back.get(s.name)), want = dequant(w.get(s.name));
      if (s.name == embed || s.copy_of == embed) {
        EXPECT_EQ(got[3], 0.25f) << s.name;
        got[3] = want[3];
      }
      if (s.name != norm) {
        ASSERT_EQ(got, want) << s.name;  // BF16 values survive F32 and back
      }
    }
  }
}

// Expert parallelism (SPEC §5): a store over weights holding experts [8, 16) of each MoE layer
// (the tiny preset has 16) keeps the rest first and its experts after, the other experts absent;
// saved with the other half's values it writes the whole model, bit for bit the folder it read.
TEST(ParamStore, ExpertSliceKeepsItsExpertsLastAndSavesTheWholeModel) {
  test::TempDir tmp;
  const std::string src = folder(tmp, "f32", DType::F32);
  ModelWeights all_w = ModelWeights::load(src);
  ModelWeights lo_w = ModelWeights::load(src, ParamSlice::experts(0, 8));
  ModelWeights hi_w = ModelWeights::random(tiny(), 11, DType::F32, ParamSlice::experts(8, 8));
  ParamStore all(all_w), lo(lo_w), hi(hi_w);
  EXPECT_EQ(all.expert_offset(), all.arena_numel());  // nothing absent: table order
  EXPECT_EQ(lo.expert_offset(), hi.expert_offset());
  EXPECT_EQ(lo.arena_numel(), hi.arena_numel());
  EXPECT_EQ(lo.arena_numel() - lo.expert_offset(), (all.arena_numel() - lo.expert_offset()) / 2);
  int64_t absent = 0;
  for (const Param& p : hi.all()) {
    if (p.alias) continue;
    const bool held = p.spec->expert >= 8;
    ASSERT_EQ(p.absent, p.spec->expert >= 0 && !held) << p.name();
    if (p.absent) {
      ++absent;
      EXPECT_EQ(hi_w.get(p.name()).data, nullptr);
    } else {
      EXPECT_EQ(p.offset >= hi.expert_offset(), held) << p.name();
      ASSERT_EQ(std::memcmp(hi_w.get(p.name()).data, all_w.get(p.name()).data,
                            nbytes(all_w.get(p.name()))),
                0)
          << p.name();  // random() draws the held experts as the whole model's
    }
  }
  EXPECT_GT(absent, 0);
  lo.enable_training();
  hi.enable_training();
  for (const Param& p : lo.all()) EXPECT_EQ(p.absent, p.grad == nullptr && p.spec->has_grad);
  EXPECT_THROW(lo.save(tmp.file("partial"), DType::F32), Error);  // the other experts unknown
  // Each writes the tensors it holds into the folder lo lays out: the bytes of one process's.
  const std::string whole = tmp.file("whole"), one = tmp.file("one");
  lo.save_layout(whole, DType::F32);
  const uint64_t from_lo = lo.save_values(whole, [](const Param& p) { return !p.absent; });
  EXPECT_THROW(hi.save_values(whole, [](const Param& p) { return p.spec->expert == 0; }), Error);
  const uint64_t from_hi =
      hi.save_values(whole, [](const Param& p) { return p.spec->expert >= 8; });
  all.save(one, DType::F32);
  expect_same_files(whole, one);
  EXPECT_EQ(from_lo + from_hi, 4 * static_cast<uint64_t>(total_numel(all)));
}

// Pipeline parallelism (SPEC §4): a store over weights holding decoder layers [1, 3) only (a
// stage in the middle: no embedding, head or MTP module) keeps just those tensors, in table
// order, with every expert of its layers; saved with the other tensors' values it writes the
// whole model, bit for bit. A last stage's slice holds the final norm, the head and the MTP
// module (its copies of the embedding and head alias the main tensors).
TEST(ParamStore, StageSliceKeepsItsLayersAndSavesTheWholeModel) {
  test::TempDir tmp;
  const std::string src = folder(tmp, "f32", DType::F32);
  ModelWeights all_w = ModelWeights::load(src);
  ParamSlice mid;
  mid.layers = {{1, 3}};
  mid.embedding = mid.head = false;
  ModelWeights mid_w = ModelWeights::load(src, mid);
  ParamStore all(all_w), ps(mid_w);
  int64_t held = 0, last_offset = -1;
  for (const Param& p : ps.all()) {
    const bool in = p.spec->group == ParamGroup::Main && p.spec->layer >= 1 && p.spec->layer < 3;
    ASSERT_EQ(p.absent, !in) << p.name();
    EXPECT_EQ(mid_w.get(p.name()).data == nullptr, !in) << p.name();
    if (!in) continue;
    EXPECT_GT(p.offset, last_offset) << p.name();  // table order
    last_offset = p.offset;
    held += p.numel;
  }
  EXPECT_EQ(ps.arena_numel(), held);
  EXPECT_EQ(ps.expert_offset(), ps.arena_numel());  // every expert of its layers: no region
  EXPECT_LT(held, all.arena_numel() / 2);

  ParamSlice last;
  last.layers = {{3, 4}};
  last.embedding = false;
  ModelWeights last_w = ModelWeights::random(tiny(), 11, DType::F32, last);
  ParamStore lps(last_w);
  EXPECT_FALSE(lps.get("lm_head.weight").absent);
  EXPECT_FALSE(lps.get("model.norm.weight").absent);
  EXPECT_FALSE(lps.get("model.layers.4.eh_proj.weight").absent);  // the MTP module (layer L)
  EXPECT_TRUE(lps.get("model.layers.4.shared_head.head.weight").alias);
  EXPECT_TRUE(lps.get("model.embed_tokens.weight").absent);
  EXPECT_TRUE(lps.get("model.layers.4.embed_tokens.weight").absent);  // aliases the embedding
  EXPECT_EQ(std::memcmp(last_w.get("lm_head.weight").data, all_w.get("lm_head.weight").data,
                        nbytes(all_w.get("lm_head.weight"))),
            0);

  all.enable_training();
  ps.enable_training();
  EXPECT_THROW(ps.save(tmp.file("partial"), DType::F32), Error);  // the other stages unknown
  // The middle stage lays the folder out and writes its layers; the whole store the rest.
  const std::string whole = tmp.file("whole"), one = tmp.file("one");
  ps.save_layout(whole, DType::F32);
  ps.save_values(whole, [](const Param& p) { return !p.absent; });
  all.save_values(whole, [&](const Param& p) { return ps.get(p.name()).absent; });
  all.save(one, DType::F32);
  expect_same_files(whole, one);
}

}  // namespace
}  // namespace dsv3

// ModelWeights: the parameter table checked against a HF folder (or filled at random in memory).
#include "model/weights.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>

#include "base/error.h"
#include "base/file.h"
#include "base/thread_pool.h"
#include "model/moe_router.h"
#include "model/random_init.h"
#include "tensor/block_scale.h"
#include "tensor/safetensors_folder.h"

namespace dsv3 {

struct ModelWeights::Impl {
  ModelConfig config;
  std::optional<TensorStore> store;                  // load(): the mapped files
  std::vector<std::unique_ptr<std::byte[]>> memory;  // random(): the tensors' bytes
  std::vector<WeightView> views;                     // param_table order
  std::map<std::string, size_t, std::less<>> index;  // name -> views
};

namespace {

bool is_weight_dtype(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16 || t == DType::F8_E4M3;
}

// SPEC §3.2: an E4M3 weight [r, c] carries F32 `<name>_scale_inv` [ceil(r/128), ceil(c/128)] of
// finite, positive, normal values (RELIABILITY §1: a missing or bad scale is an error). Returns the
// scales, copied into `memory` when the file's bytes are not aligned for float access.
const float* check_scale_inv(const TensorStore& store, const TensorStore::TensorRef& w,
                             const ParamSpec& p,
                             std::vector<std::unique_ptr<std::byte[]>>& memory) {
  const std::string& file = *w.file;
  if (p.shape.size() != 2)
    throw Error(file + ": tensor '" + p.name + "' is F8_E4M3 but not a matrix");
  std::string scale_name = p.name + "_scale_inv";
  auto s = store.find(scale_name);
  if (!s)
    throw Error(
        file + ": FP8 tensor '" + p.name + "' has no '" + scale_name + "'",
        "DeepSeek FP8 checkpoints store a float32 weight_scale_inv beside each E4M3 weight");
  Shape want = scale_shape_128x128(p.shape[0], p.shape[1]);
  std::string where = *s->file + ": tensor '" + scale_name + "'";
  if (s->info->dtype != DType::F32)
    throw Error(where + " must be F32, not " + std::string(dtype_name(s->info->dtype)));
  if (s->info->shape != want)
    throw Error(where + " has shape " + shape_str(s->info->shape) + ", expected " +
                shape_str(want) + " for " + shape_str(p.shape) + " in 128x128 blocks");
  const float* scales = reinterpret_cast<const float*>(s->data.data());
  if (reinterpret_cast<uintptr_t>(scales) % alignof(float) != 0) {
    memory.push_back(std::make_unique<std::byte[]>(s->data.size()));
    std::memcpy(memory.back().get(), s->data.data(), s->data.size());
    scales = reinterpret_cast<const float*>(memory.back().get());
  }
  validate_scale_inv(scales, shape_numel(want), where);
  return scales;
}

// An F16 [rows, cols / 32] companion of an integer block-format weight (NAME_scale, NAME_min),
// copied into `memory` when the file's bytes are not aligned for uint16_t access.
const uint16_t* block_companion(const TensorStore& store, const std::string& name,
                                const Shape& want, const std::string& weight,
                                std::vector<std::unique_ptr<std::byte[]>>& memory) {
  auto s = store.find(name);
  if (!s)
    throw Error(
        store.dir() + ": quantized tensor '" + weight + "' has no '" + name + "'",
        "I8 / U8 weights are block-quantized: each needs its F16 NAME_scale [rows, cols/32] "
        "(docs/QUANTIZATION.md); re-run dsv3 quantize");
  const std::string where = *s->file + ": tensor '" + name + "'";
  if (s->info->dtype != DType::F16)
    throw Error(where + " must be F16, not " + std::string(dtype_name(s->info->dtype)));
  if (s->info->shape != want)
    throw Error(where + " has shape " + shape_str(s->info->shape) + ", expected " +
                shape_str(want) + " (one per 32 values of each row)");
  const auto* p = reinterpret_cast<const uint16_t*>(s->data.data());
  if (reinterpret_cast<uintptr_t>(p) % alignof(uint16_t) != 0) {
    memory.push_back(std::make_unique<std::byte[]>(s->data.size()));
    std::memcpy(memory.back().get(), s->data.data(), s->data.size());
    p = reinterpret_cast<const uint16_t*>(memory.back().get());
  }
  return p;
}

// An I8 / U8 tensor standing for matrix p: an integer block format (docs/QUANTIZATION.md). Fills
// v's quant, block_scale and block_min; checks the quants' shape against p's.
void load_int_blocks(const TensorStore& store, const TensorStore::TensorRef& w, const ParamSpec& p,
                     std::vector<std::unique_ptr<std::byte[]>>& memory, WeightView& v) {
  const std::string& file = *w.file;
  const DType dt = w.info->dtype;
  if (p.shape.size() != 2 || p.shape[1] % 32 != 0)
    throw Error(file + ": tensor '" + p.name + "' " + shape_str(p.shape) + " is " +
                    std::string(dtype_name(dt)) +
                    ", but only matrices with a multiple of 32 columns can be block-quantized",
                "store this tensor as BF16");
  const bool has_min = store.find(p.name + "_min").has_value();
  const BlockFormatTraits& f = block_format_traits(*int_block_format(dt, has_min));
  const Shape want{p.shape[0], p.shape[1] / f.values_per_elem};
  if (w.info->shape != want)
    throw Error(file + ": tensor '" + p.name + "' (" + f.name + ") has shape " +
                shape_str(w.info->shape) + ", but the config needs " + shape_str(want) +
                " for the matrix " + shape_str(p.shape));
  const Shape scales{p.shape[0], p.shape[1] / 32};
  v.quant = &f;
  v.block_scale = block_companion(store, p.name + "_scale", scales, p.name, memory);
  if (has_min) v.block_min = block_companion(store, p.name + "_min", scales, p.name, memory);
}

// Before the table is built: a config that needs more tensors or bytes than the files hold is an
// error at once (an absurd config under the limits of check_model_size would otherwise build a
// table of a million entries only to miss the first tensor). Lower bounds: the MTP copies of the
// embedding and head may be left out, and a weight takes at least half a byte (4-bit blocks).
void check_files_hold(const ModelConfig& c, const TensorStore& store,
                      const std::string& config_path) {
  const ModelSize need = model_size(c);
  const double copies = 2.0 * static_cast<double>(c.num_nextn_predict_layers);
  const double tensors = need.tensors - copies;
  const double bytes = 0.5 * (need.parameters - copies * static_cast<double>(c.vocab_size) *
                                                    static_cast<double>(c.hidden_size));
  const double have_tensors = static_cast<double>(store.names().size());
  const double have_bytes = static_cast<double>(store.total_bytes());
  char buf[256];
  if (tensors > have_tensors) {
    std::snprintf(buf, sizeof buf, "%.0f tensors, but the safetensors files in %s hold %.0f",
                  tensors, store.dir().c_str(), have_tensors);
    throw Error(config_path + " describes a model of " + buf,
                "the config does not belong to these weights, or files are missing");
  }
  if (bytes > have_bytes) {
    std::snprintf(buf, sizeof buf,
                  "%.4g parameters (at least %.4g bytes), but the safetensors files in %s hold "
                  "%.4g bytes",
                  2 * bytes, bytes, store.dir().c_str(), have_bytes);
    throw Error(config_path + " describes a model of " + buf,
                "the config does not belong to these weights, or files are missing");
  }
}

}  // namespace

bool ParamSlice::holds(const ParamSpec& p) const {
  if (p.expert >= 0 && expert_count >= 0 &&
      (p.expert < expert_first || p.expert >= expert_first + expert_count))
    return false;
  if (p.group == ParamGroup::Mtp || (p.layer < 0 && p.name != "model.embed_tokens.weight"))
    return head;  // the MTP module, the final norm and the LM head: the last stage's
  if (p.layer < 0) return embedding;
  if (layers.empty()) return true;
  return std::any_of(layers.begin(), layers.end(),
                     [&](const Layers& r) { return p.layer >= r.begin && p.layer < r.end; });
}

ModelWeights::ModelWeights() : impl_(std::make_unique<Impl>()) {}
ModelWeights::ModelWeights(ModelWeights&&) noexcept = default;
ModelWeights& ModelWeights::operator=(ModelWeights&&) noexcept = default;
ModelWeights::~ModelWeights() = default;

ModelWeights ModelWeights::load(const std::string& dir, ParamSlice slice) {
  ModelWeights w;
  Impl& m = *w.impl_;
  std::string config_path = path_join(dir, "config.json");
  m.config = load_config(config_path);
  m.store.emplace(TensorStore::open(dir));
  const TensorStore& store = *m.store;
  check_files_hold(m.config, store, config_path);
  for (const ParamSpec& p : param_table(m.config)) {
    auto ref = store.find(p.name);
    // SPEC §6: loaders may alias the MTP copies of the embedding and the head.
    if (!ref && !p.copy_of.empty()) ref = store.find(p.copy_of);
    if (!ref)
      throw Error(
          dir + ": tensor '" + p.name + "' " + shape_str(p.shape) +
              " is missing from the safetensors files",
          p.group == ParamGroup::Mtp
              ? "a checkpoint without its MTP layer needs num_nextn_predict_layers 0 in " +
                    config_path
              : config_path + " (" + m.config.model_type + ") needs every tensor of SPEC §6");
    const TensorInfo& t = *ref->info;
    WeightView v;
    if (t.dtype == DType::I8 || t.dtype == DType::U8) {
      load_int_blocks(store, *ref, p, m.memory, v);
    } else if (t.shape != p.shape) {
      throw Error(*ref->file + ": tensor '" + p.name + "' has shape " + shape_str(t.shape) +
                  ", but " + config_path + " needs " + shape_str(p.shape));
    } else if (!is_weight_dtype(t.dtype)) {
      throw Error(*ref->file + ": tensor '" + p.name + "' has dtype " +
                  std::string(dtype_name(t.dtype)) +
                  "; weights must be F32, F16, BF16, F8_E4M3 or block-quantized I8 / U8");
    }
    v.name = p.name;
    v.dtype = t.dtype;
    v.shape = p.shape;
    v.data = slice.holds(p) ? ref->data.data() : nullptr;
    if (t.dtype == DType::F8_E4M3 && v.data) {
      v.scale_inv = check_scale_inv(store, *ref, p, m.memory);
    }
    m.index.emplace(p.name, m.views.size());
    m.views.push_back(std::move(v));
  }
  return w;
}

ModelWeights ModelWeights::random(const ModelConfig& c, uint64_t seed, DType dtype,
                                  ParamSlice slice) {
  if (dtype != DType::F32 && dtype != DType::BF16 && dtype != DType::F16)
    throw Error("random weights: dtype " + std::string(dtype_name(dtype)) +
                " is not supported (F32, BF16 or F16)");
  ModelWeights w;
  Impl& m = *w.impl_;
  m.config = c;
  ThreadPool pool(ThreadPool::default_threads());
  for (const ParamSpec& p : param_table(c)) {
    DType dt = storage_dtype(p, dtype);
    WeightView v;
    v.name = p.name;
    v.dtype = dt;
    v.shape = p.shape;
    if (!slice.holds(p)) {  // absent: another rank holds it
      m.index.emplace(p.name, m.views.size());
      m.views.push_back(std::move(v));
      continue;
    }
    size_t nbytes = static_cast<size_t>(shape_numel(p.shape)) * dtype_size(dt);
    auto buf = std::make_unique<std::byte[]>(nbytes);
    fill_random_param(p, seed, dt, buf.get(), pool);
    v.data = buf.get();
    m.memory.push_back(std::move(buf));
    m.index.emplace(p.name, m.views.size());
    m.views.push_back(std::move(v));
  }
  return w;
}

const ModelConfig& ModelWeights::config() const {
  return impl_->config;
}

void ModelWeights::limit_routing_to_nodes(int64_t nodes, int64_t keep) {
  dsv3::limit_routing_to_nodes(impl_->config, nodes, keep);
}

bool ModelWeights::has(std::string_view name) const {
  return impl_->index.find(name) != impl_->index.end();
}

const WeightView& ModelWeights::get(std::string_view name) const {
  auto it = impl_->index.find(name);
  if (it == impl_->index.end())
    throw Error("model weights: no tensor '" + std::string(name) + "' in this " +
                impl_->config.model_type + " model");
  return impl_->views[it->second];
}

const std::vector<WeightView>& ModelWeights::all() const {
  return impl_->views;
}

}  // namespace dsv3

// The parameter store: arenas in param_table order, views into the loaded weights.
#include "model/param_store.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <set>
#include <unordered_map>

#include "base/error.h"
#include "base/file.h"
#include "base/progress.h"
#include "tensor/block_scale.h"
#include "tensor/convert.h"
#include "tensor/safetensors_folder.h"

namespace dsv3 {
namespace {

// The whole tensor as FP32 (FP8 dequantised with its block scales).
void value_f32(const Param& p, float* out) {
  weight_block_f32(p.value, 0, p.value.rows, 0, p.value.cols, out);
}

}  // namespace

void write_int_blocks(ShardedWriter& writer, const std::string& name, const WeightRef& w) {
  const BlockFormatTraits& f = *w.quant;
  const auto bytes = [](const void* p, int64_t n) {
    return std::span<const std::byte>(static_cast<const std::byte*>(p), static_cast<size_t>(n));
  };
  const int64_t blocks = w.cols / f.block_cols;
  writer.add_bytes(name, f.quant_dtype, {w.rows, w.cols / f.values_per_elem},
                   bytes(w.data, w.rows * w.row_bytes()));
  writer.add_bytes(name + "_scale", DType::F16, {w.rows, blocks},
                   bytes(w.block_scale, w.rows * blocks * 2));
  if (f.has_min)
    writer.add_bytes(name + "_min", DType::F16, {w.rows, blocks},
                     bytes(w.block_min, w.rows * blocks * 2));
}

namespace {

const char* torch_dtype_name(DType t) {
  return t == DType::F32 ? "float32" : t == DType::F16 ? "float16" : "bfloat16";
}

}  // namespace

ParamStore::ParamStore(const ModelWeights& w) : config_(w.config()), specs_(param_table(config_)) {
  params_.resize(specs_.size());
  int64_t vector_numel = 0;
  for (const ParamSpec& s : specs_)
    if (s.shape.size() == 1) vector_numel += shape_numel(s.shape);
  vectors_.resize(static_cast<size_t>(vector_numel));
  float* next_vector = vectors_.data();
  index_.reserve(specs_.size());
  for (size_t i = 0; i < specs_.size(); ++i) {
    const ParamSpec& s = specs_[i];
    Param& p = params_[i];
    p.spec = &s;
    p.numel = shape_numel(s.shape);
    index_.emplace_back(s.name, i);
    if (!s.copy_of.empty()) continue;  // aliased below, once the main tensor is placed
    const WeightView& v = w.get(s.name);
    p.value.dtype = v.dtype;
    p.value.data = v.data;
    p.value.rows = s.shape.size() == 2 ? s.shape[0] : 1;
    p.value.cols = s.shape.size() == 2 ? s.shape[1] : s.shape[0];
    if (!v.data) {
      p.absent = true;
      continue;
    }
    p.value.scale_inv = v.scale_inv;
    p.value.block_rows = v.block_rows;
    p.value.block_cols = v.block_cols;
    p.value.quant = v.quant;
    p.value.block_scale = v.block_scale;
    p.value.block_min = v.block_min;
    if (s.shape.size() == 1) {
      p.f32 = next_vector;
      next_vector += p.numel;
      value_f32(p, p.f32);
    }
  }
  // Arena offsets in table order; when a layer holds only some of its experts (expert
  // parallelism), the held experts after the rest. Other absent tensors (another pipeline stage's
  // layers) just take no space.
  std::set<int64_t> with_experts;
  for (const Param& p : params_)
    if (!p.absent && p.spec->expert >= 0) with_experts.insert(p.spec->layer);
  const bool some_absent = std::any_of(params_.begin(), params_.end(), [&](const Param& p) {
    return p.absent && p.spec->expert >= 0 && with_experts.count(p.spec->layer) > 0;
  });
  for (int pass = 0; pass < (some_absent ? 2 : 1); ++pass) {
    if (pass == 1) expert_offset_ = arena_numel_;
    for (Param& p : params_) {
      if (p.absent || !p.spec->copy_of.empty()) continue;
      if (some_absent && (p.spec->expert >= 0) != (pass == 1)) continue;
      p.offset = arena_numel_;
      arena_numel_ += p.numel;
    }
  }
  if (!some_absent) expert_offset_ = arena_numel_;
  std::sort(index_.begin(), index_.end());
  for (Param& p : params_) {
    if (p.spec->copy_of.empty()) continue;
    const Param& main = get(p.spec->copy_of);
    const ParamSpec* spec = p.spec;
    p = main;
    p.spec = spec;
    p.alias = true;
  }
}

const Param& ParamStore::get(std::string_view name) const {
  auto it = std::lower_bound(index_.begin(), index_.end(), name,
                             [](const auto& e, std::string_view n) { return e.first < n; });
  if (it == index_.end() || it->first != name)
    throw Error("model: no parameter '" + std::string(name) + "' in this " + config_.model_type +
                " model");
  return params_[it->second];
}

Param& ParamStore::get(std::string_view name) {
  return const_cast<Param&>(static_cast<const ParamStore*>(this)->get(name));
}

bool ParamStore::has(std::string_view name) const {
  return std::binary_search(index_.begin(), index_.end(), std::pair{name, size_t{0}},
                            [](const auto& a, const auto& b) { return a.first < b.first; });
}

const Param& ParamStore::matrix(const std::string& name, int64_t rows, int64_t cols) const {
  const Param& p = get(name);
  const Shape want = cols > 0 ? Shape{rows, cols} : Shape{rows};
  DSV3_CHECK(p.spec->shape == want,
             "model: parameter " + name + " has shape " + shape_str(p.spec->shape) + ", expected " +
                 shape_str(want),
             "the checkpoint does not match config.json");
  return p;
}

const Param& ParamStore::vector(const std::string& name, int64_t n) const {
  return matrix(name, n, 0);
}

void ParamStore::enable_training() {
  if (training()) return;
  master_.assign(static_cast<size_t>(arena_numel_), 0.0f);
  grads_.assign(static_cast<size_t>(arena_numel_), 0.0f);
  for (Param& p : params_) {
    if (p.alias || p.absent) continue;
    float* m = master_.data() + p.offset;
    value_f32(p, m);
    p.value.dtype = DType::F32;
    p.value.data = m;
    p.value.scale_inv = nullptr;
    p.value.scale_row0 = 0;
    p.value.quant = nullptr;
    p.value.block_scale = p.value.block_min = nullptr;
    p.f32 = m;
    // SPEC §2: the correction bias is set by the balance rule, never by a gradient.
    p.grad = p.spec->has_grad ? grads_.data() + p.offset : nullptr;
  }
  for (Param& p : params_) {
    if (!p.alias) continue;
    const Param& main = get(p.spec->copy_of);
    p.value = main.value;
    p.f32 = main.f32;
    p.grad = main.grad;
  }
}

void ParamStore::zero_grads() {
  std::fill(grads_.begin(), grads_.end(), 0.0f);
}

void ParamStore::save(const std::string& dir, DType dtype) const {
  DSV3_CHECK(
      dtype == DType::F32 || dtype == DType::BF16 || dtype == DType::F16 || dtype == DType::F8_E4M3,
      "save: dtype " + std::string(dtype_name(dtype)) + " is not supported",
      "use F32, BF16, F16 or F8_E4M3");
  save_impl(dir, &dtype, false);
}

void ParamStore::save_as_stored(const std::string& dir) const {
  save_impl(dir, nullptr, false);
}

void ParamStore::save_layout(const std::string& dir, DType dtype) const {
  DSV3_CHECK(dtype == DType::F32 || dtype == DType::BF16 || dtype == DType::F16,
             "save_layout: dtype " + std::string(dtype_name(dtype)) + " is not supported",
             "use F32, BF16 or F16");
  save_impl(dir, &dtype, true);
}

uint64_t ParamStore::save_values(const std::string& dir,
                                 const std::function<bool(const Param&)>& writes) const {
  const TensorStore folder = TensorStore::open(dir);
  std::unordered_map<std::string, std::unique_ptr<FilePatcher>> files;
  std::vector<float> f;
  std::vector<std::byte> bytes;
  for (const Param& p : params_) {
    if (!writes(p)) continue;
    const ParamSpec& s = *p.spec;
    DSV3_CHECK(!p.absent, "save: this process does not hold " + s.name + ", so cannot write it");
    const auto t = folder.find(s.name);
    DSV3_CHECK(
        t && t->info->shape == s.shape &&
            (t->info->dtype == DType::F32 || t->info->dtype == DType::BF16 ||
             t->info->dtype == DType::F16),
        dir + ": has no F32, BF16 or F16 " + s.name + " " + shape_str(s.shape) + " to write into",
        "write the folder's layout with save_layout from the same model first");
    f.resize(static_cast<size_t>(p.numel));
    value_f32(p, f.data());
    bytes.resize(t->info->nbytes);
    convert_from_f32(t->info->dtype, f.data(), bytes.data(), p.numel);
    auto& file = files[*t->file];
    if (!file) file = std::make_unique<FilePatcher>(*t->file);
    file->write_at(t->file_offset, bytes.data(), bytes.size());
  }
  uint64_t written = 0;
  for (auto& [path, file] : files) {
    file->close();
    written += file->written();
  }
  return written;
}

// dtype null: every tensor in its current bytes.
void ParamStore::save_impl(const std::string& dir, const DType* dtype, bool layout_only) const {
  ModelConfig c = config_;
  bool any_fp8 = false;
  DType matrix_dtype = DType::F32;
  ShardedWriter writer;
  writer.set_metadata("format", "pt");  // what HF's save_pretrained writes
  for (const Param& p : params_) {
    const ParamSpec& s = *p.spec;
    DSV3_CHECK(!p.absent || layout_only,
               "save: this process does not hold " + s.name + " (it is split between processes)",
               "each process writes the tensors it holds: save_layout, then save_values");
    const auto values = [&p](float* out) { value_f32(p, out); };
    const DType dt = dtype ? storage_dtype(s, *dtype) : p.value.dtype;
    if (s.shape.size() == 2 && !s.keep_f32 && dt != DType::F8_E4M3) matrix_dtype = dt;
    any_fp8 = any_fp8 || dt == DType::F8_E4M3;
    const bool raw = !layout_only && dt == p.value.dtype;
    const Shape scales =
        s.shape.size() == 2 ? scale_shape_128x128(s.shape[0], s.shape[1]) : Shape{};
    if (!dtype && p.value.quant) {  // integer block formats: quants, scales, minimums
      write_int_blocks(writer, s.name, p.value);
      continue;
    }
    if (raw) {
      const auto* bytes = static_cast<const std::byte*>(p.value.data);
      writer.add_bytes(s.name, dt, s.shape, {bytes, static_cast<size_t>(p.numel) * dtype_size(dt)});
      if (dt == DType::F8_E4M3)
        writer.add_bytes(s.name + "_scale_inv", DType::F32, scales,
                         {reinterpret_cast<const std::byte*>(p.value.scale_inv),
                          static_cast<size_t>(shape_numel(scales)) * sizeof(float)});
      continue;
    }
    if (dt != DType::F8_E4M3) {
      writer.add(s.name, dt, s.shape, [&p, dt, values](std::byte* dst) {
        std::vector<float> f(static_cast<size_t>(p.numel));
        values(f.data());
        convert_from_f32(dt, f.data(), dst, p.numel);
      });
      continue;
    }
    // SPEC §3.2: E4M3 + F32 scale_inv; the weight's fill leaves the scales for the next fill.
    auto sc = std::make_shared<std::vector<float>>();
    writer.add(s.name, dt, s.shape, [&p, sc, scales, values](std::byte* dst) {
      std::vector<float> f(static_cast<size_t>(p.numel));
      values(f.data());
      sc->assign(static_cast<size_t>(shape_numel(scales)), 0.0f);
      quantize_e4m3_128x128(f.data(), p.value.rows, p.value.cols, reinterpret_cast<uint8_t*>(dst),
                            sc->data());
    });
    writer.add(s.name + "_scale_inv", DType::F32, scales,
               [sc](std::byte* dst) { std::memcpy(dst, sc->data(), sc->size() * sizeof(float)); });
  }
  c.fp8_weights = any_fp8;
  if (dtype) c.block_quant.clear();  // converted: no block-quantized tensor left
  c.torch_dtype = torch_dtype_name(matrix_dtype);
  if (layout_only) {
    writer.write_layout(dir);
  } else {
    ProgressBar bar("saving " + dir, writer.data_bytes(), "bytes", ProgressBar::Offline::Lines);
    writer.write(dir, &bar);
    bar.finish();
  }
  // config.json last: a folder whose weights failed to write is never taken for a model.
  write_file_atomic(path_join(dir, "config.json"), config_to_json(c).dump(2) + "\n");
}

}  // namespace dsv3

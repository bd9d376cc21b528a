// The parameter EMA: its arena, its update, and writing it as a model folder or a state file.
#include "train/ema.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string_view>
#include <unordered_map>

#include "base/error.h"
#include "base/thread_pool.h"
#include "model/param_store.h"
#include "tensor/safetensors.h"

namespace dsv3 {
namespace {

constexpr char kFormat[] = "dsv3-ema";
constexpr int64_t kChunk = int64_t{1} << 16;

std::span<float> master_of(ParamStore& ps, const ArenaLayout& l, const char* what) {
  DSV3_CHECK(ps.training(), std::string(what) + ": the parameter store has no master arena",
             "call ParamStore::enable_training() first");
  l.check_same(ArenaLayout::of(ps), what);
  return ps.master();
}

}  // namespace

ParamEma::ParamEma(ParamStore& ps, double decay) : layout_(ArenaLayout::of(ps)), decay_(decay) {
  DSV3_CHECK(decay >= 0 && decay < 1, "EMA: decay " + std::to_string(decay) + " is not in [0, 1)");
  const std::span<float> m = master_of(ps, layout_, "EMA");
  ema_.assign(m.begin(), m.end());
}

void ParamEma::update(ParamStore& ps, ThreadPool* pool) {
  const std::span<float> m = master_of(ps, layout_, "EMA update");
  const double w = 1 - decay_;
  const int64_t n = static_cast<int64_t>(ema_.size());
  auto fn = [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c)
      for (int64_t i = c * kChunk; i < std::min(n, (c + 1) * kChunk); ++i)
        ema_[i] = static_cast<float>(ema_[i] + w * (static_cast<double>(m[i]) - ema_[i]));
  };
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  if (pool)
    pool->parallel_for(chunks, fn);
  else
    fn(0, chunks);
  ++updates_;
}

void ParamEma::save_model(ParamStore& ps, const std::string& dir, DType dtype) {
  const std::span<float> m = master_of(ps, layout_, "EMA save");
  // ParamStore::save reads every value from the master arena (aliases included).
  std::swap_ranges(m.begin(), m.end(), ema_.begin());
  try {
    ps.save(dir, dtype);
  } catch (...) {
    std::swap_ranges(m.begin(), m.end(), ema_.begin());
    throw;
  }
  std::swap_ranges(m.begin(), m.end(), ema_.begin());
}

namespace {

// The EMA file over `l`: tensor "ema" [l.numel] F32 (filled from `values` when written whole).
SafetensorsWriter ema_writer(const ArenaLayout& l, double decay, int64_t updates,
                             const float* values) {
  SafetensorsWriter w;
  const size_t bytes = static_cast<size_t>(l.numel) * sizeof(float);
  w.add("ema", DType::F32, Shape{l.numel},
        [values, bytes](std::byte* dst) { std::memcpy(dst, values, bytes); });
  w.set_metadata("format", kFormat);
  w.set_metadata("decay", Json(decay).dump());
  w.set_metadata("updates", std::to_string(updates));
  w.set_metadata("layout", l.to_json().dump());
  return w;
}

}  // namespace

void ParamEma::save(const std::string& path) const {
  ema_writer(layout_, decay_, updates_, ema_.data()).write(path);
}

void ParamEma::save_layout(const std::string& path, const ArenaLayout& whole_layout) const {
  ema_writer(whole_layout, decay_, updates_, nullptr).write_layout(path);
}

void ParamEma::load(const std::string& path) {
  SafetensorsFile f(path);
  const Json& meta = f.metadata();
  const Json* format = meta.find("format");
  DSV3_CHECK(format && format->as_string() == kFormat,
             path + ": not an EMA file (metadata format is not " + kFormat + ")");
  const Json* updates = meta.find("updates");
  const Json* layout = meta.find("layout");
  DSV3_CHECK(updates && layout, path + ": metadata lacks the update count or the layout");
  const int64_t n_updates =
      Json::parse(updates->as_string(), path + " updates").as_int(path + ": updates");
  DSV3_CHECK(n_updates >= 0, path + ": negative update count");
  ArenaLayout l = ArenaLayout::from_json(Json::parse(layout->as_string(), path + " layout"), path);
  // A store of the whole model reads a file of the same layout; a slice picks its tensors.
  if (l.numel == layout_.numel) l.check_same(layout_, path);
  const TensorInfo* t = f.find("ema");
  DSV3_CHECK(t && t->dtype == DType::F32 && t->shape == Shape{l.numel},
             path + ": tensor ema is missing or not F32 [" + std::to_string(l.numel) + "]");
  const auto* d = reinterpret_cast<const float*>(f.data(*t).data());
  std::unordered_map<std::string_view, const ArenaTensor*> in_file;
  for (const ArenaTensor& x : l.tensors) in_file[x.name] = &x;
  for (const ArenaTensor& x : layout_.tensors) {
    const auto it = in_file.find(x.name);
    DSV3_CHECK(it != in_file.end() && it->second->numel == x.numel,
               path + ": holds no " + x.name + " of " + std::to_string(x.numel) + " elements",
               "resume with the model of the run that wrote it");
    std::memcpy(ema_.data() + x.offset, d + it->second->offset, x.numel * sizeof(float));
  }
  updates_ = n_updates;
}

}  // namespace dsv3

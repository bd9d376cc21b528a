// AdamW, the global gradient norm and clipping, and the optimizer state file.
#include "train/optimizer.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>

#include "base/error.h"
#include "base/thread_pool.h"
#include "model/param_store.h"
#include "tensor/half.h"
#include "tensor/safetensors.h"

namespace dsv3 {
namespace {

// Tensors are cut into pieces of this many elements: the unit of work of the thread pool, and of
// the norm's partial sums (so the sum's order never depends on the thread count).
constexpr int64_t kChunk = kNormPiece;
constexpr char kFormat[] = "dsv3-adamw";

void run(ThreadPool* pool, int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (pool)
    pool->parallel_for(n, fn);
  else
    fn(0, n);
}

// Σ x² of one piece in double, over 8 lanes in a fixed order (vectorisable without reassociation).
double sum_squares(const float* x, int64_t n) {
  double lane[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) lane[j] += static_cast<double>(x[i + j]) * x[i + j];
  for (int j = 0; i < n; ++i, ++j) lane[j] += static_cast<double>(x[i]) * x[i];
  double s = 0;
  for (double l : lane) s += l;
  return s;
}

double norm_of_pieces(const std::vector<std::span<const float>>& pieces, ThreadPool* pool) {
  std::vector<double> part(pieces.size());
  run(pool, static_cast<int64_t>(pieces.size()), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) part[i] = sum_squares(pieces[i].data(), pieces[i].size());
  });
  double total = 0;
  for (double p : part) total += p;
  return std::sqrt(total);
}

void add_pieces(std::vector<std::span<const float>>& out, const float* g, int64_t numel) {
  for (int64_t o = 0; o < numel; o += kChunk)
    out.emplace_back(g + o, static_cast<size_t>(std::min(kChunk, numel - o)));
}

void check_training(const ParamStore& ps, const char* what) {
  DSV3_CHECK(ps.training(), std::string(what) + ": the parameter store has no gradients",
             "call ParamStore::enable_training() first");
}

void check_arena(const ArenaLayout& l, size_t n, const char* what) {
  DSV3_CHECK(static_cast<int64_t>(n) == l.numel,
             std::string(what) + ": arena of " + std::to_string(n) + " elements, the layout has " +
                 std::to_string(l.numel));
}

// torch.nn.utils.clip_grad_norm_'s factor; 1 when no clipping is due.
double clip_factor(double norm, double max_norm) {
  DSV3_CHECK(max_norm > 0 && std::isfinite(max_norm),
             "clip_grads: max_norm must be positive, not " + std::to_string(max_norm));
  return std::min(1.0, max_norm / (norm + 1e-6));
}

void scale(std::span<float> grads, const ArenaLayout& l, double f, ThreadPool* pool) {
  std::vector<std::span<float>> pieces;
  for (const ArenaTensor& t : l.tensors)
    if (t.trained)
      for (int64_t o = 0; o < t.numel; o += kChunk)
        pieces.push_back(grads.subspan(t.offset + o, std::min(kChunk, t.numel - o)));
  run(pool, static_cast<int64_t>(pieces.size()), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      for (float& g : pieces[i]) g = static_cast<float>(g * f);
  });
}

struct StepScalars {
  double b1, b2, eps, step_size, bc2_sqrt;  // step_size = lr / (1 - β1^t)
};

// FP32 -> BF16 round to nearest even, NaN kept a quiet NaN: tensor/half.h's f32_to_bf16, repeated
// inline (and branch-free) so that the update loop below vectorises.
inline uint16_t to_bf16(float x) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  const uint32_t rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
  const uint32_t nan = (bits >> 16) | 0x0040u;
  return static_cast<uint16_t>((bits & 0x7FFFFFFFu) > 0x7F800000u ? nan : rounded);
}

// Stores x in a moment slot (FP32, or BF16 through FP32) and returns the stored value.
inline double store(float& slot, double x) {
  slot = static_cast<float>(x);
  return slot;
}
inline double store(uint16_t& slot, double x) {
  slot = to_bf16(static_cast<float>(x));
  return std::bit_cast<float>(static_cast<uint32_t>(slot) << 16);
}
inline double load(float x) {
  return x;
}
inline double load(uint16_t h) {
  return std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
}

// torch.optim.AdamW (torch 1.13 _single_tensor_adamw) per element, in double: p *= keep; then
// m and v are updated, stored, and the stored (rounded) values drive the step, as the reference
// loop of tests/ref/train_ref.py does for BF16.
template <typename M>
void adamw_update(const StepScalars& s, double keep, float* p, const float* g, M* m, M* v,
                  int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double gi = g[i];
    const double mi = store(m[i], load(m[i]) * s.b1 + (1 - s.b1) * gi);
    // ((1 - β2)·g)·g: the order of torch's addcmul_, so that BF16 roundings of v agree with it.
    const double vi = store(v[i], load(v[i]) * s.b2 + (1 - s.b2) * gi * gi);
    const double denom = std::sqrt(vi) / s.bc2_sqrt + s.eps;
    p[i] = static_cast<float>(static_cast<double>(p[i]) * keep - s.step_size * (mi / denom));
  }
}

}  // namespace

void validate(const AdamWConfig& c) {
  auto check = [](bool ok, const char* field, double v, const char* want) {
    DSV3_CHECK(ok, std::string("AdamW: ") + field + " = " + std::to_string(v) + " " + want);
  };
  check(std::isfinite(c.lr) && c.lr >= 0, "lr", c.lr, "must be finite and >= 0");
  check(c.beta1 >= 0 && c.beta1 < 1, "beta1", c.beta1, "must be in [0, 1)");
  check(c.beta2 >= 0 && c.beta2 < 1, "beta2", c.beta2, "must be in [0, 1)");
  check(std::isfinite(c.eps) && c.eps > 0, "eps", c.eps, "must be finite and > 0");
  check(std::isfinite(c.weight_decay) && c.weight_decay >= 0, "weight_decay", c.weight_decay,
        "must be finite and >= 0");
}

double global_grad_norm(const ParamStore& ps, ThreadPool* pool) {
  check_training(ps, "global_grad_norm");
  std::vector<std::span<const float>> pieces;
  for (const Param& p : ps.all())
    if (!p.alias && p.grad) add_pieces(pieces, p.grad, p.numel);
  return norm_of_pieces(pieces, pool);
}

double global_grad_norm(const ArenaLayout& l, std::span<const float> grads, ThreadPool* pool) {
  check_arena(l, grads.size(), "global_grad_norm");
  std::vector<std::span<const float>> pieces;
  for (const ArenaTensor& t : l.tensors)
    if (t.trained) add_pieces(pieces, grads.data() + t.offset, t.numel);
  return norm_of_pieces(pieces, pool);
}

namespace {

// AdamW's state file: exp_avg and exp_avg_sq [l.numel], the step count and layout in its metadata;
// m and v (BF16 or F32 bytes, as c says) are read only when the writer writes the tensors.
SafetensorsWriter state_writer(const ArenaLayout& l, const AdamWConfig& c, int64_t steps,
                               const void* m, const void* v) {
  SafetensorsWriter w;
  const DType dt = c.bf16_moments ? DType::BF16 : DType::F32;
  const size_t bytes = static_cast<size_t>(l.numel) * dtype_size(dt);
  for (const auto& [name, data] : {std::pair{"exp_avg", m}, std::pair{"exp_avg_sq", v}})
    w.add(name, dt, Shape{l.numel},
          [data, bytes](std::byte* dst) { std::memcpy(dst, data, bytes); });
  w.set_metadata("format", kFormat);
  w.set_metadata("step", std::to_string(steps));
  w.set_metadata("layout", l.to_json().dump());
  return w;
}

}  // namespace

void save_adamw_layout(const ArenaLayout& l, const AdamWConfig& c, int64_t steps,
                       const std::string& path) {
  state_writer(l, c, steps, nullptr, nullptr).write_layout(path);
}

std::vector<double> piece_square_sums(std::span<const float> g) {
  std::vector<std::span<const float>> pieces;
  add_pieces(pieces, g.data(), static_cast<int64_t>(g.size()));
  std::vector<double> out;
  for (const auto& p : pieces) out.push_back(sum_squares(p.data(), static_cast<int64_t>(p.size())));
  return out;
}

double clip_grads(ParamStore& ps, double max_norm, ThreadPool* pool) {
  check_training(ps, "clip_grads");
  return clip_grads(ArenaLayout::of(ps), ps.grads(), max_norm, pool);
}

double clip_grads(const ArenaLayout& l, std::span<float> grads, double max_norm, ThreadPool* pool) {
  const double norm = global_grad_norm(l, grads, pool);
  clip_grads_to(l, grads, norm, max_norm, pool);
  return norm;
}

void clip_grads_to(const ArenaLayout& l, std::span<float> grads, double norm, double max_norm,
                   ThreadPool* pool) {
  check_arena(l, grads.size(), "clip_grads");
  const double f = clip_factor(norm, max_norm);
  if (f < 1) scale(grads, l, f, pool);
}

AdamW::AdamW(const ParamStore& ps, const AdamWConfig& c) : AdamW(ArenaLayout::of(ps), c) {}

AdamW::AdamW(ArenaLayout l, const AdamWConfig& c) : cfg_(c), layout_(std::move(l)) {
  validate(cfg_);
  for (const ArenaTensor& t : layout_.tensors) {
    if (!t.trained) continue;
    for (int64_t o = 0; o < t.numel; o += kChunk)
      chunks_.push_back({t.offset + o, std::min(kChunk, t.numel - o), t.matrix});
  }
  const size_t n = static_cast<size_t>(layout_.numel);
  if (cfg_.bf16_moments) {
    m16_.assign(n, 0);
    v16_.assign(n, 0);
  } else {
    m32_.assign(n, 0.0f);
    v32_.assign(n, 0.0f);
  }
}

void AdamW::step(ParamStore& ps, double lr, ThreadPool* pool) {
  check_training(ps, "AdamW::step");
  check(ps);
  step(ps.master(), ps.grads(), lr, pool);
}

void AdamW::step(std::span<float> values, std::span<const float> grads, double lr,
                 ThreadPool* pool) {
  check_arena(layout_, values.size(), "AdamW::step values");
  check_arena(layout_, grads.size(), "AdamW::step gradients");
  DSV3_CHECK(std::isfinite(lr) && lr >= 0,
             "AdamW::step: learning rate " + std::to_string(lr) + " is not finite and >= 0");
  ++step_;
  const double bc1 = 1 - std::pow(cfg_.beta1, static_cast<double>(step_));
  const double bc2_sqrt = std::sqrt(1 - std::pow(cfg_.beta2, static_cast<double>(step_)));
  const StepScalars sc{cfg_.beta1, cfg_.beta2, cfg_.eps, lr / bc1, bc2_sqrt};
  const double keep = 1.0 - lr * cfg_.weight_decay;
  run(pool, static_cast<int64_t>(chunks_.size()), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const Chunk& c = chunks_[i];
      // Decoupled weight decay (Loshchilov & Hutter) on matrices only.
      const double k = c.decay ? keep : 1.0;
      float* p = values.data() + c.offset;
      const float* g = grads.data() + c.offset;
      if (cfg_.bf16_moments)
        adamw_update(sc, k, p, g, m16_.data() + c.offset, v16_.data() + c.offset, c.numel);
      else
        adamw_update(sc, k, p, g, m32_.data() + c.offset, v32_.data() + c.offset, c.numel);
    }
  });
}

std::vector<float> AdamW::exp_avg() const {
  if (!cfg_.bf16_moments) return m32_;
  std::vector<float> out(m16_.size());
  bf16_to_f32(m16_.data(), out.data(), static_cast<int64_t>(out.size()));
  return out;
}

std::vector<float> AdamW::exp_avg_sq() const {
  if (!cfg_.bf16_moments) return v32_;
  std::vector<float> out(v16_.size());
  bf16_to_f32(v16_.data(), out.data(), static_cast<int64_t>(out.size()));
  return out;
}

void AdamW::check(const ParamStore& ps) const {
  layout_.check_same(ArenaLayout::of(ps), "optimizer state");
}

void AdamW::save(const std::string& path) const {
  const void* m = cfg_.bf16_moments ? static_cast<const void*>(m16_.data()) : m32_.data();
  const void* v = cfg_.bf16_moments ? static_cast<const void*>(v16_.data()) : v32_.data();
  state_writer(layout_, cfg_, step_, m, v).write(path);
}

void AdamW::load(const std::string& path) {
  SafetensorsFile f(path);
  const Json& meta = f.metadata();
  const Json* format = meta.find("format");
  DSV3_CHECK(format && format->as_string() == kFormat,
             path + ": not an AdamW state file (metadata format is not " + kFormat + ")");
  const Json* step = meta.find("step");
  const Json* layout = meta.find("layout");
  DSV3_CHECK(step && layout, path + ": metadata lacks the step count or the layout");
  int64_t steps = 0;
  try {
    steps = Json::parse(step->as_string(), path + " step").as_int(path + ": step");
  } catch (const Error&) {
    throw Error(path + ": metadata step '" + step->as_string() + "' is not an integer");
  }
  DSV3_CHECK(steps >= 0, path + ": negative step count " + std::to_string(steps));
  ArenaLayout l = ArenaLayout::from_json(Json::parse(layout->as_string(), path + " layout"), path);
  l.check_same(layout_, path);
  // Read both before changing anything: a bad second tensor leaves the optimizer as it was.
  std::vector<float> mv[2];
  const char* names[2] = {"exp_avg", "exp_avg_sq"};
  for (int k = 0; k < 2; ++k) {
    const TensorInfo* t = f.find(names[k]);
    DSV3_CHECK(t, path + ": tensor " + names[k] + " is missing");
    DSV3_CHECK(
        t->shape == Shape{layout_.numel} && (t->dtype == DType::BF16 || t->dtype == DType::F32),
        path + ": tensor " + names[k] + " is " + std::string(dtype_name(t->dtype)) + " " +
            shape_str(t->shape) + ", expected BF16 or F32 [" + std::to_string(layout_.numel) + "]");
    mv[k].resize(static_cast<size_t>(layout_.numel));
    const std::span<const std::byte> d = f.data(*t);
    if (t->dtype == DType::F32) {
      std::memcpy(mv[k].data(), d.data(), d.size());
    } else {
      std::vector<uint16_t> h(mv[k].size());
      std::memcpy(h.data(), d.data(), d.size());
      bf16_to_f32(h.data(), mv[k].data(), static_cast<int64_t>(h.size()));
    }
  }
  set_state(mv[0], mv[1], steps);
}

void AdamW::set_state(std::span<const float> m, std::span<const float> v, int64_t steps) {
  check_arena(layout_, m.size(), "AdamW::set_state exp_avg");
  check_arena(layout_, v.size(), "AdamW::set_state exp_avg_sq");
  DSV3_CHECK(steps >= 0, "AdamW::set_state: negative step count " + std::to_string(steps));
  step_ = steps;
  if (cfg_.bf16_moments) {
    f32_to_bf16(m.data(), m16_.data(), layout_.numel);
    f32_to_bf16(v.data(), v16_.data(), layout_.numel);
  } else {
    m32_.assign(m.begin(), m.end());
    v32_.assign(v.begin(), v.end());
  }
}

}  // namespace dsv3

// Random initialisation and write_random_model: a complete HF folder, streamed tensor by tensor.
#include "model/random_init.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "base/error.h"
#include "base/file.h"
#include "base/progress.h"
#include "base/rng.h"
#include "model/weights.h"
#include "tensor/block_scale.h"
#include "tensor/convert.h"
#include "tensor/safetensors_folder.h"

namespace dsv3 {
namespace {

constexpr int64_t kChunk = int64_t{1} << 16;  // elements per independently seeded stream

uint64_t fnv1a64(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char ch : s) h = (h ^ ch) * 0x100000001b3ull;
  return h;
}

uint64_t mix64(uint64_t x) {  // splitmix64's finaliser
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Fills out[0, n) of chunk `chunk` of the tensor's stream.
void fill_chunk(const ParamSpec& p, uint64_t stream, int64_t chunk, float* out, int64_t n) {
  if (p.init == ParamInit::Ones || p.init == ParamInit::Zeros) {
    std::fill(out, out + n, p.init == ParamInit::Ones ? 1.0f : 0.0f);
    return;
  }
  Rng rng(mix64(stream ^ mix64(static_cast<uint64_t>(chunk) + 0x9E3779B97F4A7C15ull)));
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(rng.normal(0.0, kInitStd));
}

uint64_t stream_of(const ParamSpec& p, uint64_t seed) {
  return mix64(seed) ^ fnv1a64(p.copy_of.empty() ? p.name : p.copy_of);
}

// Runs fn(chunk, begin, count) over the tensor's chunks on the pool.
template <typename Fn>
void for_chunks(int64_t numel, ThreadPool& pool, Fn fn) {
  int64_t chunks = (numel + kChunk - 1) / kChunk;
  pool.parallel_for(chunks, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) fn(c, c * kChunk, std::min(kChunk, numel - c * kChunk));
  });
}

Shape scale_shape(const ParamSpec& p) {
  return scale_shape_128x128(p.shape[0], p.shape[1]);
}

Json generation_config(const ModelConfig& c) {
  Json g = Json::object();
  g["_from_model_config"] = true;
  if (c.bos_token_id >= 0) g["bos_token_id"] = c.bos_token_id;
  if (c.eos_token_id >= 0) g["eos_token_id"] = c.eos_token_id;
  // DeepSeek's recommended sampling for V3 / R1 releases.
  g["do_sample"] = true;
  g["temperature"] = 0.6;
  g["top_p"] = 0.95;
  return g;
}

}  // namespace

void random_param_f32(const ParamSpec& p, uint64_t seed, float* out, ThreadPool& pool) {
  uint64_t stream = stream_of(p, seed);
  for_chunks(shape_numel(p.shape), pool, [&](int64_t c, int64_t begin, int64_t n) {
    fill_chunk(p, stream, c, out + begin, n);
  });
}

void fill_random_param(const ParamSpec& p, uint64_t seed, DType dtype, std::byte* dst,
                       ThreadPool& pool) {
  if (dtype == DType::F32) {
    random_param_f32(p, seed, reinterpret_cast<float*>(dst), pool);
    return;
  }
  uint64_t stream = stream_of(p, seed);
  size_t esize = dtype_size(dtype);
  for_chunks(shape_numel(p.shape), pool, [&](int64_t c, int64_t begin, int64_t n) {
    std::vector<float> tmp(static_cast<size_t>(n));
    fill_chunk(p, stream, c, tmp.data(), n);
    convert_from_f32(dtype, tmp.data(), dst + static_cast<size_t>(begin) * esize, n);
  });
}

uint64_t random_model_bytes(const ModelConfig& c, DType dtype) {
  uint64_t total = 0;
  for (const ParamSpec& p : param_table(c)) {
    DType dt = storage_dtype(p, dtype);
    total += static_cast<uint64_t>(shape_numel(p.shape)) * dtype_size(dt);
    if (dt == DType::F8_E4M3) total += static_cast<uint64_t>(shape_numel(scale_shape(p))) * 4;
  }
  return total;
}

void write_random_model(const ModelConfig& config, const std::string& dir, uint64_t seed,
                        DType dtype) {
  if (dtype != DType::F32 && dtype != DType::BF16 && dtype != DType::F16 && dtype != DType::F8_E4M3)
    throw Error("write_random_model: dtype " + std::string(dtype_name(dtype)) +
                " is not supported (F32, BF16, F16 or F8_E4M3)");
  ModelConfig c = config;
  c.fp8_weights = dtype == DType::F8_E4M3;
  c.torch_dtype = dtype == DType::F32 ? "float32" : dtype == DType::F16 ? "float16" : "bfloat16";

  auto pool = std::make_shared<ThreadPool>(ThreadPool::default_threads());
  ShardedWriter writer;
  writer.set_metadata("format", "pt");  // what HF's save_pretrained writes
  for (const ParamSpec& p : param_table(c)) {
    DType dt = storage_dtype(p, dtype);
    if (dt != DType::F8_E4M3) {
      writer.add(p.name, dt, p.shape, [p, seed, dt, pool](std::byte* dst) {
        fill_random_param(p, seed, dt, dst, *pool);
      });
      continue;
    }
    // SPEC §3.2: E4M3 weight + F32 weight_scale_inv. Fills run in order, so the weight's fill
    // leaves the scales for the scale tensor's fill right after it.
    auto scales = std::make_shared<std::vector<float>>();
    writer.add(p.name, dt, p.shape, [p, seed, pool, scales](std::byte* dst) {
      std::vector<float> w(static_cast<size_t>(shape_numel(p.shape)));
      random_param_f32(p, seed, w.data(), *pool);
      scales->assign(static_cast<size_t>(shape_numel(scale_shape(p))), 0.0f);
      quantize_e4m3_128x128(w.data(), p.shape[0], p.shape[1], reinterpret_cast<uint8_t*>(dst),
                            scales->data());
    });
    writer.add(p.name + "_scale_inv", DType::F32, scale_shape(p), [scales](std::byte* dst) {
      std::memcpy(dst, scales->data(), scales->size() * sizeof(float));
      scales->clear();
      scales->shrink_to_fit();
    });
  }

  ProgressBar bar("writing " + dir, writer.data_bytes(), "bytes", ProgressBar::Offline::Lines);
  writer.write(dir, &bar);
  bar.finish();
  // config.json last: a folder whose weights failed to write (disk full, kill) has none, so it is
  // never taken for a model.
  write_file_atomic(path_join(dir, "generation_config.json"), generation_config(c).dump(2) + "\n");
  write_file_atomic(path_join(dir, "config.json"), config_to_json(c).dump(2) + "\n");
}

}  // namespace dsv3

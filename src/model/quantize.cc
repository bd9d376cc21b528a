// dsv3 quantize's library side: the recipes and the quantized folder writer (quantize.h).
#include "model/quantize.h"

#include <cstring>
#include <memory>
#include <vector>

#include "base/error.h"
#include "base/file.h"
#include "base/progress.h"
#include "tensor/convert.h"
#include "tensor/safetensors_folder.h"

namespace dsv3 {
namespace {

bool quantizable(const ParamSpec& p) {
  return p.shape.size() == 2 && p.shape[1] % 32 == 0 && !p.keep_f32 &&
         !p.name.ends_with("mlp.gate.weight");
}

// Rows [r0, r1) of p's value as float32 into f, quantized into the tensor's buffers.
void quantize_rows(const Param& p, const BlockFormatTraits& f, int64_t r0, int64_t r1, std::byte* q,
                   uint16_t* scale, uint16_t* min) {
  const int64_t cols = p.value.cols, blocks = cols / 32;
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t r = r0; r < r1; ++r) {
    weight_block_f32(p.value, r, 1, 0, cols, row.data());
    f.quantize_row(row.data(), cols, q + r * f.quant_row_bytes(cols), scale + r * blocks,
                   min ? min + r * blocks : nullptr);
  }
}

}  // namespace

std::optional<QuantType> quant_type_from_name(std::string_view name) {
  for (QuantType t : {QuantType::BF16, QuantType::Q8_0, QuantType::Q4_0, QuantType::Q4_Mixed})
    if (name == quant_type_name(t)) return t;
  return std::nullopt;
}

const char* quant_type_name(QuantType t) {
  switch (t) {
    case QuantType::BF16:
      return "bf16";
    case QuantType::Q8_0:
      return "q8_0";
    case QuantType::Q4_0:
      return "q4_0";
    case QuantType::Q4_Mixed:
      return "q4_mixed";
  }
  return "?";
}

std::optional<BlockFormat> quant_format_for(const ParamSpec& p, QuantType t) {
  if (t == QuantType::BF16 || !quantizable(p)) return std::nullopt;
  if (t == QuantType::Q8_0) return BlockFormat::Q8_0;
  if (t == QuantType::Q4_0) return BlockFormat::Q4_0;
  return p.name.find(".mlp.") != std::string::npos ? BlockFormat::Q4_1 : BlockFormat::Q8_0;
}

uint64_t quantized_model_bytes(const ParamStore& store, QuantType t) {
  uint64_t n = 0;
  for (const Param& p : store.all()) {
    const auto f = quant_format_for(*p.spec, t);
    const BlockFormatTraits* tr = f ? &block_format_traits(*f) : nullptr;
    n += tr ? static_cast<uint64_t>(p.numel / tr->block_cols) * tr->bytes_per_block
            : static_cast<uint64_t>(p.numel) * dtype_size(storage_dtype(*p.spec, DType::BF16));
  }
  return n;
}

void write_quantized_model(const ParamStore& store, const std::string& dir, QuantType t,
                           ThreadPool& pool) {
  if (t == QuantType::BF16) return store.save(dir, DType::BF16);
  ModelConfig c = store.config();
  c.fp8_weights = false;
  c.block_quant = quant_type_name(t);
  c.torch_dtype = "bfloat16";
  ShardedWriter writer;
  writer.set_metadata("format", "pt");
  for (const Param& p : store.all()) {
    const ParamSpec& s = *p.spec;
    const auto fmt = quant_format_for(s, t);
    if (!fmt) {
      const DType dt = storage_dtype(s, DType::BF16);
      writer.add(s.name, dt, s.shape, [&p, dt](std::byte* dst) {
        std::vector<float> f(static_cast<size_t>(p.numel));
        weight_block_f32(p.value, 0, p.value.rows, 0, p.value.cols, f.data());
        convert_from_f32(dt, f.data(), dst, p.numel);
      });
      continue;
    }
    // The quants' fill computes the scales (and minimums) too and leaves them for the next
    // fills (the writer fills in order).
    const BlockFormatTraits& f = block_format_traits(*fmt);
    const int64_t rows = p.value.rows, blocks = p.value.cols / 32;
    auto scales = std::make_shared<std::vector<uint16_t>>();
    auto mins = std::make_shared<std::vector<uint16_t>>();
    writer.add(s.name, f.quant_dtype, {rows, p.value.cols / f.values_per_elem},
               [&p, &f, &pool, scales, mins, rows, blocks](std::byte* dst) {
                 scales->assign(static_cast<size_t>(rows * blocks), 0);
                 if (f.has_min) mins->assign(static_cast<size_t>(rows * blocks), 0);
                 pool.parallel_for(rows, [&](int64_t r0, int64_t r1) {
                   quantize_rows(p, f, r0, r1, dst, scales->data(),
                                 f.has_min ? mins->data() : nullptr);
                 });
               });
    const auto copy = [](std::shared_ptr<std::vector<uint16_t>> v) {
      return [v](std::byte* dst) { std::memcpy(dst, v->data(), v->size() * sizeof(uint16_t)); };
    };
    writer.add(s.name + "_scale", DType::F16, {rows, blocks}, copy(scales));
    if (f.has_min) writer.add(s.name + "_min", DType::F16, {rows, blocks}, copy(mins));
  }
  ProgressBar bar("quantizing to " + std::string(quant_type_name(t)), writer.data_bytes(), "bytes",
                  ProgressBar::Offline::Lines);
  writer.write(dir, &bar);
  bar.finish();
  write_file_atomic(path_join(dir, "config.json"), config_to_json(c).dump(2) + "\n");
}

}  // namespace dsv3

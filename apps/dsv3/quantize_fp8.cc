// FP8 checkpoint writers (see quantize_fp8.h).
#include "apps/dsv3/quantize_fp8.h"

#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "apps/dsv3/convert_folder.h"
#include "base/error.h"
#include "tensor/convert.h"
#include "tensor/fp8_tiles.h"
#include "tensor/safetensors.h"

namespace dsv3::cli {

void quantize_folder_fp8(const std::string& in, const std::string& out, bool force) {
  // storage_dtype(spec, F8_E4M3) picks the official set (ParamSpec::fp8_able, SPEC §6 '*').
  convert_folder(in, out, DType::F8_E4M3, force);
}

int quantize_file_1x128(const std::string& in, const std::string& out, bool pow2) {
  DSV3_CHECK(in != out, "quantize: -o " + out + " is the file being read",
             "write the quantized tensors to another file");
  SafetensorsFile f(in);
  SafetensorsWriter w;
  int quantized = 0;
  for (const TensorInfo& t : f.tensors()) {
    const auto bytes = f.data(t);
    if (t.dtype != DType::F32 || t.shape.size() != 2) {
      w.add_bytes(t.name, t.dtype, t.shape, bytes);
      continue;
    }
    DSV3_CHECK(!f.find(t.name + "_scale_inv"),
               "quantize: " + in + " already holds " + t.name + "_scale_inv",
               "the output would hold two tensors of that name; rename one");
    const int64_t rows = t.shape[0], cols = t.shape[1];
    std::vector<float> x(static_cast<size_t>(rows * cols));
    std::memcpy(x.data(), bytes.data(), x.size() * sizeof(float));
    auto q = std::make_shared<Fp8Tiles>();
    quantize_e4m3_tiles(x.data(), rows, cols, cols, 1, 128, pow2, *q);
    w.add(t.name, DType::F8_E4M3, t.shape,
          [q](std::byte* dst) { std::memcpy(dst, q->q.data(), q->q.size()); });
    w.add(t.name + "_scale_inv", DType::F32, {rows, q->tiles_c()}, [q](std::byte* dst) {
      std::memcpy(dst, q->scale.data(), q->scale.size() * sizeof(float));
    });
    ++quantized;
  }
  w.set_metadata("quantization", pow2 ? "e4m3 1x128 ue8m0" : "e4m3 1x128");
  w.write(out);
  return quantized;
}

}  // namespace dsv3::cli

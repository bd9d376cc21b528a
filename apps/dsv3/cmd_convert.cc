// dsv3 convert: a model folder written again, as stored or in another dtype (SPEC §3.2, §6).
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "apps/dsv3/commands.h"
#include "apps/dsv3/convert_folder.h"
#include "apps/dsv3/output_folder.h"
#include "base/error.h"
#include "base/file.h"
#include "base/strings.h"
#include "base/timer.h"
#include "model/param_store.h"
#include "model/weights.h"
#include "tensor/block_scale.h"

namespace dsv3::cli {
namespace {

constexpr const char* kUsage =
    R"(usage: dsv3 convert -m IN_DIR -o OUT_DIR [--dtype same|f32|bf16|f16|fp8] [--force]

Reads a Hugging Face model folder and writes it again as a new folder: config.json and
model.safetensors (model-0000i-of-0000N.safetensors shards plus model.safetensors.index.json
above 2 GB) with every tensor of the model under its own name; the MTP module's copies of the
embedding and the output head are written as copies even where the input left them out.
tokenizer.json, tokenizer_config.json and generation_config.json are copied when the input has
them; other files (README, licence) are not.

  -m, --model DIR    the folder to read (config.json + *.safetensors); every tensor the config
                     needs is checked (name, shape, dtype, FP8 scales) before anything is written
  -o, --output DIR   the folder to write; it must be empty or absent unless --force, and it is
                     never the input folder (nor a path or link that resolves to it)
  --dtype D          the storage dtype of the output:
                       same   every tensor's bytes as read, FP8 scales included (default): the
                              new folder loads bit-identical to the old one
                       f32, bf16, f16
                              every tensor converted (FP8 dequantised with its block scales,
                              then rounded to nearest even)
                       fp8    DeepSeek's FP8 layout: every Linear weight as F8_E4M3 with a
                              float32 weight_scale_inv per 128x128 block, the rest bf16 (an FP8
                              input keeps its bytes and scales)
                     the router's correction bias stays f32 whatever the dtype
  --force            write into a non-empty folder: its old model*.safetensors, index,
                     config.json (and the copied files above) are replaced

The disk must have room for the new weights before a byte is written. The new files are written
into a staging folder inside OUT_DIR (dsv3-tmp.PID) and replace the old ones only when all are
complete: a failure or a kill on the way leaves the old model loadable, and the next run names
the leftover folder (--force removes it).
)";

// nullopt: "same" (each tensor as stored).
std::optional<DType> parse_dtype(const std::string& s) {
  if (s == "same") return std::nullopt;
  if (s == "f32") return DType::F32;
  if (s == "bf16") return DType::BF16;
  if (s == "f16") return DType::F16;
  if (s == "fp8") return DType::F8_E4M3;
  throw Error("--dtype '" + s + "' is not one of same, f32, bf16, f16, fp8",
              "see dsv3 convert --help");
}

struct OutputSize {
  int64_t tensors = 0;
  uint64_t bytes = 0;  // tensor data, headers excluded
};

// What ParamStore::save / save_as_stored will write (storage_dtype per tensor); each E4M3 matrix
// adds its F32 scales.
OutputSize output_size(const ParamStore& store, std::optional<DType> dtype) {
  OutputSize n;
  for (const Param& p : store.all()) {
    const ParamSpec& s = *p.spec;
    const DType dt = dtype ? storage_dtype(s, *dtype) : p.value.dtype;
    n.tensors += 1;
    n.bytes += static_cast<uint64_t>(p.numel) * dtype_size(dt);
    if (dt != DType::F8_E4M3) continue;
    n.tensors += 1;
    n.bytes += static_cast<uint64_t>(shape_numel(scale_shape_128x128(s.shape[0], s.shape[1]))) *
               sizeof(float);
  }
  return n;
}

}  // namespace

ConvertResult convert_folder(const std::string& in, const std::string& out,
                             std::optional<DType> dtype, bool force) {
  check_not_input_folder(in, out);

  Timer timer;
  ModelWeights w = ModelWeights::load(in);
  ParamStore store(w);
  ModelOutput output(out, force);
  OutputSize size = output_size(store, dtype);
  output.check_free_space(size.bytes, "free some space or choose another folder");

  // Every check above passed. The new folder is written in full beside the old files, which go
  // only at the end (commit): a failure on the way leaves the old model as it was. A file the
  // input lacks is removed from the output: with --force, an old one would not belong to this
  // model.
  output.begin();
  const std::vector<std::string> lacking = copy_model_side_files(in, output.staging());
  if (dtype)
    store.save(output.staging(), *dtype);
  else
    store.save_as_stored(output.staging());
  output.commit(lacking);
  std::printf("converted %s to %s: %lld tensors, %s (%s) in %.1f s\n", in.c_str(), out.c_str(),
              static_cast<long long>(size.tensors), human_bytes(size.bytes).c_str(),
              dtype ? std::string(dtype_name(*dtype)).c_str() : "as stored", timer.seconds());
  return {size.tensors, size.bytes};
}

int cmd_convert(Args& a) {
  if (a.help()) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  std::string in = a.require({"-m", "--model"}, "the model folder to read");
  std::string out = a.require({"-o", "--output"}, "the folder to write");
  std::string dtype_arg = a.get_or({"--dtype"}, "same");
  bool force = a.flag({"--force"});
  a.finish();

  convert_folder(in, out, parse_dtype(dtype_arg), force);
  return 0;
}

}  // namespace dsv3::cli

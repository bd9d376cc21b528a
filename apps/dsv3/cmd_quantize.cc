// dsv3 quantize: a model folder written again with quantized weights. Thin: the arguments and one
// switch over the type; the block formats' writer is model/quantize.h (docs/QUANTIZATION.md), the
// FP8 one quantize_fp8.h (docs/FP8.md).
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "apps/dsv3/commands.h"
#include "apps/dsv3/output_folder.h"
#include "apps/dsv3/quantize_fp8.h"
#include "base/error.h"
#include "base/strings.h"
#include "base/thread_pool.h"
#include "base/timer.h"
#include "model/param_store.h"
#include "model/quantize.h"
#include "model/weights.h"

namespace dsv3::cli {
namespace {

constexpr const char* kUsage =
    R"(usage: dsv3 quantize -m IN -o OUT --type bf16|q8_0|q4_0|q4_mixed|fp8 [--force]
                     [-t N] [--block 128x128|1x128] [--scale f32|ue8m0]

Writes a Hugging Face model folder with quantized weights that every dsv3 command loads
memory-mapped (never copied).

Block formats (docs/QUANTIZATION.md): each quantized matrix NAME as its quants (I8 for q8_0; U8
with two 4-bit values a byte for q4_0 / q4_1) beside NAME_scale (F16, one per 32 values of a row)
and, for q4_1, NAME_min (F16), and config.json's quantization_config {"quant_method":
"dsv3_blocks", "fmt": TYPE, "block_size": 32, "scale_dtype": "F16"}.

FP8 (docs/FP8.md): DeepSeek's FP8 checkpoint format, E4M3 with float32 inverse scales
(SPEC §3.2).

  -m, --model IN     the folder to read (any dtype dsv3 loads, FP8 and quantized included: the
                     weights are dequantized to float32 first), or with --block 1x128 one
                     .safetensors file
  -o, --output OUT   the folder (or file, with --block 1x128) to write; it must be empty or
                     absent unless --force, and it is never the input folder
  --type T           the recipe:
                       bf16      every matrix BF16, no blocks (as dsv3 convert --dtype bf16)
                       q8_0      every quantizable matrix Q8_0 (8.5 bits per weight)
                       q4_0      every quantizable matrix Q4_0 (4.5 bits), the embedding and the
                                 LM head included (the seed's recipe: 4-bit everywhere)
                       q4_mixed  the FFNs (dense MLPs, routed and shared experts) Q4_1 (5 bits:
                                 scale and minimum per 32), the rest Q8_0: attention projections,
                                 embedding, LM head and MTP eh_proj, the parts most sensitive to
                                 error and a small share of the bytes a token reads
                       fp8       every Linear weight the official release quantizes (not
                                 embed_tokens, lm_head, norms, mlp.gate, the gate bias, eh_proj,
                                 shared_head) as F8_E4M3 with NAME_scale_inv F32 per 128x128
                                 block, the rest BF16; config.json gains quantization_config
                                 (every other value kept)
                     block formats: a quantizable matrix has a multiple of 32 columns, except the
                     MoE router (mlp.gate, kept BF16: a changed expert choice costs more than it
                     saves); vectors stay BF16 and the router's correction bias F32
  --force            write into a non-empty folder (its old model files are replaced)
  -t, --threads N    worker threads for the block formats (default: physical cores)
  --block B          fp8 only. 128x128 (default): the model folder above. 1x128: each 2-D F32
                     tensor NAME of the file IN becomes NAME (F8_E4M3) and NAME_scale_inv (F32
                     [rows, ceil(cols/128)]) by the FP8 training recipe's activation quantizer
                     (s = max(amax, 1e-4) / 448 per 1x128 tile, q = e4m3(x/s), nearest even,
                     saturating); other tensors are copied
  --scale S          fp8 with --block 1x128: f32 scales (default) or ue8m0 (powers of two,
                     2^ceil(log2 s))

tokenizer.json, tokenizer_config.json and generation_config.json are copied when the input has
them. The disk must have room for the new weights first; the files are staged inside OUT and
replace the old ones only when all are complete.
)";

// --type fp8: DeepSeek's folder, or one tensor file in 1x128 tiles.
void quantize_fp8(const std::string& in, const std::string& out, const std::string& block,
                  const std::string& scale, bool force) {
  DSV3_CHECK(scale == "f32" || scale == "ue8m0", "--scale must be f32 or ue8m0",
             "see dsv3 quantize --help");
  if (block == "128x128") {
    DSV3_CHECK(scale == "f32", "--scale ue8m0 is for --block 1x128",
               "DeepSeek's checkpoints keep float32 block scales");
    quantize_folder_fp8(in, out, force);
  } else if (block == "1x128") {
    const int n = quantize_file_1x128(in, out, scale == "ue8m0");
    std::printf("quantized %d tensors of %s into %s (E4M3, 1x128 tiles, %s scales)\n", n,
                in.c_str(), out.c_str(), scale.c_str());
  } else {
    throw Error("--block '" + block + "' is not 128x128 or 1x128", "see dsv3 quantize --help");
  }
}

// The block formats (model/quantize.h).
void quantize_blocks(const std::string& in, const std::string& out, QuantType type,
                     const std::string& type_arg, bool force, int threads) {
  check_not_input_folder(in, out);
  Timer timer;
  ModelWeights w = ModelWeights::load(in);
  ParamStore store(w);
  ModelOutput output(out, force);
  const uint64_t bytes = quantized_model_bytes(store, type);
  output.check_free_space(bytes, "free some space or choose another folder");
  output.begin();
  const std::vector<std::string> lacking = copy_model_side_files(in, output.staging());
  ThreadPool pool(threads);
  write_quantized_model(store, output.staging(), type, pool);
  output.commit(lacking);
  std::printf("quantized %s to %s (%s): %s in %.1f s\n", in.c_str(), out.c_str(), type_arg.c_str(),
              human_bytes(bytes).c_str(), timer.seconds());
}

}  // namespace

int cmd_quantize(Args& a) {
  if (a.help()) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  const std::string in = a.require({"-m", "--model"}, "the model folder (or file) to read");
  const std::string out = a.require({"-o", "--output"}, "the folder (or file) to write");
  const std::string type_arg =
      a.require({"--type"}, "the format: bf16, q8_0, q4_0, q4_mixed or fp8");
  const std::optional<std::string> block = a.get({"--block"});
  const std::optional<std::string> scale = a.get({"--scale"});
  const bool force = a.flag({"--force"});
  const int threads = threads_arg(a);
  a.finish();
  if (type_arg == "fp8") {
    quantize_fp8(in, out, block.value_or("128x128"), scale.value_or("f32"), force);
    return 0;
  }
  const auto type = quant_type_from_name(type_arg);
  DSV3_CHECK(type.has_value(),
             "--type '" + type_arg + "' is not one of bf16, q8_0, q4_0, q4_mixed, fp8",
             "see dsv3 quantize --help");
  DSV3_CHECK(!block && !scale, "--block and --scale are for --type fp8",
             "the block formats have 32-value blocks and F16 scales");
  quantize_blocks(in, out, *type, type_arg, force, threads);
  return 0;
}

}  // namespace dsv3::cli

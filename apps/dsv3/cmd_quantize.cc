// dsv3 quantize: a thin switch over the quantized formats (the writers live in quantize_*.cc).
#include <cstdio>
#include <string>

#include "apps/dsv3/commands.h"
#include "apps/dsv3/quantize_fp8.h"
#include "base/error.h"

namespace dsv3::cli {
namespace {

constexpr const char* kUsage =
    R"(usage: dsv3 quantize -m IN -o OUT --type fp8 [--block 128x128|1x128] [--scale f32|ue8m0]
                     [--force]

  -m, --model IN     a model folder (config.json + *.safetensors, BF16, F32 or FP8), or with
                     --block 1x128 one .safetensors file
  -o, --output OUT   the folder (or file, with --block 1x128) to write
  --type fp8         E4M3 with float32 inverse scales (SPEC §3.2)
  --block B          128x128 (default): DeepSeek's FP8 checkpoint format. Every Linear weight the
                     official release quantizes (not embed_tokens, lm_head, norms, mlp.gate, the
                     gate bias, eh_proj, shared_head) becomes F8_E4M3 with NAME_scale_inv F32 per
                     128x128 block; the rest BF16; config.json gains quantization_config (every
                     other value kept). The folder is written as dsv3 convert writes folders
                     (staged, checked first; --force to replace a non-empty OUT).
                     1x128: each 2-D F32 tensor NAME of the file IN becomes NAME (F8_E4M3) and
                     NAME_scale_inv (F32 [rows, ceil(cols/128)]) by the FP8 training recipe's
                     activation quantizer (s = max(amax, 1e-4) / 448 per 1x128 tile, q = e4m3(x/s),
                     nearest even, saturating); other tensors are copied
  --scale S          with 1x128: f32 scales (default) or ue8m0 (powers of two, 2^ceil(log2 s))
)";

}  // namespace

int cmd_quantize(Args& a) {
  if (a.help()) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  const std::string in = a.require({"-m", "--model"}, "the model folder or file to read");
  const std::string out = a.require({"-o", "--output"}, "the folder or file to write");
  const std::string type = a.require({"--type"}, "the format (fp8)");
  const std::string block = a.get_or({"--block"}, "128x128");
  const std::string scale = a.get_or({"--scale"}, "f32");
  const bool force = a.flag({"--force"});
  a.finish();
  DSV3_CHECK(type == "fp8", "quantize: --type '" + type + "' is not supported here",
             "use --type fp8");
  DSV3_CHECK(scale == "f32" || scale == "ue8m0", "quantize: --scale must be f32 or ue8m0",
             "see dsv3 quantize --help");
  if (block == "128x128") {
    DSV3_CHECK(scale == "f32", "quantize: --scale ue8m0 is for --block 1x128",
               "DeepSeek's checkpoints keep float32 block scales");
    quantize_folder_fp8(in, out, force);
  } else if (block == "1x128") {
    const int n = quantize_file_1x128(in, out, scale == "ue8m0");
    std::printf("quantized %d tensors of %s into %s (E4M3, 1x128 tiles, %s scales)\n", n,
                in.c_str(), out.c_str(), scale.c_str());
  } else {
    throw Error("quantize: --block '" + block + "' is not 128x128 or 1x128",
                "see dsv3 quantize --help");
  }
  return 0;
}

}  // namespace dsv3::cli

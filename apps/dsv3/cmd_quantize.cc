// dsv3 quantize: a model folder written again with block-quantized weights (model/quantize.h,
// docs/QUANTIZATION.md). Thin: the arguments, the output folder's checks, then the library.
#include <cstdio>
#include <string>
#include <vector>

#include "apps/dsv3/commands.h"
#include "apps/dsv3/output_folder.h"
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
    R"(usage: dsv3 quantize -m IN_DIR -o OUT_DIR --type bf16|q8_0|q4_0|q4_mixed [--force]

Writes a Hugging Face model folder with block-quantized weights that every dsv3 command loads
memory-mapped (never copied): each quantized matrix NAME as its quants (I8 for q8_0; U8 with two
4-bit values a byte for q4_0 / q4_1) beside NAME_scale (F16, one per 32 values of a row) and,
for q4_1, NAME_min (F16), and config.json's quantization_config {"quant_method": "dsv3_blocks",
"fmt": TYPE, "block_size": 32, "scale_dtype": "F16"} (docs/QUANTIZATION.md).

  -m, --model DIR    the folder to read (any dtype dsv3 loads, FP8 and quantized included: the
                     weights are dequantized to float32 first)
  -o, --output DIR   the folder to write; it must be empty or absent unless --force, and it is
                     never the input folder
  --type T           the recipe:
                       bf16      every matrix BF16, no blocks (as dsv3 convert --dtype bf16)
                       q8_0      every quantizable matrix Q8_0 (8.5 bits per weight)
                       q4_0      every quantizable matrix Q4_0 (4.5 bits), the embedding and the
                                 LM head included (the seed's recipe: 4-bit everywhere)
                       q4_mixed  the FFNs (dense MLPs, routed and shared experts) Q4_1 (5 bits:
                                 scale and minimum per 32), the rest Q8_0: attention projections,
                                 embedding, LM head and MTP eh_proj, the parts most sensitive to
                                 error and a small share of the bytes a token reads
                     quantizable: a matrix with a multiple of 32 columns, except the MoE router
                     (mlp.gate, kept BF16: a changed expert choice costs more than it saves);
                     vectors stay BF16 and the router's correction bias F32
  --force            write into a non-empty folder (its old model files are replaced)
  -t, --threads N    worker threads for the quantization (default: physical cores)

tokenizer.json, tokenizer_config.json and generation_config.json are copied when the input has
them. The disk must have room for the new weights first; the files are staged inside OUT_DIR and
replace the old ones only when all are complete.
)";

}  // namespace

int cmd_quantize(Args& a) {
  if (a.help()) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  const std::string in = a.require({"-m", "--model"}, "the model folder to read");
  const std::string out = a.require({"-o", "--output"}, "the folder to write");
  const std::string type_arg = a.require({"--type"}, "the format: bf16, q8_0, q4_0 or q4_mixed");
  const bool force = a.flag({"--force"});
  const int threads = threads_arg(a);
  a.finish();
  const auto type = quant_type_from_name(type_arg);
  DSV3_CHECK(type.has_value(), "--type '" + type_arg + "' is not one of bf16, q8_0, q4_0, q4_mixed",
             "see dsv3 quantize --help");
  check_not_input_folder(in, out);

  Timer timer;
  ModelWeights w = ModelWeights::load(in);
  ParamStore store(w);
  ModelOutput output(out, force);
  const uint64_t bytes = quantized_model_bytes(store, *type);
  output.check_free_space(bytes, "free some space or choose another folder");
  output.begin();
  const std::vector<std::string> lacking = copy_model_side_files(in, output.staging());
  ThreadPool pool(threads);
  write_quantized_model(store, output.staging(), *type, pool);
  output.commit(lacking);
  std::printf("quantized %s to %s (%s): %s in %.1f s\n", in.c_str(), out.c_str(), type_arg.c_str(),
              human_bytes(bytes).c_str(), timer.seconds());
  return 0;
}

}  // namespace dsv3::cli

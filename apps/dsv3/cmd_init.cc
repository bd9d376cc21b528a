// dsv3 init: a Hugging Face model folder with random weights (SPEC §1.2, §6).
#include <cstdio>
#include <optional>
#include <string>

#include "apps/dsv3/commands.h"
#include "apps/dsv3/output_folder.h"
#include "apps/dsv3/tokenizer_assets.h"
#include "base/error.h"
#include "base/file.h"
#include "base/strings.h"
#include "base/timer.h"
#include "model/config.h"
#include "model/param_table.h"
#include "model/presets.h"
#include "model/weights.h"

namespace dsv3::cli {
namespace {

constexpr const char* kUsage =
    R"(usage: dsv3 init (--preset NAME | --config config.json) -o DIR [options]

Writes a complete Hugging Face model folder with random weights: config.json,
generation_config.json and model.safetensors (model-0000i-of-0000N.safetensors shards plus
model.safetensors.index.json above 2 GB), with the tensor names and shapes of the real releases.
Weights are N(0, 0.006), norm weights 1, the router's correction bias 0 (DeepSeek-V3 report §4.2).
A tensor's values depend only on the seed and its name.

  --preset NAME        a built-in shape (list below)
  --config FILE        any supported config.json (deepseek_v3, deepseek_v2, qwen2, llama)
  -o, --output DIR     the folder to create; it must be empty or absent unless --force
  --seed N             random seed (default 0)
  --dtype bf16|f32     storage dtype (default bf16; the router's correction bias is always f32)
  --fp8                store every Linear weight as F8_E4M3 with a float32 weight_scale_inv per
                       128x128 block, the rest bf16, as DeepSeek's FP8 releases do
  --tokenizer DIR      copy tokenizer.json and tokenizer_config.json from DIR (default: the
                       preset's own tokenizer: the committed dsv3-en-4k / dsv3-en-16k for tiny /
                       small, the published ones fetched by scripts/fetch-assets.sh for the real
                       shapes; searched under $DSV3_ASSETS, else the source tree). A preset
                       whose tokenizer is not there is refused unless --no-tokenizer
  --no-tokenizer       write no tokenizer (the folder cannot generate until one is copied in)
  --force              write into a non-empty folder: its old model*.safetensors, index and
                       config.json are replaced once the new model is complete (it is written
                       into DIR/dsv3-tmp.PID first, so a failure leaves the old model loadable;
                       an interrupted run's leftover dsv3-tmp.* is removed)
)";

}  // namespace

int cmd_init(Args& a) {
  if (a.help()) {
    std::fputs(kUsage, stdout);
    std::printf("\npresets:\n");
    for (const PresetInfo& p : presets())
      std::printf("  %-22s %s\n", p.name.c_str(), p.summary.c_str());
    return 0;
  }
  auto preset = a.get({"--preset"});
  auto config_file = a.get({"--config"});
  std::string dir = a.require({"-o", "--output"}, "the folder to create");
  int64_t seed = a.int_or({"--seed"}, 0);
  auto dtype_arg = a.get({"--dtype"});
  bool fp8 = a.flag({"--fp8"});
  bool force = a.flag({"--force"});
  auto tokenizer_dir = a.get({"--tokenizer"});
  bool no_tokenizer = a.flag({"--no-tokenizer"});
  a.finish();
  if (tokenizer_dir && no_tokenizer)
    throw Error("give at most one of --tokenizer and --no-tokenizer");
  if (preset.has_value() == config_file.has_value())
    throw Error("give exactly one of --preset NAME or --config FILE", "see dsv3 init --help");
  if (seed < 0) throw Error("--seed must not be negative");
  DType dtype = DType::BF16;
  if (dtype_arg) {
    if (*dtype_arg == "bf16")
      dtype = DType::BF16;
    else if (*dtype_arg == "f32")
      dtype = DType::F32;
    else
      throw Error("--dtype '" + *dtype_arg + "' is not one of bf16, f32");
  }
  if (fp8) {
    if (dtype_arg && dtype != DType::BF16)
      throw Error("--fp8 stores the non-Linear tensors as bf16; leave out --dtype " + *dtype_arg);
    dtype = DType::F8_E4M3;
  }

  ModelConfig c = preset ? preset_config(*preset) : load_config(*config_file);
  // The tokenizer is found before any weight is written, so a bad --tokenizer costs nothing. A
  // preset whose tokenizer is not installed is refused: a multi-GB folder that cannot generate,
  // with a note that scrolls by, helps nobody; --no-tokenizer asks for exactly that.
  std::optional<std::string> tok_src = tokenizer_dir;
  if (!tokenizer_dir && !no_tokenizer && preset) {
    const std::string name = preset_tokenizer(*preset);
    tok_src = find_tokenizer_dir(name);
    if (!tok_src)
      throw Error("the tokenizer of preset " + *preset + " ('" + name +
                      "') is not installed under " + tokenizer_search_root() +
                      ", so the folder could not tokenize, generate or chat",
                  "run scripts/fetch-assets.sh (it fetches the published tokenizers), pass "
                  "--tokenizer DIR, or pass --no-tokenizer to write the weights alone");
  }
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
    if (tokenizer_dir && !file_exists(path_join(*tokenizer_dir, f)))
      throw Error(*tokenizer_dir + " has no " + f,
                  "pass a folder holding tokenizer.json and tokenizer_config.json");

  // The disk is checked after the tokenizer: a missing tokenizer is the answer whatever the disk.
  ModelOutput output(dir, force);
  uint64_t need = random_model_bytes(c, dtype);
  output.check_free_space(
      need, "free some space, choose another folder, or a smaller --preset / --dtype");

  // Every check above passed. The new model is written in full beside the old files, which go
  // only at the end (commit): a failure or a kill on the way leaves the old model loadable.
  output.begin();
  Timer timer;
  write_random_model(c, output.staging(), static_cast<uint64_t>(seed), dtype);
  if (tok_src) install_tokenizer(*tok_src, output.staging());
  output.commit();
  std::printf("wrote %s: %s %s, %s, %s of %s weights in %.1f s\n", dir.c_str(),
              std::string(arch_name(c.arch)).c_str(),
              preset ? preset->c_str() : config_file->c_str(), parameter_summary(c).c_str(),
              human_bytes(need).c_str(), fp8 ? "fp8" : (dtype == DType::F32 ? "f32" : "bf16"),
              timer.seconds());
  if (tok_src) {
    std::printf("tokenizer from %s\n", tok_src->c_str());
  } else {  // the last line, on stderr too: a folder without a tokenizer must not surprise later
    std::fprintf(stderr,
                 "warning: %s has no tokenizer: tokenize, generate and chat cannot use it until "
                 "tokenizer.json and tokenizer_config.json are copied into it (or run init again "
                 "with --tokenizer DIR)\n",
                 dir.c_str());
  }
  return 0;
}

}  // namespace dsv3::cli

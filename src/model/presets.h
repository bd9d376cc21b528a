// Built-in model shapes for `dsv3 init --preset` and `dsv3 inspect --preset`: the small models this
// project trains (tiny, small) and the exact Hugging Face configs of the real releases (SPEC §1.1,
// §7).
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "model/config.h"

namespace dsv3 {

struct PresetInfo {
  std::string name;       // "tiny", "deepseek-v3", ...
  std::string tokenizer;  // the tokenizer that belongs to it: "dsv3-en-4k", "deepseek-v3", ...
  std::string summary;    // one line for --help and inspect
};

const std::vector<PresetInfo>& presets();
std::vector<std::string> preset_names();
// The preset's config, as parse_config would return it for the release's config.json.
// Throws Error naming the unknown preset and listing the known ones.
ModelConfig preset_config(std::string_view name);
std::string preset_tokenizer(std::string_view name);

}  // namespace dsv3

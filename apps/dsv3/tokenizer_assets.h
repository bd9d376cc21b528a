// Where the CLI finds the tokenizers it installs into new model folders: the small dsv3 tokenizers
// committed under assets/tokenizers/, and the published ones that scripts/fetch-assets.sh puts in
// .cache/assets/. They are searched under one root: $DSV3_ASSETS when set (a tree of the same
// layout, for a dsv3 installed away from its source), else the source tree dsv3 was built from.
#pragma once
#include <optional>
#include <string>

namespace dsv3::cli {

// The folder holding tokenizer.json + tokenizer_config.json for a preset's tokenizer name
// ("dsv3-en-4k", "deepseek-v3", "qwen2.5-r1-distill", ...), or nullopt when it is not present.
std::optional<std::string> find_tokenizer_dir(const std::string& name);
std::string tokenizer_search_root();

// Copies tokenizer.json and tokenizer_config.json from `src_dir` into `model_dir` (atomically).
void install_tokenizer(const std::string& src_dir, const std::string& model_dir);

}  // namespace dsv3::cli

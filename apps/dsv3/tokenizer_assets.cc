#include "apps/dsv3/tokenizer_assets.h"

#include <cstdlib>
#include <vector>

#include "base/error.h"
#include "base/file.h"

namespace dsv3::cli {
namespace {

// Preset tokenizer name -> folder below a search root.
std::vector<std::string> candidates(const std::string& name) {
  if (name == "deepseek-v3") return {".cache/assets/deepseek_v3"};
  if (name == "qwen2.5-r1-distill") return {".cache/assets/qwen2.5-r1-distill"};
  return {"assets/tokenizers/" + name, ".cache/assets/" + name};
}

bool has_tokenizer(const std::string& dir) {
  return file_exists(path_join(dir, "tokenizer.json")) &&
         file_exists(path_join(dir, "tokenizer_config.json"));
}

}  // namespace

std::string tokenizer_search_root() {
  const char* env = std::getenv("DSV3_ASSETS");
  return env && *env ? env : DSV3_SOURCE_DIR;
}

std::optional<std::string> find_tokenizer_dir(const std::string& name) {
  for (const auto& rel : candidates(name)) {
    std::string dir = path_join(tokenizer_search_root(), rel);
    if (has_tokenizer(dir)) return dir;
  }
  return std::nullopt;
}

void install_tokenizer(const std::string& src_dir, const std::string& model_dir) {
  if (!has_tokenizer(src_dir))
    throw Error(src_dir + " has no tokenizer.json and tokenizer_config.json",
                "pass a folder holding both (a Hugging Face model folder will do)");
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
    write_file_atomic(path_join(model_dir, f), read_file(path_join(src_dir, f)));
}

}  // namespace dsv3::cli

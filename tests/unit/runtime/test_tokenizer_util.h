// A small byte-level BPE tokenizer for the runtime tests: vocabulary 300, trained on `line`
// repeated, written to DSV3_BINARY_DIR/NAME (the tests' models have 320 ids, so padding rows past
// the tokenizer are never sampled).
#pragma once
#include <string>

#include "base/file.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::test {

inline Tokenizer train_test_tokenizer(const std::string& name, const std::string& line) {
  const std::string dir = std::string(DSV3_BINARY_DIR) + "/" + name;
  make_dirs(dir);
  std::string text;
  for (int i = 0; i < 20; ++i) text += line + "\n";
  write_file_atomic(path_join(dir, "text.txt"), text);
  BpeTrainOptions opt;
  opt.inputs = {path_join(dir, "text.txt")};
  opt.vocab_size = 300;
  opt.progress = false;
  train_bpe_tokenizer(opt, dir);
  return Tokenizer::load(dir);
}

}  // namespace dsv3::test

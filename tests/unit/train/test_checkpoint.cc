// Checkpoints: a write that fails part-way (a full disk, a crash) leaves the previous checkpoint
// complete, `latest` pointing to it and no temporary folder behind; retention keeps the newest K.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <stdexcept>

#include "base/error.h"
#include "base/file.h"
#include "model/weights.h"
#include "tensor/safetensors.h"
#include "train/checkpoint.h"
#include "train_test_util.h"
#include "unit/tensor/temp_dir.h"

namespace dsv3 {
namespace {

namespace fs = std::filesystem;

TEST(Checkpoint, AFailedWriteLeavesThePreviousOneLoadable) {
  test::TempDir dir;
  test::TinyModel m;
  Json meta = Json::object();
  meta["sampler"] = "00";
  const std::string first = write_checkpoint(dir.path(), 1, *m.store, meta, {}, {}, 2);
  const std::string before = read_file(path_join(first, "model.safetensors"));
  // The trainer's state writer fails as a full disk would, after the model files are written.
  EXPECT_THROW(write_checkpoint(
                   dir.path(), 2, *m.store, meta, {},
                   [](const std::string&) { throw Error("No space left on device"); }, 2),
               Error);
  EXPECT_EQ(latest_checkpoint(dir.path()), first);
  EXPECT_EQ(fs::read_symlink(fs::path(dir.path()) / "checkpoints" / "latest").string(),
            "step-00000001");
  EXPECT_EQ(read_file(path_join(first, "model.safetensors")), before);
  for (const auto& e : fs::directory_iterator(fs::path(dir.path()) / "checkpoints"))
    EXPECT_EQ(e.path().filename().string().rfind(".tmp", 0), std::string::npos) << e.path();
  EXPECT_EQ(CheckpointState(first).step(), 1);
  ModelWeights w = ModelWeights::load(first);  // the previous checkpoint still loads
  EXPECT_EQ(w.config().hidden_size, test::tiny_config().hidden_size);
}

TEST(Checkpoint, KeepsTheNewestK) {
  test::TempDir dir;
  test::TinyModel m;
  const Json meta = Json::object();
  for (int64_t s = 1; s <= 4; ++s) write_checkpoint(dir.path(), s, *m.store, meta, {}, {}, 2);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(fs::path(dir.path()) / "checkpoints"))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"latest", "step-00000003", "step-00000004"}));
  EXPECT_EQ(CheckpointState(latest_checkpoint(dir.path())).step(), 4);
}

}  // namespace
}  // namespace dsv3

// StagedFolder: the old files stay until commit(), which removes the marker first, the stale old
// files, moves the new ones in and the marker last; an uncommitted staging folder is removed, and
// a killed run's is found by find_leftovers.
#include "base/staged_folder.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "base/error.h"
#include "base/file.h"
#include "unit/tensor/temp_dir.h"

namespace dsv3 {
namespace {

namespace fs = std::filesystem;

std::set<std::string> names(const std::string& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

TEST(StagedFolder, TemporaryNames) {
  EXPECT_TRUE(is_temporary_name("dsv3-tmp.1234"));
  EXPECT_TRUE(is_temporary_name("model.safetensors.tmp.1234"));
  EXPECT_TRUE(is_temporary_name("config.json.tmp.1234.7"));
  EXPECT_FALSE(is_temporary_name("model.safetensors"));
  EXPECT_FALSE(is_temporary_name("notes.tmp.txt"));
  EXPECT_FALSE(is_temporary_name("x.tmp."));
}

TEST(StagedFolder, ReplacesOnlyAtCommit) {
  test::TempDir d;
  for (const char* f : {"meta.json", "train-0.bin", "train-1.bin", "README"})
    std::ofstream(d.file(f)) << "old " << f;
  {
    StagedFolder s(d.path());
    write_file_atomic(path_join(s.path(), "train-0.bin"), "new");
    EXPECT_EQ(read_file(d.file("train-0.bin")), "old train-0.bin");
    Leftovers l = find_leftovers(d.path());
    ASSERT_EQ(l.names.size(), 1u);  // what a kill now would leave
    try {
      l.refuse();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("unfinished dsv3 run (dsv3-tmp."), std::string::npos);
      EXPECT_NE(e.hint().find("rm -r '" + path_join(d.path(), l.names[0]) + "'"),
                std::string::npos);
    }
  }  // not committed: the staging folder goes, the old files stay
  EXPECT_EQ(names(d.path()),
            (std::set<std::string>{"README", "meta.json", "train-0.bin", "train-1.bin"}));
  StagedFolder s(d.path());
  write_file_atomic(path_join(s.path(), "train-0.bin"), "new");
  write_file_atomic(path_join(s.path(), "meta.json"), "new meta");
  s.commit("meta.json", [](const std::string& n) { return n != "README"; });
  EXPECT_EQ(names(d.path()), (std::set<std::string>{"README", "meta.json", "train-0.bin"}));
  EXPECT_EQ(read_file(d.file("meta.json")) + read_file(d.file("train-0.bin")), "new metanew");
  EXPECT_TRUE(find_leftovers(d.path()).empty());
}

}  // namespace
}  // namespace dsv3

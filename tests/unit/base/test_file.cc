// read_file and MappedFile refuse what is not a regular file before reading (a FIFO must not hang,
// a directory must not read as empty) and bound what they read; errors name the path and a hint
// that fits the cause.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "base/error.h"
#include "base/file.h"
#include "unit/tensor/temp_dir.h"

namespace dsv3 {
namespace {

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return std::string(e.what()) + " | " + e.hint();
  }
  return "no error";
}

TEST(ReadFile, RegularFileWholeAndBounded) {
  test::TempDir dir;
  const std::string path = dir.file("a.txt");
  std::ofstream(path) << "hello world";
  EXPECT_EQ(read_file(path), "hello world");
  EXPECT_EQ(read_file(path, 11), "hello world");
  const std::string e = error_of([&] { read_file(path, 10); });
  EXPECT_NE(e.find("over the limit of 10 bytes"), std::string::npos) << e;
  std::ofstream(dir.file("empty"));
  EXPECT_EQ(read_file(dir.file("empty")), "");
}

TEST(ReadFile, NonRegularFilesAreRefusedAtOnce) {
  test::TempDir dir;
  const std::string fifo = dir.file("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // Without a writer, opening a FIFO for reading would block forever: refused instead.
  std::string e = error_of([&] { read_file(fifo); });
  EXPECT_NE(e.find("is a FIFO, not a regular file"), std::string::npos) << e;
  e = error_of([&] { MappedFile m(fifo); });
  EXPECT_NE(e.find("is a FIFO"), std::string::npos) << e;
  e = error_of([&] { read_file(dir.path()); });
  EXPECT_NE(e.find("is a directory"), std::string::npos) << e;
  e = error_of([&] { MappedFile m(dir.path()); });
  EXPECT_NE(e.find("is a directory"), std::string::npos) << e;
}

TEST(ReadFile, HintsFitTheCause) {
  test::TempDir dir;
  std::string e = error_of([&] { read_file(dir.file("missing")); });
  EXPECT_NE(e.find("check that the path exists"), std::string::npos) << e;
  if (::geteuid() != 0) {  // root reads whatever the mode says
    const std::string path = dir.file("locked");
    std::ofstream(path) << "x";
    std::filesystem::permissions(path, std::filesystem::perms::none);
    e = error_of([&] { read_file(path); });
    EXPECT_NE(e.find("permissions"), std::string::npos) << e;
    EXPECT_EQ(e.find("exists"), std::string::npos) << e;
  }
}

}  // namespace
}  // namespace dsv3

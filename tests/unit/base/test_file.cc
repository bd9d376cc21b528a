// read_file and MappedFile refuse what is not a regular file before reading (a FIFO must not hang,
// a directory must not read as empty) and bound what they read; errors name the path and a hint
// that fits the cause.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>

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

// write_file_atomic replaces only regular files: a link is followed (the link stays a link), a
// character device or a FIFO with a reader is written through, anything else is refused; and a
// file this process maps as an input is never written over.
namespace fs = std::filesystem;

bool is_link(const std::string& p) {
  return fs::is_symlink(fs::symlink_status(p));
}

TEST(WriteFileAtomic, ReplacesARegularFileKeepingItsMode) {
  test::TempDir dir;
  const std::string path = dir.file("out.txt");
  std::ofstream(path) << "old";
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
  write_file_atomic(path, "new");
  EXPECT_EQ(read_file(path), "new");
  EXPECT_EQ(fs::status(path).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1)
      << "no temporary file is left";
}

TEST(WriteFileAtomic, WritesThroughASymlink) {
  test::TempDir dir;
  fs::create_directories(dir.file("real"));
  std::ofstream(dir.file("real/target.txt")) << "old";
  fs::create_symlink("real/target.txt", dir.file("link.txt"));  // relative to the link's folder
  write_file_atomic(dir.file("link.txt"), "new");
  EXPECT_TRUE(is_link(dir.file("link.txt"))) << "the link was replaced by a file";
  EXPECT_EQ(read_file(dir.file("real/target.txt")), "new");
  // A dangling link: its target is created, the link stays.
  fs::create_symlink(dir.file("real/absent.txt"), dir.file("dangling"));
  write_file_atomic(dir.file("dangling"), "made");
  EXPECT_TRUE(is_link(dir.file("dangling")));
  EXPECT_EQ(read_file(dir.file("real/absent.txt")), "made");
  // A loop is a named error.
  fs::create_symlink(dir.file("loop_b"), dir.file("loop_a"));
  fs::create_symlink(dir.file("loop_a"), dir.file("loop_b"));
  const std::string e = error_of([&] { write_file_atomic(dir.file("loop_a"), "x"); });
  EXPECT_NE(e.find("too many levels of symbolic links"), std::string::npos) << e;
}

TEST(WriteFileAtomic, RefusesDirectoriesAndReaderlessFifos) {
  test::TempDir dir;
  fs::create_directories(dir.file("sub"));
  std::string e = error_of([&] { write_file_atomic(dir.file("sub"), "x"); });
  EXPECT_NE(e.find("is a directory, not a regular file: it is never replaced"), std::string::npos)
      << e;
  EXPECT_TRUE(fs::is_directory(dir.file("sub")));
  const std::string fifo = dir.file("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  e = error_of([&] { write_file_atomic(fifo, "x"); });  // no reader: an error, not a hang
  EXPECT_NE(e.find("is a FIFO that no program is reading"), std::string::npos) << e;
  EXPECT_TRUE(fs::is_fifo(fifo)) << "the FIFO was replaced";
  // Through a link to the FIFO: the same.
  fs::create_symlink(fifo, dir.file("fifo_link"));
  e = error_of([&] { write_file_atomic(dir.file("fifo_link"), "x"); });
  EXPECT_NE(e.find("a link to " + fifo), std::string::npos) << e;
}

TEST(WriteFileAtomic, WritesThroughAFifoWithAReader) {
  test::TempDir dir;
  const std::string fifo = dir.file("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const int rfd = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);  // the reader
  ASSERT_GE(rfd, 0);
  write_file_atomic(fifo, "through");
  char buf[16] = {};
  EXPECT_EQ(::read(rfd, buf, sizeof buf), 7);
  EXPECT_EQ(std::string(buf), "through");
  ::close(rfd);
  EXPECT_TRUE(fs::is_fifo(fifo));
}

TEST(WriteFileAtomic, CharacterDeviceIsWrittenThroughNeverReplaced) {
  if (::geteuid() != 0) GTEST_SKIP() << "mknod needs root";
  test::TempDir dir;
  const std::string node = dir.file("null");  // a node like /dev/null, in the test's own folder
  if (::mknod(node.c_str(), S_IFCHR | 0666, makedev(1, 3)) != 0)
    GTEST_SKIP() << "mknod refused here (no CAP_MKNOD)";
  // On a nodev mount the open fails: an error then, but never a replaced node.
  try {
    write_file_atomic(node, "into the device");
  } catch (const Error&) {
  }
  struct stat st;
  ASSERT_EQ(::lstat(node.c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode)) << "the device node was replaced";
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

TEST(WriteFileAtomic, RefusesAFileMappedAsAnInput) {
  test::TempDir dir;
  const std::string path = dir.file("weights.bin");
  std::ofstream(path) << "weights";
  fs::create_symlink(path, dir.file("alias"));
  {
    MappedFile m(path);
    std::string e = error_of([&] { write_file_atomic(dir.file("alias"), "logits"); });
    EXPECT_NE(e.find("is the input " + path + ", which this command is reading"), std::string::npos)
        << e;
    EXPECT_EQ(read_file(path), "weights");
    EXPECT_EQ(input_file_at(dir.file("alias")), path);
    MappedFile moved = std::move(m);  // still mapped
    e = error_of([&] { write_file_atomic(path, "x"); });
    EXPECT_NE(e.find("is an input"), std::string::npos) << e;
  }
  write_file_atomic(path, "free again");  // no longer mapped: an ordinary rewrite
  EXPECT_EQ(read_file(path), "free again");
  EXPECT_FALSE(input_file_at(dir.file("never_read")).has_value());
  EXPECT_TRUE(same_file(dir.file("alias"), path));
}

TEST(StagedFiles, NothingIsReplacedBeforeCommit) {
  test::TempDir dir;
  std::ofstream(dir.file("a")) << "old a";
  std::ofstream(dir.file("b")) << "old b";
  {
    StagedFiles f;
    f.write(dir.file("a"), "new a");
    EXPECT_EQ(read_file(dir.file("a")), "old a");
    EXPECT_THROW(f.write(dir.file("b"), [](FileWriter&) { throw Error("disk full"); }), Error);
  }  // never committed: both old files intact, no temporary left
  EXPECT_EQ(read_file(dir.file("a")), "old a");
  EXPECT_EQ(read_file(dir.file("b")), "old b");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 2);
  StagedFiles f;
  f.write(dir.file("a"), "new a");
  f.write(dir.file("b"), "new b");
  f.commit();
  EXPECT_EQ(read_file(dir.file("a")) + read_file(dir.file("b")), "new anew b");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 2);
}

// A file laid out by one writer (its head written, the rest reserved as zeros) and filled in place
// by others, never past its end; a patcher refuses what is not a regular file.
TEST(FilePatcher, FillsAReservedFileInPlace) {
  test::TempDir dir;
  const std::string path = dir.file("f");
  write_file_atomic(path, [](FileWriter& w) {
    w.write("head");
    EXPECT_THROW(w.reserve(2), Error);  // below what is written
    w.reserve(10);
  });
  EXPECT_EQ(read_file(path), std::string("head") + std::string(6, '\0'));
  FilePatcher a(path), b(path);
  b.write_at(7, "xyz", 3);
  a.write_at(4, "abc", 3);
  EXPECT_THROW(a.write_at(8, "abc", 3), Error);  // past the end: nothing written
  a.close();
  b.close();
  EXPECT_EQ(a.written(), 3u);
  EXPECT_EQ(read_file(path), "headabcxyz");
  EXPECT_THROW(FilePatcher(dir.path()), Error);
  EXPECT_THROW(FilePatcher(dir.file("missing")), Error);
}

}  // namespace
}  // namespace dsv3

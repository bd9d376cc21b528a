// Files: whole-file reads, read-only memory maps, and atomic writes (temp file + fsync + rename),
// so that a crash mid-write never leaves a half-written file under the final name.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dsv3 {

// Inputs are bounded: a file larger than this is refused with an error naming the limit.
inline constexpr uint64_t kMaxReadBytes = uint64_t{1} << 30;

// The whole of a regular file. Throws Error naming the path for a missing or unreadable file, for
// anything that is not a regular file (a directory, a FIFO, a device: refused before reading, so
// a FIFO cannot hang the program and /dev/zero cannot fill memory) and above `max_bytes`.
std::string read_file(const std::string& path, uint64_t max_bytes = kMaxReadBytes);
bool file_exists(const std::string& path);
uint64_t file_size(const std::string& path);

// A read-only private mapping of a whole file. Opening reads nothing but the pages touched.
class MappedFile {
 public:
  MappedFile() = default;
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<const std::byte> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }

 private:
  void release();
  std::string path_;
  std::byte* data_ = nullptr;
  size_t size_ = 0;
  uint64_t dev_ = 0, ino_ = 0;  // registered as an input being read (input_file_at)
  bool registered_ = false;
};

// Writes `path` atomically: the callback writes into a temporary file in the same directory, which
// is fsynced and renamed over `path` (and the directory fsynced). On any error the temp file is
// removed and the previous content of `path` is untouched.
//
// What `path` names decides how it is written, so that nothing but a regular file is ever replaced:
//   absent or a regular file    temporary file + rename (an existing file keeps its mode);
//   a symbolic link             followed: its target is written by these rules, the link stays;
//   a character device          written through (opened and written; /dev/null, a terminal);
//   a FIFO                      written through when a reader has it open, else an Error (no hang);
//   a directory, block device   an Error naming the path and what it is.
//   or socket
// A file this process has memory-mapped as an input (MappedFile) is never written over: an Error.
class FileWriter {
 public:
  void write(const void* data, size_t n);
  void write(std::string_view s) { write(s.data(), s.size()); }
  // Sizes the file to `size` bytes (>= written()), the disk space reserved now (a full disk fails
  // here, not later); the bytes past what was written read as zero until a FilePatcher fills them.
  void reserve(uint64_t size);
  uint64_t written() const { return written_; }

 private:
  friend class StagedFiles;
  int fd_ = -1;
  std::string tmp_path_;  // the file being written: the temporary, or the target written through
  uint64_t written_ = 0;
};
void write_file_atomic(const std::string& path, const std::function<void(FileWriter&)>& fill);
void write_file_atomic(const std::string& path, std::string_view content);
// Throws the Error write_file_atomic would for what `path` names (a directory, a block device, a
// link loop, a mapped input), so that a command can refuse its output before working for it.
void check_output_path(const std::string& path);

// Writes into an existing regular file at given offsets, never past its end: the parts of a file
// laid out by another process (a distributed checkpoint: rank 0 writes each file's header and
// reserves its size, every rank then writes the tensors it holds). Not atomic by itself: the
// folder being written is the unit that is renamed into place. close() fsyncs; the destructor of
// an unclosed patcher only closes the file.
class FilePatcher {
 public:
  explicit FilePatcher(const std::string& path);
  FilePatcher(const FilePatcher&) = delete;
  FilePatcher& operator=(const FilePatcher&) = delete;
  ~FilePatcher();
  void write_at(uint64_t offset, const void* data, size_t n);
  void close();
  const std::string& path() const { return path_; }
  uint64_t written() const { return written_; }

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0, written_ = 0;
};

// Several files replaced together: each is written (and fsynced) to a temporary file beside its
// target, and only commit() renames them into place, in the order written. Until then every old
// file is untouched; a StagedFiles destroyed without commit() removes its temporaries. Targets
// follow write_file_atomic's rules (a target written through is written at once).
class StagedFiles {
 public:
  StagedFiles() = default;
  StagedFiles(const StagedFiles&) = delete;
  StagedFiles& operator=(const StagedFiles&) = delete;
  ~StagedFiles();
  void write(const std::string& path, const std::function<void(FileWriter&)>& fill);
  void write(const std::string& path, std::string_view content);
  void commit();

 private:
  struct Staged {
    std::string tmp, target;
  };
  std::vector<Staged> staged_;
};

// The inputs this process has read (read_file, MappedFile), as files (device and inode, so links
// and other spellings of the path count). Returns the path an input was read as when `path` (links
// followed) is one of them: commands refuse to write their output over their own input.
std::optional<std::string> input_file_at(const std::string& path);
// True when both paths exist and name the same file (links followed).
bool same_file(const std::string& a, const std::string& b);

void make_dirs(const std::string& dir);  // mkdir -p; throws Error
void sync_dir(const std::string& dir);   // fsync of a folder, so that renames in it are durable
std::string path_join(std::string_view a, std::string_view b);

}  // namespace dsv3

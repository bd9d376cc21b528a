// Files: whole-file reads, read-only memory maps, and atomic writes (temp file + fsync + rename),
// so that a crash mid-write never leaves a half-written file under the final name.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

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
  std::string path_;
  std::byte* data_ = nullptr;
  size_t size_ = 0;
};

// Writes `path` atomically: the callback writes into a temporary file in the same directory, which
// is fsynced and renamed over `path` (and the directory fsynced). On any error the temp file is
// removed and the previous content of `path` is untouched.
class FileWriter {
 public:
  void write(const void* data, size_t n);
  void write(std::string_view s) { write(s.data(), s.size()); }
  uint64_t written() const { return written_; }

 private:
  friend void write_file_atomic(const std::string&, const std::function<void(FileWriter&)>&);
  int fd_ = -1;
  std::string tmp_path_;
  uint64_t written_ = 0;
};
void write_file_atomic(const std::string& path, const std::function<void(FileWriter&)>& fill);
void write_file_atomic(const std::string& path, std::string_view content);

void make_dirs(const std::string& dir);  // mkdir -p; throws Error
std::string path_join(std::string_view a, std::string_view b);

}  // namespace dsv3

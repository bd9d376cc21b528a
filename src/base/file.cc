#include "base/file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "base/error.h"

namespace dsv3 {
namespace {
std::string errno_text() {
  return std::strerror(errno);
}

const char* file_kind(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISSOCK(m)) return "a socket";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  return "not a regular file";
}

// A read-only descriptor of a regular file, and its stat. O_NONBLOCK: opening a FIFO does not wait
// for a writer, so it is refused at once like every other non-regular file.
int open_regular(const std::string& path, struct stat& st) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    throw Error("cannot open " + path + ": " + std::strerror(err),
                err == ENOENT   ? "check that the path exists"
                : err == EACCES ? "check the file's permissions"
                                : "");
  }
  if (::fstat(fd, &st) != 0) {
    const std::string why = errno_text();
    ::close(fd);
    throw Error("cannot stat " + path + ": " + why);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + " is " + file_kind(st.st_mode) + ", not a regular file",
                "give the path of a file");
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

// Every input read so far, by device and inode; `mapped` counts the live MappedFiles of it.
struct Input {
  uint64_t dev, ino;
  std::string path;
  int mapped;
};
std::mutex g_inputs_mutex;
std::vector<Input> g_inputs;

void note_input(const struct stat& st, const std::string& path, int mapped) {
  std::lock_guard lock(g_inputs_mutex);
  for (Input& in : g_inputs)
    if (in.dev == st.st_dev && in.ino == st.st_ino) {
      if (in.mapped == 0) in.path = path;  // the old entry may be a deleted file's reused inode
      in.mapped += mapped;
      return;
    }
  g_inputs.push_back(
      {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino), path, mapped});
}

const Input* find_input(const struct stat& st) {  // g_inputs_mutex held
  for (const Input& in : g_inputs)
    if (in.dev == st.st_dev && in.ino == st.st_ino) return &in;
  return nullptr;
}

// Where a write to `path` goes (write_file_atomic's rules): links followed to their target.
struct Target {
  std::string given, path;  // as given; after links
  enum Kind { Absent, Regular, Through } kind = Absent;
  mode_t mode = 0;
  std::string what() const { return path == given ? given : given + " (a link to " + path + ")"; }
};

Target resolve_target(const std::string& path) {
  namespace fs = std::filesystem;
  Target t{path, path};
  for (int links = 0;; ++links) {
    struct stat st;
    if (::lstat(t.path.c_str(), &st) != 0) {
      if (errno == ENOENT) return t;  // a new file (or a link's missing target)
      throw Error("cannot stat " + t.path + ": " + errno_text());
    }
    if (S_ISLNK(st.st_mode)) {
      if (links == 40) throw Error(path + ": too many levels of symbolic links");
      std::error_code ec;
      const fs::path to = fs::read_symlink(t.path, ec);
      if (ec) throw Error("cannot read the link " + t.path + ": " + ec.message());
      t.path = to.is_absolute() ? to.string() : (fs::path(t.path).parent_path() / to).string();
      continue;
    }
    t.mode = st.st_mode;
    const std::string what = t.what();
    if (S_ISREG(st.st_mode)) {
      std::lock_guard lock(g_inputs_mutex);
      if (const Input* in = find_input(st); in && in->mapped > 0)
        throw Error(
            what + " is " +
                (in->path == path ? std::string("an input") : "the input " + in->path + ", which") +
                " this command is reading: writing there would destroy it",
            "choose another output path");
      t.kind = Target::Regular;
      return t;
    }
    if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)) {
      t.kind = Target::Through;
      return t;
    }
    throw Error(
        what + " is " + file_kind(st.st_mode) + ", not a regular file: it is never replaced",
        "give the path of a file");
  }
}

// A character device or a FIFO, opened to be written through. A FIFO without a reader is an
// error at once (O_NONBLOCK) rather than a wait that may never end.
int open_through(const Target& t) {
  const bool fifo = S_ISFIFO(t.mode);
  const int fd = ::open(t.path.c_str(), O_WRONLY | O_CLOEXEC | O_NOCTTY | (fifo ? O_NONBLOCK : 0));
  if (fd < 0) {
    if (fifo && errno == ENXIO)
      throw Error(t.what() + " is a FIFO that no program is reading",
                  "start the reader first, or give the path of a file");
    throw Error("cannot open " + t.what() + " for writing: " + errno_text());
  }
  if (fifo) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

void fsync_dir_of(const std::string& path) {
  std::filesystem::path p(path);
  sync_dir(p.has_parent_path() ? p.parent_path().string() : ".");
}

std::atomic<uint64_t> g_temp_counter{0};

}  // namespace

std::string read_file(const std::string& path, uint64_t max_bytes) {
  struct stat st;
  const int fd = open_regular(path, st);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size > max_bytes) {
    ::close(fd);
    throw Error(path + " is " + std::to_string(size) + " bytes, over the limit of " +
                std::to_string(max_bytes) + " bytes for this input");
  }
  std::string s(static_cast<size_t>(size), '\0');
  size_t got = 0;
  while (got < s.size()) {
    const ssize_t n = ::read(fd, s.data() + got, s.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = n < 0 ? errno_text() : "the file shrank while being read";
      ::close(fd);
      throw Error("error reading " + path + ": " + why);
    }
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  note_input(st, path, 0);
  return s;
}

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

uint64_t file_size(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) throw Error("cannot stat " + path + ": " + errno_text());
  return static_cast<uint64_t>(st.st_size);
}

MappedFile::MappedFile(const std::string& path) : path_(path) {
  struct stat st;
  const int fd = open_regular(path, st);
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      throw Error("cannot map " + path + ": " + errno_text());
    }
    data_ = static_cast<std::byte*>(p);
  }
  ::close(fd);
  note_input(st, path, 1);
  dev_ = static_cast<uint64_t>(st.st_dev);
  ino_ = static_cast<uint64_t>(st.st_ino);
  registered_ = true;
}

void MappedFile::release() {
  if (data_) ::munmap(data_, size_);
  data_ = nullptr;
  size_ = 0;
  if (!registered_) return;
  registered_ = false;
  std::lock_guard lock(g_inputs_mutex);
  for (Input& in : g_inputs)
    if (in.dev == dev_ && in.ino == ino_) --in.mapped;
}

MappedFile::~MappedFile() {
  release();
}

MappedFile::MappedFile(MappedFile&& o) noexcept
    : path_(std::move(o.path_)),
      data_(o.data_),
      size_(o.size_),
      dev_(o.dev_),
      ino_(o.ino_),
      registered_(o.registered_) {
  o.data_ = nullptr;
  o.size_ = 0;
  o.registered_ = false;
}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    release();
    path_ = std::move(o.path_);
    data_ = o.data_;
    size_ = o.size_;
    dev_ = o.dev_;
    ino_ = o.ino_;
    registered_ = o.registered_;
    o.data_ = nullptr;
    o.size_ = 0;
    o.registered_ = false;
  }
  return *this;
}

namespace {

// All n bytes to fd: at `offset` (pwrite), or at the file's position when offset < 0; retried on
// EINTR and short writes; Error naming `path`.
void write_fully(int fd, const void* data, size_t n, int64_t offset, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = offset < 0 ? ::write(fd, p, n) : ::pwrite(fd, p, n, offset);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw Error("cannot write " + path + ": " + errno_text(),
                  errno == ENOSPC ? "the disk is full: free space and try again" : "");
    }
    p += w;
    n -= static_cast<size_t>(w);
    if (offset >= 0) offset += w;
  }
}

}  // namespace

void FileWriter::write(const void* data, size_t n) {
  write_fully(fd_, data, n, -1, tmp_path_);
  written_ += n;
}

void FileWriter::reserve(uint64_t size) {
  DSV3_CHECK(size >= written_, "cannot reserve " + std::to_string(size) + " bytes for " +
                                   tmp_path_ + ": " + std::to_string(written_) +
                                   " are written already");
  if (size == written_) return;
  const auto at = static_cast<off_t>(written_), n = static_cast<off_t>(size - written_);
  int rc = ::fallocate(fd_, 0, at, n);
  if (rc != 0 && (errno == EOPNOTSUPP || errno == ENOSYS)) rc = ::ftruncate(fd_, at + n);
  if (rc != 0)
    throw Error(
        "cannot reserve " + std::to_string(size) + " bytes for " + tmp_path_ + ": " + errno_text(),
        errno == ENOSPC ? "the disk is full: free space and try again" : "");
}

FilePatcher::FilePatcher(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd_ < 0) throw Error("cannot open " + path + " for writing: " + errno_text());
  struct stat st;
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd_);
    fd_ = -1;
    throw Error(path + " is not a regular file: its parts cannot be written into it");
  }
  size_ = static_cast<uint64_t>(st.st_size);
}

FilePatcher::~FilePatcher() {
  if (fd_ >= 0) ::close(fd_);
}

void FilePatcher::write_at(uint64_t offset, const void* data, size_t n) {
  DSV3_CHECK(fd_ >= 0, "write into " + path_ + " after it was closed");
  DSV3_CHECK(offset <= size_ && n <= size_ - offset,
             "write of " + std::to_string(n) + " bytes at " + std::to_string(offset) + " into " +
                 path_ + " would pass its end (" + std::to_string(size_) + " bytes)",
             "the file's layout and its parts disagree: were they written by the same run?");
  write_fully(fd_, data, n, static_cast<int64_t>(offset), path_);
  written_ += n;
}

void FilePatcher::close() {
  if (fd_ < 0) return;
  const int sync = ::fsync(fd_), rc = ::close(fd_);
  fd_ = -1;
  if (sync != 0 || rc != 0) throw Error("cannot write " + path_ + ": " + errno_text());
}

StagedFiles::~StagedFiles() {
  for (const Staged& f : staged_) ::unlink(f.tmp.c_str());
}

void StagedFiles::write(const std::string& path, const std::function<void(FileWriter&)>& fill) {
  const Target t = resolve_target(path);
  FileWriter w;
  if (t.kind == Target::Through) {
    w.tmp_path_ = path;
    w.fd_ = open_through(t);
    try {
      fill(w);
    } catch (...) {
      ::close(w.fd_);
      throw;
    }
    if (::close(w.fd_) != 0) throw Error("cannot write " + path + ": " + errno_text());
    return;
  }
  // The temporary beside the target (a link's target, not the link), so that rename() stays on
  // one file system and replaces the file the link names.
  w.tmp_path_ = t.path + ".tmp." + std::to_string(::getpid()) + "." +
                std::to_string(g_temp_counter.fetch_add(1));
  w.fd_ = ::open(w.tmp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (w.fd_ < 0) throw Error("cannot create " + w.tmp_path_ + ": " + errno_text());
  try {
    if (t.kind == Target::Regular) ::fchmod(w.fd_, t.mode & 07777);  // keep the file's mode
    fill(w);
    if (::fsync(w.fd_) != 0) throw Error("cannot fsync " + w.tmp_path_ + ": " + errno_text());
    const int rc = ::close(w.fd_);
    w.fd_ = -1;
    if (rc != 0) throw Error("cannot close " + w.tmp_path_ + ": " + errno_text());
  } catch (...) {
    if (w.fd_ >= 0) ::close(w.fd_);
    ::unlink(w.tmp_path_.c_str());
    throw;
  }
  staged_.push_back({w.tmp_path_, t.path});
}

void StagedFiles::write(const std::string& path, std::string_view content) {
  write(path, [&](FileWriter& w) { w.write(content); });
}

void StagedFiles::commit() {
  // A failed rename throws; the destructor then removes the temporaries not yet renamed (the
  // names of those renamed no longer exist).
  for (const Staged& f : staged_)
    if (::rename(f.tmp.c_str(), f.target.c_str()) != 0)
      throw Error("cannot rename " + f.tmp + " to " + f.target + ": " + errno_text());
  for (const Staged& f : staged_) fsync_dir_of(f.target);
  staged_.clear();
}

void write_file_atomic(const std::string& path, const std::function<void(FileWriter&)>& fill) {
  StagedFiles f;
  f.write(path, fill);
  f.commit();
}

void write_file_atomic(const std::string& path, std::string_view content) {
  write_file_atomic(path, [&](FileWriter& w) { w.write(content); });
}

void check_output_path(const std::string& path) {
  resolve_target(path);
}

std::optional<std::string> input_file_at(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  std::lock_guard lock(g_inputs_mutex);
  const Input* in = find_input(st);
  if (!in) return std::nullopt;
  // A file read and since deleted frees its inode for a new file: the entry counts only while its
  // path still names that file (a mapping keeps its inode, so a mapped entry always counts).
  struct stat now;
  if (in->mapped == 0 &&
      (::stat(in->path.c_str(), &now) != 0 || now.st_dev != st.st_dev || now.st_ino != st.st_ino))
    return std::nullopt;
  return in->path;
}

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa, sb;
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

void sync_dir(const std::string& dir) {
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void make_dirs(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error("cannot create directory " + dir + ": " + ec.message());
}

std::string path_join(std::string_view a, std::string_view b) {
  if (a.empty()) return std::string(b);
  std::string s(a);
  if (s.back() != '/') s += '/';
  s += b;
  return s;
}

}  // namespace dsv3

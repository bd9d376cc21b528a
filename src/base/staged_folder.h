// A set of files in a folder replaced together (a model, a data set): the new files are written
// into a staging folder inside it, DIR/dsv3-tmp.PID, and only commit() moves them in, so that the
// old files stay whole until the new ones are complete. A run killed on the way leaves only its
// staging folder, which is_temporary_name() recognises for the next run to name or remove.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace dsv3 {

// "dsv3-tmp.PID" (a staging folder) or "NAME.tmp.PID[.N]" (write_file_atomic's temporary file).
bool is_temporary_name(const std::string& name);

// The temporary files an interrupted run left in a folder.
struct Leftovers {
  std::string dir;
  std::vector<std::string> names;  // sorted
  uint64_t bytes = 0;
  bool empty() const { return names.empty(); }
  // Throws an Error naming them, their size and how to remove them (--force, or rm -r).
  [[noreturn]] void refuse() const;
  void remove() const;  // throws Error when one cannot be removed
};
Leftovers find_leftovers(const std::string& dir);  // none when `dir` is absent

class StagedFolder {
 public:
  // Creates `dir` (if needed) and an empty staging folder in it.
  explicit StagedFolder(std::string dir);
  ~StagedFolder();  // removes the staging folder unless committed
  StagedFolder(const StagedFolder&) = delete;
  StagedFolder& operator=(const StagedFolder&) = delete;

  const std::string& path() const { return staging_; }  // where the new files go

  // Moves every staged file into the folder. `marker` (config.json, meta.json: what makes the
  // folder what it is) is removed first and moved in last, so a folder caught in between is never
  // taken for a complete one; then the old files for which `stale(name)` is true and that the new
  // set lacks are removed; then the new files are renamed over the old. The staging folder goes.
  void commit(const std::string& marker, const std::function<bool(const std::string&)>& stale);

 private:
  std::string dir_, staging_;
  bool committed_ = false;
};

}  // namespace dsv3

#include "tensor/safetensors_folder.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include "base/error.h"
#include "base/strings.h"

namespace dsv3 {
namespace {

constexpr char kIndexName[] = "model.safetensors.index.json";
constexpr char kSingleName[] = "model.safetensors";

// Shard names in an index are plain file names in the folder: no directories, no "..".
void check_shard_name(const std::string& name, const std::string& index_path) {
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
    throw Error(index_path + ": weight_map names the shard \"" + name +
                "\", which is not a plain file name in the folder");
}

std::string shard_name(size_t i, size_t n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", i + 1, n);
  return buf;
}

}  // namespace

TensorStore TensorStore::open(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw Error(dir + " is not a directory", "pass a Hugging Face model folder");
  TensorStore s;
  s.dir_ = dir;

  // Adds one shard's tensors; a name already seen in another shard is an error.
  auto add_file = [&](const std::string& path) {
    s.files_.push_back(std::make_unique<SafetensorsFile>(path));
    const size_t fi = s.files_.size() - 1;
    for (const TensorInfo& t : s.files_[fi]->tensors()) {
      auto [it, fresh] = s.index_.emplace(t.name, std::pair{fi, &t});
      if (!fresh)
        throw Error(dir + ": tensor \"" + t.name +
                    "\" is in two shards: " + s.files_[it->second.first]->path() + " and " + path);
    }
  };

  const std::string index_path = path_join(dir, kIndexName);
  if (file_exists(index_path)) {
    const Json index = Json::parse(read_file(index_path), index_path);
    const Json* map = index.find("weight_map");
    if (!map || !map->is_object()) throw Error(index_path + ": missing \"weight_map\" object");
    std::set<std::string> shards;
    for (const auto& [name, file] : map->as_object()) {
      if (!file.is_string())
        throw Error(index_path + ": weight_map entry \"" + name + "\" must be a file name string");
      check_shard_name(file.as_string(), index_path);
      shards.insert(file.as_string());
    }
    for (const std::string& shard : shards) {
      const std::string path = path_join(dir, shard);
      if (!file_exists(path))
        throw Error(index_path + ": shard " + shard + " is missing (" + path + ")",
                    "the download is incomplete: fetch the missing file");
      add_file(path);
    }
    // Index and shards must agree both ways.
    for (const auto& [name, file] : map->as_object()) {
      auto it = s.index_.find(name);
      if (it == s.index_.end() ||
          fs::path(s.files_[it->second.first]->path()).filename() != file.as_string())
        throw Error(index_path + ": tensor \"" + name + "\" should be in " + file.as_string() +
                    (it == s.index_.end() ? " but no shard has it"
                                          : " but is in " + s.files_[it->second.first]->path()));
    }
    if (s.index_.size() != map->size()) {
      std::set<std::string_view> listed;
      for (const auto& kv : map->as_object()) listed.insert(kv.first);
      for (const auto& [name, ref] : s.index_)
        if (!listed.contains(name))
          throw Error(index_path + ": tensor \"" + std::string(name) + "\" in " +
                      s.files_[ref.first]->path() + " is not listed in the weight_map");
    }
  } else if (const std::string single = path_join(dir, kSingleName); file_exists(single)) {
    add_file(single);
  } else {
    std::vector<std::string> paths;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file() && ends_with(e.path().filename().string(), ".safetensors"))
        paths.push_back(e.path().string());
    if (paths.empty())
      throw Error(dir + ": no model.safetensors.index.json, model.safetensors or *.safetensors",
                  "pass a folder holding safetensors weights");
    std::sort(paths.begin(), paths.end());
    for (const auto& p : paths) add_file(p);
  }
  return s;
}

std::optional<TensorStore::TensorRef> TensorStore::find(std::string_view name) const {
  auto it = index_.find(name);
  if (it == index_.end()) return std::nullopt;
  const SafetensorsFile& f = *files_[it->second.first];
  const TensorInfo* t = it->second.second;
  return TensorRef{t, f.data(*t), &f.path(), f.file_offset(*t)};
}

std::vector<std::string> TensorStore::names() const {
  std::vector<std::string> out;
  out.reserve(index_.size());
  for (const auto& kv : index_) out.emplace_back(kv.first);
  std::sort(out.begin(), out.end());
  return out;
}

uint64_t TensorStore::total_bytes() const {
  uint64_t n = 0;
  for (const auto& kv : index_) n += kv.second.second->nbytes;
  return n;
}

void ShardedWriter::add(std::string name, DType dtype, Shape shape, SafetensorsWriter::Fill fill) {
  all_.add(std::move(name), dtype, std::move(shape), std::move(fill));
}
void ShardedWriter::add_bytes(std::string name, DType dtype, Shape shape,
                              std::span<const std::byte> bytes) {
  all_.add_bytes(std::move(name), dtype, std::move(shape), bytes);
}
void ShardedWriter::set_metadata(std::string key, std::string value) {
  all_.set_metadata(std::move(key), std::move(value));
}
uint64_t ShardedWriter::data_bytes() const {
  return all_.data_bytes();
}

std::vector<SafetensorsWriter> ShardedWriter::shards() const {
  std::vector<SafetensorsWriter> shards(1);
  uint64_t in_shard = 0;
  for (const auto& e : all_.entries_) {
    if (!shards.back().empty() && in_shard + e.nbytes > max_shard_bytes_) {
      shards.emplace_back();
      in_shard = 0;
    }
    SafetensorsWriter& w = shards.back();
    w.names_.insert(e.name);
    w.entries_.push_back(e);
    w.data_bytes_ += e.nbytes;
    in_shard += e.nbytes;
  }
  for (auto& w : shards) w.metadata_ = all_.metadata_;
  return shards;
}

void ShardedWriter::write(const std::string& dir, ProgressBar* progress) {
  write_folder(
      dir, [progress](SafetensorsWriter& w, const std::string& path) { w.write(path, progress); });
}

void ShardedWriter::write_layout(const std::string& dir) {
  write_folder(dir, [](SafetensorsWriter& w, const std::string& path) { w.write_layout(path); });
}

void ShardedWriter::write_folder(
    const std::string& dir,
    const std::function<void(SafetensorsWriter&, const std::string&)>& write_shard) {
  namespace fs = std::filesystem;
  make_dirs(dir);
  std::vector<SafetensorsWriter> shards = this->shards();
  const std::string index_path = path_join(dir, kIndexName);
  if (shards.size() == 1) {
    write_shard(shards[0], path_join(dir, kSingleName));
    // A stale index from an earlier sharded write would take precedence over the new file.
    std::error_code ec;
    fs::remove(index_path, ec);
    return;
  }
  Json::Object weight_map;
  std::vector<std::pair<std::string, std::string>> entries;
  for (size_t i = 0; i < shards.size(); ++i) {
    const std::string name = shard_name(i, shards.size());
    write_shard(shards[i], path_join(dir, name));
    for (const auto& e : shards[i].entries_) entries.emplace_back(e.name, name);
  }
  std::sort(entries.begin(), entries.end());  // HF writes the weight_map sorted by tensor name
  for (auto& [tensor, file] : entries) weight_map.emplace_back(std::move(tensor), Json(file));
  Json::Object meta;
  meta.emplace_back("total_size", Json(all_.data_bytes()));
  Json::Object index;
  index.emplace_back("metadata", Json(std::move(meta)));
  index.emplace_back("weight_map", Json(std::move(weight_map)));
  write_file_atomic(index_path, Json(std::move(index)).dump(2) + "\n");
}

}  // namespace dsv3

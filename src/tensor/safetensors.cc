#include "tensor/safetensors.h"

#include <algorithm>
#include <cstring>
#include <unordered_set>

#include "base/error.h"
#include "base/progress.h"

namespace dsv3 {
namespace {

constexpr uint64_t kMaxHeaderBytes =
    100'000'000;  // as the reference implementation (RELIABILITY §1)
constexpr char kMetadataKey[] = "__metadata__";

uint64_t read_le64(const std::byte* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint64_t>(p[i]);
  return v;
}

// Strict UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF). Returns the offset of the
// first bad byte, or npos.
size_t first_invalid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;  // allowed range of the first continuation byte
    if (c >= 0xC2 && c <= 0xDF)
      len = 2;
    else if (c == 0xE0)
      len = 3, lo = 0xA0;
    else if (c == 0xED)
      len = 3, hi = 0x9F;  // excludes surrogates
    else if (c >= 0xE1 && c <= 0xEF)
      len = 3;
    else if (c == 0xF0)
      len = 4, lo = 0x90;
    else if (c == 0xF4)
      len = 4, hi = 0x8F;  // nothing past U+10FFFF
    else if (c >= 0xF1 && c <= 0xF3)
      len = 4;
    else
      return i;
    if (i + len > n) return i;
    if (p[i + 1] < lo || p[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k)
      if (p[i + k] < 0x80 || p[i + k] > 0xBF) return i;
    i += len;
  }
  return std::string_view::npos;
}

// A non-negative JSON integer; the safetensors header has no other kind of number.
uint64_t read_u64(const Json& v, const std::string& where) {
  if (!v.is_int()) throw Error(where + " must be an integer");
  const int64_t i = v.as_int();
  if (i < 0) throw Error(where + " is negative (" + std::to_string(i) + ")");
  return static_cast<uint64_t>(i);
}

TensorInfo parse_entry(const std::string& name, const Json& entry, const std::string& source) {
  const std::string where = source + ": tensor \"" + name + "\"";
  if (name.empty()) throw Error(source + ": a tensor has an empty name");
  if (!entry.is_object()) throw Error(where + ": entry must be an object");
  for (const auto& [key, value] : entry.as_object()) {
    if (key != "dtype" && key != "shape" && key != "data_offsets")
      throw Error(where + ": unexpected field \"" + key + "\"",
                  "a tensor entry has exactly dtype, shape and data_offsets");
  }
  const Json* dtype = entry.find("dtype");
  const Json* shape = entry.find("shape");
  const Json* offsets = entry.find("data_offsets");
  if (!dtype || !shape || !offsets)
    throw Error(where + ": missing field \"" +
                std::string(!dtype   ? "dtype"
                            : !shape ? "shape"
                                     : "data_offsets") +
                "\"");

  TensorInfo t;
  t.name = name;
  if (!dtype->is_string()) throw Error(where + ": dtype must be a string");
  const auto dt = dtype_from_name(dtype->as_string());
  if (!dt)
    throw Error(where + ": unknown dtype \"" + dtype->as_string() + "\"",
                "supported: F64 F32 F16 BF16 F8_E4M3 F8_E5M2 I64 I32 I16 I8 U8 BOOL");
  t.dtype = *dt;

  if (!shape->is_array()) throw Error(where + ": shape must be an array");
  // Element count with an overflow check at every step; bytes must fit in 63 bits too.
  const uint64_t limit = (uint64_t{1} << 62) / dtype_size(t.dtype);
  uint64_t numel = 1;
  bool overflow = false;
  for (const Json& d : shape->as_array()) {
    const uint64_t dim = read_u64(d, where + ": shape dimension");
    t.shape.push_back(static_cast<int64_t>(dim));
    if (dim != 0 && numel > limit / dim)
      overflow = true;
    else
      numel *= dim;
  }
  if (overflow)
    throw Error(where + ": shape " + shape_str(t.shape) + " has too many elements (overflow)");

  if (!offsets->is_array() || offsets->size() != 2)
    throw Error(where + ": data_offsets must be an array [begin, end]");
  const uint64_t begin = read_u64(offsets->as_array()[0], where + ": data_offsets begin");
  const uint64_t end = read_u64(offsets->as_array()[1], where + ": data_offsets end");
  if (end < begin)
    throw Error(where + ": data_offsets end " + std::to_string(end) + " < begin " +
                std::to_string(begin));
  t.offset = begin;
  t.nbytes = end - begin;
  const uint64_t want = numel * dtype_size(t.dtype);
  if (t.nbytes != want)
    throw Error(where + ": data_offsets span " + std::to_string(t.nbytes) + " bytes but " +
                std::string(dtype_name(t.dtype)) + " " + shape_str(t.shape) + " needs " +
                std::to_string(want));
  return t;
}

}  // namespace

SafetensorsHeader parse_safetensors_header(std::span<const std::byte> file,
                                           const std::string& source) {
  const uint64_t size = file.size();
  if (size < 8)
    throw Error(source + ": file is " + std::to_string(size) +
                    " bytes, shorter than the 8-byte header length",
                "the file is truncated or not a safetensors file");
  const uint64_t n = read_le64(file.data());
  if (n > kMaxHeaderBytes)
    throw Error(source + ": header length " + std::to_string(n) + " exceeds the limit of " +
                    std::to_string(kMaxHeaderBytes) + " bytes",
                "the file is corrupt or not a safetensors file");
  if (n > size - 8)  // size >= 8, so no overflow
    throw Error(source + ": header length " + std::to_string(n) +
                    " runs past the end of the file (" + std::to_string(size) + " bytes)",
                "the file is truncated");
  const std::string_view text(reinterpret_cast<const char*>(file.data()) + 8, n);
  if (const size_t bad = first_invalid_utf8(text); bad != std::string_view::npos)
    throw Error(source + ": header is not valid UTF-8 (byte " + std::to_string(bad) +
                " of the header)");
  // Json::parse accepts surrounding whitespace and rejects duplicate keys (= duplicate tensor
  // names).
  const Json root = Json::parse(text, source + " header");
  if (!root.is_object()) throw Error(source + ": header must be a JSON object");

  SafetensorsHeader h;
  h.data_offset = 8 + n;
  h.metadata = Json::object();
  for (const auto& [key, value] : root.as_object()) {
    if (key == kMetadataKey) {
      if (!value.is_object()) throw Error(source + ": __metadata__ must be an object of strings");
      for (const auto& [mk, mv] : value.as_object())
        if (!mv.is_string())
          throw Error(source + ": __metadata__ value \"" + mk + "\" must be a string");
      h.metadata = value;
      continue;
    }
    h.tensors.push_back(parse_entry(key, value, source));
  }

  // Sorted by start, the tensors must tile the data section exactly: no gap, no overlap, no
  // trailing bytes (zero-byte tensors sort before a tensor starting at the same offset).
  std::vector<const TensorInfo*> order;
  for (const auto& t : h.tensors) order.push_back(&t);
  std::stable_sort(order.begin(), order.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return a->offset != b->offset ? a->offset < b->offset : a->nbytes < b->nbytes;
  });
  uint64_t expected = 0;
  const TensorInfo* prev = nullptr;
  for (const TensorInfo* t : order) {
    if (t->offset != expected) {
      const std::string after = prev ? "the end of \"" + prev->name + "\" (" : "the data start (";
      throw Error(source + ": tensor \"" + t->name + "\" starts at " + std::to_string(t->offset) +
                      (t->offset < expected ? ", overlapping " : ", leaving a gap after ") + after +
                      std::to_string(expected) + ")",
                  "each tensor must begin where the previous one ended");
    }
    expected = t->offset + t->nbytes;  // cannot overflow: both < 2^63
    prev = t;
  }
  const uint64_t data_size = size - h.data_offset;
  if (expected < data_size)
    throw Error(source + ": " + std::to_string(data_size - expected) +
                " trailing bytes after the last tensor's data");
  if (expected > data_size)
    throw Error(source + ": data section is " + std::to_string(data_size) + " bytes but tensor \"" +
                    prev->name + "\" ends at " + std::to_string(expected),
                "the file is truncated");
  return h;
}

SafetensorsFile::SafetensorsFile(const std::string& path)
    : file_(path), header_(parse_safetensors_header(file_.bytes(), path)) {
  for (size_t i = 0; i < header_.tensors.size(); ++i)
    by_name_.emplace_back(header_.tensors[i].name, i);
  std::sort(by_name_.begin(), by_name_.end());
}

const TensorInfo* SafetensorsFile::find(std::string_view name) const {
  auto it = std::lower_bound(by_name_.begin(), by_name_.end(), name,
                             [](const auto& e, std::string_view n) { return e.first < n; });
  if (it == by_name_.end() || it->first != name) return nullptr;
  return &header_.tensors[it->second];
}

std::span<const std::byte> SafetensorsFile::data(const TensorInfo& t) const {
  const uint64_t data_size = file_.size() - header_.data_offset;
  DSV3_CHECK(t.offset <= data_size && t.nbytes <= data_size - t.offset,
             path() + ": tensor \"" + t.name + "\" is not in this file");
  return {file_.data() + header_.data_offset + t.offset, t.nbytes};
}

void SafetensorsWriter::add(std::string name, DType dtype, Shape shape, Fill fill) {
  DSV3_CHECK(!name.empty() && name != kMetadataKey,
             "safetensors writer: invalid tensor name \"" + name + "\"");
  DSV3_CHECK(!names_.contains(name), "safetensors writer: tensor \"" + name + "\" added twice");
  const int64_t numel = shape_numel(shape);
  const uint64_t nbytes = static_cast<uint64_t>(numel) * dtype_size(dtype);
  data_bytes_ += nbytes;
  names_.insert(name);
  entries_.push_back({std::move(name), dtype, std::move(shape), nbytes, std::move(fill)});
}

void SafetensorsWriter::add_bytes(std::string name, DType dtype, Shape shape,
                                  std::span<const std::byte> bytes) {
  const uint64_t nbytes = static_cast<uint64_t>(shape_numel(shape)) * dtype_size(dtype);
  DSV3_CHECK(bytes.size() == nbytes, "safetensors writer: tensor \"" + name + "\" has " +
                                         std::to_string(bytes.size()) + " bytes, " +
                                         std::string(dtype_name(dtype)) + " " + shape_str(shape) +
                                         " needs " + std::to_string(nbytes));
  add(std::move(name), dtype, std::move(shape),
      [bytes](std::byte* dst) { std::memcpy(dst, bytes.data(), bytes.size()); });
}

void SafetensorsWriter::set_metadata(std::string key, std::string value) {
  for (auto& kv : metadata_) {
    if (kv.first == key) {
      kv.second = std::move(value);
      return;
    }
  }
  metadata_.emplace_back(std::move(key), std::move(value));
}

std::string SafetensorsWriter::header_text() const {
  // Built as a plain vector: names are already unique, and keyed insertion would be quadratic.
  Json::Object header;
  if (!metadata_.empty()) {
    Json::Object meta;
    for (const auto& [k, v] : metadata_) meta.emplace_back(k, Json(v));
    header.emplace_back(kMetadataKey, Json(std::move(meta)));
  }
  uint64_t offset = 0;
  for (const auto& e : entries_) {
    Json shape = Json::array();
    for (int64_t d : e.shape) shape.push_back(Json(d));
    Json::Object entry;
    entry.emplace_back("dtype", Json(dtype_name(e.dtype)));
    entry.emplace_back("shape", std::move(shape));
    entry.emplace_back("data_offsets", Json(Json::Array{Json(offset), Json(offset + e.nbytes)}));
    header.emplace_back(e.name, Json(std::move(entry)));
    offset += e.nbytes;
  }
  std::string text = Json(std::move(header)).dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // data section starts 8-byte aligned
  return text;
}

namespace {

void write_header(FileWriter& w, const std::string& text) {
  std::byte len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<std::byte>((text.size() >> (8 * i)) & 0xFF);
  w.write(len, 8);
  w.write(text);
}

}  // namespace

void SafetensorsWriter::write_layout(const std::string& path) const {
  const std::string text = header_text();
  write_file_atomic(path, [&](FileWriter& w) {
    write_header(w, text);
    w.reserve(w.written() + data_bytes_);
  });
}

void SafetensorsWriter::write(const std::string& path, ProgressBar* progress) {
  const std::string text = header_text();
  write_file_atomic(path, [&](FileWriter& w) {
    write_header(w, text);
    std::vector<std::byte> scratch;
    for (const auto& e : entries_) {
      if (e.nbytes > 0) {
        if (scratch.size() < e.nbytes) {
          scratch.clear();
          scratch.shrink_to_fit();
          scratch.resize(e.nbytes);
        }
        e.fill(scratch.data());
        w.write(scratch.data(), e.nbytes);
      }
      if (progress) progress->add(e.nbytes);
    }
  });
}

}  // namespace dsv3

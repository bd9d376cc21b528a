// KvCache storage: one growing byte buffer per layer.
#include "runtime/kv_cache.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "base/error.h"
#include "tensor/half.h"

namespace dsv3 {

KvCache::KvCache(CacheLayout layout, DType storage)
    : layout_(layout), dtype_(storage), layers_(layout.n_layers) {
  DSV3_CHECK(storage == DType::F32 || storage == DType::BF16,
             "kv cache: storage dtype " + std::string(dtype_name(storage)) + " is not supported",
             "use f32 or bf16");
  DSV3_CHECK(layout.n_layers >= 0 && layout.row_elems > 0, "kv cache: layout needs row_elems > 0");
}

void KvCache::put(int64_t layer, const float* rows, int64_t n) {
  DSV3_CHECK(layer >= 0 && layer < layout_.n_layers,
             "kv cache: layer " + std::to_string(layer) + " out of range");
  const size_t es = dtype_size(dtype_), row_bytes = layout_.row_elems * es;
  auto& buf = layers_[layer];
  const size_t need = (length_ + n) * row_bytes;
  if (buf.size() < need) {
    if (buf.capacity() < need) buf.reserve(std::max(need, 2 * buf.capacity()));
    buf.resize(need);
  }
  unsigned char* dst = buf.data() + length_ * row_bytes;
  if (dtype_ == DType::F32) {
    std::memcpy(dst, rows, n * row_bytes);
  } else {
    f32_to_bf16(rows, reinterpret_cast<uint16_t*>(dst), n * layout_.row_elems);
  }
  pending_ = std::max(pending_, n);
}

const float* KvCache::rows_f32(int64_t layer, int64_t n, std::vector<float>& scratch) const {
  DSV3_CHECK(layer >= 0 && layer < layout_.n_layers && n <= length_ + pending_,
             "kv cache: read of " + std::to_string(n) + " positions of layer " +
                 std::to_string(layer) + " past what was stored");
  const unsigned char* src = layers_[layer].data();
  if (dtype_ == DType::F32) return reinterpret_cast<const float*>(src);
  scratch.resize(n * layout_.row_elems);
  bf16_to_f32(reinterpret_cast<const uint16_t*>(src), scratch.data(), n * layout_.row_elems);
  return scratch.data();
}

void KvCache::commit(int64_t n) {
  DSV3_CHECK(n <= pending_, "kv cache: commit of " + std::to_string(n) + " positions, only " +
                                std::to_string(pending_) + " were stored");
  length_ += n;
  pending_ = 0;
}

void KvCache::truncate(int64_t p) {
  DSV3_CHECK(p >= 0 && p <= length_, "kv cache: cannot truncate to position " + std::to_string(p) +
                                         " of a sequence of length " + std::to_string(length_));
  length_ = p;
  pending_ = 0;
}

uint64_t KvCache::bytes() const {
  return static_cast<uint64_t>(layout_.n_layers) * length_ * layout_.row_elems * dtype_size(dtype_);
}

uint64_t KvCache::capacity_bytes() const {
  uint64_t b = 0;
  for (const auto& l : layers_) b += l.capacity();
  return b;
}

}  // namespace dsv3

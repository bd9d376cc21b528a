// The attention cache of one sequence (ARCHITECTURE habit 15): per layer, row_elems values per
// position, stored as float32 or bfloat16. DeepSeek's MLA layout keeps the compressed latent
// [c_kv; k_pe] (576 values per token per layer for V3, SPEC §1.5); GQA models keep [k; v].
// truncate() rolls a sequence back (speculative decoding), and a KvCache copies like a value.
#pragma once
#include <cstdint>
#include <vector>

#include "model/model.h"
#include "tensor/dtype.h"

namespace dsv3 {

class KvCache : public AttentionCache {
 public:
  // storage: DType::F32 or DType::BF16 (throws Error otherwise).
  KvCache(CacheLayout layout, DType storage);

  int64_t length() const override { return length_; }
  int64_t n_layers() const override { return layout_.n_layers; }
  int64_t row_elems() const override { return layout_.row_elems; }
  void put(int64_t layer, const float* rows, int64_t n) override;
  const float* rows_f32(int64_t layer, int64_t n, std::vector<float>& scratch) const override;
  void commit(int64_t n) override;

  // Keeps positions [0, p); p > length() is an Error.
  void truncate(int64_t p);
  DType dtype() const { return dtype_; }
  // Bytes holding the committed positions (layers x length x row_elems x dtype size), and the
  // bytes allocated.
  uint64_t bytes() const;
  uint64_t capacity_bytes() const;

 private:
  CacheLayout layout_;
  DType dtype_;
  int64_t length_ = 0;
  int64_t pending_ = 0;  // rows put past length_ and not yet committed
  std::vector<std::vector<unsigned char>> layers_;
};

}  // namespace dsv3

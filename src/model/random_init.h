// Deterministic random initialisation of one parameter (SPEC §1.2: N(0, 0.006), norm weights 1,
// biases and the gate's correction bias 0). A tensor's values depend only on (seed, tensor name):
// the stream is cut into fixed chunks, each seeded from (seed, name hash, chunk index), so tensors
// can be filled in any order and chunks on any number of threads with identical results.
#pragma once
#include <cstddef>
#include <cstdint>

#include "base/thread_pool.h"
#include "model/param_table.h"
#include "tensor/dtype.h"

namespace dsv3 {

inline constexpr double kInitStd = 0.006;  // SPEC §1.2 [TR §4.2]

// The tensor's values in f32 (out holds numel elements). MTP copies use the stream of the tensor
// they copy, so they come out equal to it.
void random_param_f32(const ParamSpec& p, uint64_t seed, float* out, ThreadPool& pool);
// The same values stored as `dtype` (F32, F16 or BF16) into dst (numel * dtype_size bytes).
void fill_random_param(const ParamSpec& p, uint64_t seed, DType dtype, std::byte* dst,
                       ThreadPool& pool);

}  // namespace dsv3

// Reference embedding lookup: rows of the table in any storage dtype, as float32.
#include "kernels/ref/ref.h"

namespace dsv3::ref {

void embedding(float* y, const int32_t* ids, int64_t T, const WeightRef& table) {
  for (int64_t t = 0; t < T; ++t)
    weight_block_f32(table, ids[t], 1, 0, table.cols, y + t * table.cols);
}

void embedding_backward(float* dtable, const int32_t* ids, const float* dy, int64_t T, int64_t d) {
  for (int64_t t = 0; t < T; ++t)
    axpy(dtable + static_cast<int64_t>(ids[t]) * d, 1.0f, dy + t * d, d);
}

}  // namespace dsv3::ref

// The language-model losses of training (SPEC §1.7, §5): cross-entropy of the main head and of the
// MTP head, each a mean over the rows that have a target.
#pragma once
#include <cstdint>

#include "kernels/kernels.h"

namespace dsv3 {

// Mean over the rows with target >= 0 of -log softmax(logits[t])[target[t]]; turns logits [T, V]
// into the gradient of weight * mean (rows without a target get 0). Returns the unweighted mean
// (0 when no row has a target) and the count of rows with a target in *counted (may be null).
double cross_entropy_loss(const Kernels& k, ThreadPool& pool, float* logits, const int32_t* targets,
                          int64_t T, int64_t V, double weight, int64_t* counted = nullptr);

}  // namespace dsv3

// Validation loss: the mean next-token cross-entropy of a model over fixed windows (data.h's
// ValWindows), as dsv3 eval prints it and a trainer's periodic evaluation reads it.
#pragma once
#include <cstdint>

#include "kernels/kernels.h"
#include "model/model.h"
#include "train/data.h"

namespace dsv3 {

struct EvalResult {
  double loss = 0;                  // mean cross-entropy, nats per predicted token
  int64_t windows = 0, tokens = 0;  // tokens: predictions scored (windows * seq_len)
  double seconds = 0;
  double perplexity() const;
};

// Runs the windows through model.forward, `batch_windows` at a time as cache-less sequences of
// seq_len tokens with logits on every row, and averages -log p(target) over every position (the
// sum is kept in double). Throws Error when there is no window to score.
EvalResult evaluate(Model& model, const Kernels& k, ThreadPool& pool, const ValWindows& windows,
                    int64_t batch_windows, bool progress);

}  // namespace dsv3

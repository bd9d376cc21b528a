#include "train/evaluate.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <span>
#include <vector>

#include "base/error.h"
#include "base/progress.h"
#include "base/timer.h"
#include "model/activations.h"
#include "model/batch.h"
#include "train/loss.h"

namespace dsv3 {

double EvalResult::perplexity() const {
  return std::exp(loss);
}

EvalResult evaluate(Model& model, const Kernels& k, ThreadPool& pool, const ValWindows& windows,
                    int64_t batch_windows, bool progress) {
  DSV3_CHECK(windows.count() > 0,
             "there is no whole window of " + std::to_string(windows.seq_len() + 1) +
                 " tokens to score (" + std::to_string(windows.split_tokens()) + " tokens)",
             "use more text or a shorter --seq-len");
  DSV3_CHECK(batch_windows >= 1, "the windows per forward pass must be at least 1");
  Timer clock;
  const int64_t T = windows.seq_len(), W = T + 1, V = model.config().vocab_size;
  ForwardActs acts;  // inference: layers share their activations
  Batch batch;
  std::vector<int32_t> win, targets;
  std::vector<float> logits;
  double sum = 0;
  int64_t counted_total = 0;
  std::optional<ProgressBar> bar;  // constructed only when wanted: it draws at once
  if (progress) bar.emplace("evaluating", static_cast<uint64_t>(windows.count()), "windows");
  for (int64_t first = 0; first < windows.count(); first += batch_windows) {
    const int64_t n = std::min(batch_windows, windows.count() - first);
    windows.get(first, n, win);
    batch.clear();
    targets.resize(static_cast<size_t>(n * T));
    for (int64_t i = 0; i < n; ++i) {
      const int32_t* w = win.data() + i * W;
      batch.add(nullptr, std::span<const int32_t>(w, static_cast<size_t>(T)), LogitsRows::All);
      std::copy(w + 1, w + W, targets.begin() + i * T);
    }
    logits.resize(static_cast<size_t>(n * T * V));
    model.forward(batch, acts, logits.data());
    int64_t counted = 0;
    const double mean =
        cross_entropy_loss(k, pool, logits.data(), targets.data(), n * T, V, 1.0, &counted);
    sum += mean * static_cast<double>(counted);
    counted_total += counted;
    if (bar) bar->set(static_cast<uint64_t>(first + n));
  }
  if (bar) bar->finish();
  EvalResult r;
  r.windows = windows.count();
  r.tokens = counted_total;
  r.loss = counted_total > 0 ? sum / static_cast<double>(counted_total) : 0;
  r.seconds = clock.seconds();
  return r;
}

}  // namespace dsv3

// Cross-entropy losses over the kernel table's fused softmax + gradient.
#include "train/loss.h"

#include <vector>

namespace dsv3 {

double cross_entropy_loss(const Kernels& k, ThreadPool& pool, float* logits, const int32_t* targets,
                          int64_t T, int64_t V, double weight, int64_t* counted) {
  int64_t n = 0;
  for (int64_t t = 0; t < T; ++t) n += targets[t] >= 0;
  if (counted) *counted = n;
  std::vector<float> loss(T);
  const float scale = n > 0 ? static_cast<float>(weight / static_cast<double>(n)) : 0.0f;
  k.cross_entropy(logits, targets, T, V, scale, loss.data(), pool);
  if (n == 0) return 0.0;
  double sum = 0;
  for (float l : loss) sum += l;
  return sum / static_cast<double>(n);
}

}  // namespace dsv3

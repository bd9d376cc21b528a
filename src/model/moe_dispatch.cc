// The dispatch plan (a counting sort of the slots by expert) and the local dispatcher.
#include "model/moe_dispatch.h"

#include <algorithm>
#include <numeric>

#include "base/error.h"

namespace dsv3 {

void make_dispatch_plan(const int32_t* experts, int64_t T, int64_t K, int64_t E, DispatchPlan& p) {
  const int64_t n = T * K;
  p.tokens = T;
  p.top_k = K;
  p.n_experts = E;
  p.counts.assign(static_cast<size_t>(E), 0);
  for (int64_t i = 0; i < n; ++i) {
    DSV3_CHECK(experts[i] >= 0 && experts[i] < E, "moe: expert index out of range");
    ++p.counts[experts[i]];
  }
  p.offsets.assign(static_cast<size_t>(E + 1), 0);
  std::partial_sum(p.counts.begin(), p.counts.end(), p.offsets.begin() + 1);
  p.slot_of_row.resize(static_cast<size_t>(n));
  p.row_of_slot.resize(static_cast<size_t>(n));
  std::vector<int64_t> next(p.offsets.begin(), p.offsets.end() - 1);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = next[experts[i]]++;
    p.slot_of_row[r] = static_cast<int32_t>(i);
    p.row_of_slot[i] = static_cast<int32_t>(r);
  }
}

float combine_backward_row(float w, const float* g, const float* y, int64_t d, float* dy) {
  double dot = 0;
  for (int64_t i = 0; i < d; ++i) {
    dy[i] = w * g[i];
    dot += static_cast<double>(g[i]) * y[i];
  }
  return static_cast<float>(dot);
}

void LocalDispatcher::dispatch(const DispatchPlan& p, const float* x, int64_t d, MoeExchange& ex,
                               std::vector<float>& grouped) {
  const int64_t n = p.tokens * p.top_k;
  ex.offsets = p.offsets;
  ex.counts = p.counts;
  grouped.resize(static_cast<size_t>(n * d));
  for (int64_t r = 0; r < n; ++r)
    std::copy_n(x + (p.slot_of_row[r] / p.top_k) * d, d, grouped.data() + r * d);
}

namespace {
// Token t's slots ordered by their grouped row: grouped rows ascend with the expert index, so this
// orders the token's experts (a sum that does not depend on the batch).
void slots_by_expert(const DispatchPlan& p, int64_t t, std::vector<int32_t>& order) {
  const int64_t K = p.top_k;
  order.resize(static_cast<size_t>(K));
  for (int64_t j = 0; j < K; ++j) order[j] = static_cast<int32_t>(t * K + j);
  std::sort(order.begin(), order.end(),
            [&](int32_t a, int32_t b) { return p.row_of_slot[a] < p.row_of_slot[b]; });
}
}  // namespace

void LocalDispatcher::combine(const DispatchPlan& p, MoeExchange&, const float* y,
                              const float* weights, int64_t d, float* out) {
  std::vector<int32_t> order;
  for (int64_t t = 0; t < p.tokens; ++t) {
    slots_by_expert(p, t, order);
    for (int32_t s : order) k_.axpy(out + t * d, weights[s], y + p.row_of_slot[s] * d, d);
  }
}

void LocalDispatcher::combine_backward(const DispatchPlan& p, const MoeExchange&, const float* dout,
                                       const float* y, const float* weights, int64_t d,
                                       std::vector<float>& dyv, float* dweights) {
  const int64_t n = p.tokens * p.top_k;
  dyv.resize(static_cast<size_t>(n * d));
  float* dy = dyv.data();
  for (int64_t s = 0; s < n; ++s) {
    const int64_t r = p.row_of_slot[s];
    dweights[s] =
        combine_backward_row(weights[s], dout + (s / p.top_k) * d, y + r * d, d, dy + r * d);
  }
}

void LocalDispatcher::dispatch_backward(const DispatchPlan& p, const MoeExchange&,
                                        const float* dgrouped, int64_t d, float* dx) {
  std::vector<int32_t> order;
  for (int64_t t = 0; t < p.tokens; ++t) {
    slots_by_expert(p, t, order);
    for (int32_t s : order) k_.axpy(dx + t * d, 1.0f, dgrouped + p.row_of_slot[s] * d, d);
  }
}

}  // namespace dsv3

// MoE dispatch (SPEC §1.6): after routing, a plan groups the (token, choice) slots by expert so
// each expert's tokens are contiguous (one GEMM per expert); the dispatcher moves rows into that
// order and combines the expert outputs back. The dispatcher is an interface: local here, an
// all-to-all between expert-parallel ranks later (SPEC §5); the plan's per-expert counts are the
// load the balance bias, MaxVio and expert parallelism read.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/kernels.h"

namespace dsv3 {

struct DispatchPlan {
  int64_t tokens = 0, top_k = 0, n_experts = 0;
  std::vector<int64_t> counts;       // [E] slots routed to each expert
  std::vector<int64_t> offsets;      // [E + 1] first grouped row of each expert
  std::vector<int32_t> slot_of_row;  // [T * K] grouped row r holds slot t * K + j
  std::vector<int32_t> row_of_slot;  // [T * K] the inverse
};

// Builds the plan from experts [T, K] (route_tokens' output). Within an expert, slots keep token
// order (a deterministic row order whatever the batch).
void make_dispatch_plan(const int32_t* experts, int64_t T, int64_t K, int64_t E, DispatchPlan& p);

// What one dispatch produced, kept (in MoeActs) for its combine and the backward: the rows this
// process computes, grouped by expert — its own plan's (local), or every expert-parallel rank's
// rows of the experts it holds (all-to-all) — and the dispatcher's bookkeeping.
struct MoeExchange {
  std::vector<int64_t> offsets;  // [E + 1] expert e's rows in the grouped buffer
  std::vector<int64_t> counts;   // [E] (0 for an expert another rank holds)
  // All-to-all only. A token's row travels once to each rank holding one of its experts (TR
  // §3.2.2: node-limited routing bounds those ranks); each slot travels as an index into them.
  //   by_source     [ranks, E / ranks] slots each rank sent of each expert this rank holds
  //   sent_tokens   this rank's tokens sent to rank 0, then to rank 1, ... (ascending in each),
  //                 sent_bounds [ranks + 1] their bounds
  //   unique_bounds [ranks + 1] bounds of the token rows that arrived, by source
  //   unique_of_row [rows] the arrived token row each grouped (expert-major) row computes on
  std::vector<int64_t> by_source;
  std::vector<int32_t> sent_tokens;
  std::vector<int64_t> sent_bounds;
  std::vector<int64_t> unique_bounds;
  std::vector<int32_t> unique_of_row;
};

// The backward of combine for one slot of weight w whose token's output gradient is g [d] and
// whose expert output is y [d]: dy = w * g, and returns dL/dw = g · y (double sum). Local and
// all-to-all dispatchers share it, so the owner of an expert computes the same bits.
float combine_backward_row(float w, const float* g, const float* y, int64_t d, float* dy);

class MoeDispatcher {
 public:
  virtual ~MoeDispatcher() = default;
  // Fills ex and grouped [rows, d]: local, row r = x[slot_of_row[r] / K] (rows = T * K).
  virtual void dispatch(const DispatchPlan& p, const float* x, int64_t d, MoeExchange& ex,
                        std::vector<float>& grouped) = 0;
  // out [T, d] += Σ_j weights[t, j] * y[row_of_slot[t * K + j]] for y the expert outputs in
  // grouped order, the K terms of a token added in increasing expert order (the same sum
  // whatever the batch).
  virtual void combine(const DispatchPlan& p, MoeExchange& ex, const float* y, const float* weights,
                       int64_t d, float* out) = 0;
  // The backward of combine for dout [T, d] = dL/dout: dy [rows, d] in grouped order, the row of
  // slot s = weights[s] * dout[s / K], and dweights[s] = dout[s / K] · y's row of slot s.
  virtual void combine_backward(const DispatchPlan& p, const MoeExchange& ex, const float* dout,
                                const float* y, const float* weights, int64_t d,
                                std::vector<float>& dy, float* dweights) = 0;
  // The backward of dispatch: dx [T, d] += Σ_j dgrouped's row of slot t * K + j, a token's K
  // rows added in increasing expert order.
  virtual void dispatch_backward(const DispatchPlan& p, const MoeExchange& ex,
                                 const float* dgrouped, int64_t d, float* dx) = 0;
};

// Every expert in this process. Its four steps over the plan's own grouping are what an
// all-to-all dispatcher runs on each rank around the exchange.
class LocalDispatcher final : public MoeDispatcher {
 public:
  explicit LocalDispatcher(const Kernels& k) : k_(k) {}
  void dispatch(const DispatchPlan& p, const float* x, int64_t d, MoeExchange& ex,
                std::vector<float>& grouped) override;
  void combine(const DispatchPlan& p, MoeExchange& ex, const float* y, const float* weights,
               int64_t d, float* out) override;
  void combine_backward(const DispatchPlan& p, const MoeExchange& ex, const float* dout,
                        const float* y, const float* weights, int64_t d, std::vector<float>& dy,
                        float* dweights) override;
  void dispatch_backward(const DispatchPlan& p, const MoeExchange& ex, const float* dgrouped,
                         int64_t d, float* dx) override;

 private:
  const Kernels& k_;
};

}  // namespace dsv3

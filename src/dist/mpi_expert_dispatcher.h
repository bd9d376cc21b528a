// Expert parallelism (SPEC §5, TR §3.2.2): MoE dispatch and combine as all-to-alls between the
// ranks of a communicator, through model/moe_dispatch.h's interface. Rank j holds experts
// [j·E/ranks, (j+1)·E/ranks). Dispatch groups this rank's rows by expert (the local plan, so an
// owner's rows are contiguous), exchanges the per-expert counts (MPI_Alltoall), then the rows
// (MPI_Alltoallv), and regroups what arrived expert-major — for each held expert, rank 0's rows,
// then rank 1's — so each expert runs one GEMM over every rank's tokens. Combine sends the outputs
// back the same way reversed and adds them locally in the plan's order; the backward mirrors both.
// Payloads are FP32 (FP8 dispatch, SPEC §3.1, is not done).
#pragma once
#include <vector>

#include "dist/mpi_comm.h"
#include "model/moe_dispatch.h"

namespace dsv3 {

class MpiExpertDispatcher final : public MoeDispatcher {
 public:
  // Throws Error unless n_experts divides over the communicator's ranks. n_experts 0: the first
  // plan's (the trainer builds the dispatcher before it reads the model).
  MpiExpertDispatcher(const Communicator& comm, const Kernels& k, int64_t n_experts = 0);

  // Experts [first_expert(), first_expert() + experts_per_rank()) are this rank's.
  int64_t first_expert() const { return per_ * comm_.rank(); }
  int64_t experts_per_rank() const { return per_; }
  int64_t bytes_sent() const { return bytes_sent_; }

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
  // Plan-ordered rows [T * K, d] to their experts' owners; what arrives, regrouped expert-major,
  // into `out` (resized).
  void to_owners(const DispatchPlan& p, const MoeExchange& ex, const float* rows, int64_t d,
                 std::vector<float>& out);
  // Expert-major rows of this rank's experts back to the ranks they came from, into `out`
  // [T * K, d] in plan order.
  void to_sources(const DispatchPlan& p, const MoeExchange& ex, const float* rows, int64_t d,
                  std::vector<float>& out);
  // Element bounds of the exchanges: by owner of the plan's rows, by source of the arrived ones.
  std::vector<int64_t> plan_bounds(const DispatchPlan& p, int64_t d) const;
  std::vector<int64_t> source_bounds(const MoeExchange& ex, int64_t d) const;
  // Copies between source-major (as MPI delivers) and expert-major (as the experts run) order.
  void regroup(const MoeExchange& ex, const float* in, float* out, int64_t d,
               bool to_expert_major) const;

  void set_experts(int64_t n_experts);

  const Communicator& comm_;
  LocalDispatcher local_;
  int64_t n_experts_ = 0, per_ = 0;
  std::vector<float> send_, recv_;
  int64_t bytes_sent_ = 0;
};

}  // namespace dsv3

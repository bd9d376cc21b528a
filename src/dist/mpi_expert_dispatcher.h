// Expert parallelism (SPEC §5, TR §3.2.2): MoE dispatch and combine as all-to-alls between the
// ranks of a communicator, through model/moe_dispatch.h's interface. Rank j holds experts
// [j·E/ranks, (j+1)·E/ranks). Dispatch groups this rank's rows by expert (the local plan, so an
// owner's rows are contiguous), exchanges the per-expert counts (MPI_Alltoall), then the rows
// (MPI_Alltoallv), and regroups what arrived expert-major — for each held expert, rank 0's rows,
// then rank 1's — so each expert runs one GEMM over every rank's tokens. Combine sends the outputs
// back the same way reversed and adds them locally in the plan's order; the backward mirrors both.
// Payloads (dist/ep_payload.h): FP32 both ways (bit-exact), or V3's FP8 dispatch — the rows
// towards the experts (forward: activations; backward: the gradients of the expert outputs) in
// E4M3 1x128 tiles with power-of-two scales — and BF16 combine (the rows back, both passes).
#pragma once
#include <span>
#include <vector>

#include "dist/ep_payload.h"
#include "dist/mpi_comm.h"
#include "model/moe_dispatch.h"

namespace dsv3 {

class MpiExpertDispatcher final : public MoeDispatcher {
 public:
  // Throws Error unless n_experts divides over the communicator's ranks. n_experts 0: the first
  // plan's (the trainer builds the dispatcher before it reads the model). to_experts: the
  // payload of the rows sent to the experts' owners; back: of the rows sent back.
  MpiExpertDispatcher(const Communicator& comm, const Kernels& k, int64_t n_experts = 0,
                      EpPayload to_experts = EpPayload::F32, EpPayload back = EpPayload::F32);

  // Experts [first_expert(), first_expert() + experts_per_rank()) are this rank's.
  int64_t first_expert() const { return per_ * comm_.rank(); }
  int64_t experts_per_rank() const { return per_; }
  // Bytes of rows this rank has sent to other ranks so far, and those rows: towards the experts
  // (dispatch, and the backward of combine) and back (combine, the backward of dispatch).
  int64_t bytes_sent() const { return bytes_sent_; }
  int64_t rows_to_experts() const { return rows_sent_[0]; }
  int64_t rows_back() const { return rows_sent_[1]; }

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
  // Row bounds of the exchanges: by owner of the plan's rows, by source of the arrived ones.
  std::vector<int64_t> plan_bounds(const DispatchPlan& p) const;
  std::vector<int64_t> source_bounds(const MoeExchange& ex) const;
  // Rows [send_bounds.back(), d] encoded in payload p to the ranks of send_bounds, what arrives
  // decoded into out (resized to recv_bounds.back() rows). dir: 0 towards the experts, 1 back.
  void exchange(EpPayload p, const float* rows, std::span<const int64_t> send_bounds,
                std::span<const int64_t> recv_bounds, int64_t d, std::vector<float>& out, int dir);
  // Copies between source-major (as MPI delivers) and expert-major (as the experts run) order.
  void regroup(const MoeExchange& ex, const float* in, float* out, int64_t d,
               bool to_expert_major) const;

  void set_experts(int64_t n_experts);

  const Communicator& comm_;
  LocalDispatcher local_;
  int64_t n_experts_ = 0, per_ = 0;
  EpPayload to_experts_, back_;
  std::vector<float> send_, recv_;
  std::vector<uint8_t> send_bytes_, recv_bytes_;
  int64_t bytes_sent_ = 0, rows_sent_[2] = {0, 0};
};

}  // namespace dsv3

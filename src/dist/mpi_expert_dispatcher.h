// Expert parallelism (SPEC §5, TR §3.2.2): MoE dispatch and combine as all-to-alls between the
// ranks of a communicator, through model/moe_dispatch.h's interface. Rank j holds experts
// [j·E/ranks, (j+1)·E/ranks). Dispatch sends each token's row once to every rank that holds one of
// its experts (not once per expert: node-limited routing, --node-limit, bounds those ranks and so
// the traffic), and each slot as a 4-byte index into those rows; the owner regroups what arrived
// expert-major — for each held expert, rank 0's slots, then rank 1's — so each expert runs one
// GEMM over every rank's tokens. Combine sends each slot's expert output back (the token's K
// outputs are added at home, in the plan's order). The backward of combine sends a token's output
// gradient once per owner the same way, with each slot's gate weight; the owner computes the
// slots' dL/dy and dL/dweight (the dot with the output it holds) and returns the latter, 4 bytes a
// slot. The backward of dispatch returns each slot's input gradient, summed at home.
// Payloads (dist/ep_payload.h): FP32 both ways (bit-exact), or V3's FP8 dispatch — the rows
// towards the experts (forward: activations; backward: the output gradients) in E4M3 1x128 tiles
// with power-of-two scales — and BF16 combine (the rows back, both passes). Indices, weights and
// their gradients travel as 4-byte words.
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
  // Bytes this rank has sent to other ranks so far, and what they carried: token rows towards the
  // experts (dispatch, and the backward of combine), slot rows back (combine, the backward of
  // dispatch) and 4-byte words (a slot's index, gate weight and its gradient).
  int64_t bytes_sent() const { return bytes_sent_; }
  int64_t rows_to_experts() const { return rows_sent_[0]; }
  int64_t rows_back() const { return rows_sent_[1]; }
  int64_t words_sent() const { return words_sent_; }

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
  // Row bounds of the exchanges: by owner of the plan's rows, by source of the arrived slots.
  std::vector<int64_t> plan_bounds(const DispatchPlan& p) const;
  std::vector<int64_t> source_bounds(const MoeExchange& ex) const;
  // The rows of ex.sent_tokens in x [T, d], to their owners; the token rows that arrive into
  // recv_ (ex.unique_bounds, by source).
  void tokens_to_owners(const MoeExchange& ex, const float* x, int64_t d);
  // Expert-major rows of this rank's experts back to the ranks they came from, into `out`
  // [T * K, d] in plan order.
  void to_sources(const DispatchPlan& p, const MoeExchange& ex, const float* rows, int64_t d,
                  std::vector<float>& out);
  // Rows [send_bounds.back(), d] encoded in payload p to the ranks of send_bounds, what arrives
  // decoded into out (resized to recv_bounds.back() rows). dir: 0 towards the experts, 1 back.
  void exchange(EpPayload p, const float* rows, std::span<const int64_t> send_bounds,
                std::span<const int64_t> recv_bounds, int64_t d, std::vector<float>& out, int dir);
  // 4-byte words (indices, weights) to the ranks of send_bounds, into recv.
  void exchange_words(const void* send, std::span<const int64_t> send_bounds, void* recv,
                      std::span<const int64_t> recv_bounds);
  // Copies rows of row_bytes between source-major (as MPI delivers) and expert-major (as the
  // experts run) order.
  void regroup(const MoeExchange& ex, const void* in, void* out, int64_t row_bytes,
               bool to_expert_major) const;

  void set_experts(int64_t n_experts);
  // Takes the plan's expert count on first use; throws if a later plan's differs.
  void check_plan(const DispatchPlan& p);

  const Communicator& comm_;
  LocalDispatcher local_;
  int64_t n_experts_ = 0, per_ = 0;
  EpPayload to_experts_, back_;
  std::vector<float> send_, recv_, returned_;
  std::vector<uint8_t> send_bytes_, recv_bytes_;
  int64_t bytes_sent_ = 0, rows_sent_[2] = {0, 0}, words_sent_ = 0;
};

}  // namespace dsv3

// The all-to-all MoE dispatcher: see mpi_expert_dispatcher.h.
#include "dist/mpi_expert_dispatcher.h"

#include <algorithm>

#include "base/error.h"

namespace dsv3 {

MpiExpertDispatcher::MpiExpertDispatcher(const Communicator& comm, const Kernels& k,
                                         int64_t n_experts, EpPayload to_experts, EpPayload back)
    : comm_(comm), local_(k), to_experts_(to_experts), back_(back) {
  if (n_experts != 0) set_experts(n_experts);
}

void MpiExpertDispatcher::set_experts(int64_t n_experts) {
  DSV3_CHECK(n_experts > 0 && n_experts % comm_.size() == 0,
             "expert parallel: " + std::to_string(n_experts) +
                 " routed experts do not divide over " + std::to_string(comm_.size()) + " ranks",
             "use a number of ranks that divides the model's n_routed_experts");
  n_experts_ = n_experts;
  per_ = n_experts / comm_.size();
}

std::vector<int64_t> MpiExpertDispatcher::plan_bounds(const DispatchPlan& p) const {
  std::vector<int64_t> b(static_cast<size_t>(comm_.size()) + 1);
  for (int j = 0; j <= comm_.size(); ++j) b[static_cast<size_t>(j)] = p.offsets[j * per_];
  return b;
}

std::vector<int64_t> MpiExpertDispatcher::source_bounds(const MoeExchange& ex) const {
  std::vector<int64_t> b(static_cast<size_t>(comm_.size()) + 1, 0);
  for (int i = 0; i < comm_.size(); ++i) {
    int64_t rows = 0;
    for (int64_t e = 0; e < per_; ++e) rows += ex.by_source[static_cast<size_t>(i * per_ + e)];
    b[static_cast<size_t>(i) + 1] = b[static_cast<size_t>(i)] + rows;
  }
  return b;
}

void MpiExpertDispatcher::exchange(EpPayload p, const float* rows,
                                   std::span<const int64_t> send_bounds,
                                   std::span<const int64_t> recv_bounds, int64_t d,
                                   std::vector<float>& out, int dir) {
  const int64_t rb = payload_row_bytes(p, d), n_send = send_bounds.back(),
                n_recv = recv_bounds.back();
  std::vector<int64_t> sb(send_bounds.begin(), send_bounds.end()),
      rcb(recv_bounds.begin(), recv_bounds.end());
  for (int64_t& b : sb) b *= rb;
  for (int64_t& b : rcb) b *= rb;
  send_bytes_.resize(static_cast<size_t>(n_send * rb));
  recv_bytes_.resize(static_cast<size_t>(n_recv * rb));
  encode_rows(p, rows, n_send, d, send_bytes_.data());
  comm_.alltoallv(send_bytes_.data(), sb, recv_bytes_.data(), rcb);
  out.resize(static_cast<size_t>(n_recv * d));
  decode_rows(p, recv_bytes_.data(), n_recv, d, out.data());
  const auto me = static_cast<size_t>(comm_.rank());
  const int64_t leaving = n_send - (send_bounds[me + 1] - send_bounds[me]);
  rows_sent_[dir] += leaving;
  bytes_sent_ += leaving * rb;
}

void MpiExpertDispatcher::regroup(const MoeExchange& ex, const float* in, float* out, int64_t d,
                                  bool to_expert_major) const {
  int64_t src_at = 0;  // source-major row
  for (int i = 0; i < comm_.size(); ++i)
    for (int64_t e = 0; e < per_; ++e) {
      // Expert-major: this expert's rows start at its offset, after the earlier sources' rows.
      const int64_t ge = first_expert() + e;
      int64_t dst_at = ex.offsets[ge];
      for (int k = 0; k < i; ++k) dst_at += ex.by_source[static_cast<size_t>(k * per_ + e)];
      const int64_t n = ex.by_source[static_cast<size_t>(i * per_ + e)];
      if (to_expert_major)
        std::copy_n(in + src_at * d, n * d, out + dst_at * d);
      else
        std::copy_n(in + dst_at * d, n * d, out + src_at * d);
      src_at += n;
    }
}

void MpiExpertDispatcher::to_owners(const DispatchPlan& p, const MoeExchange& ex, const float* rows,
                                    int64_t d, std::vector<float>& out) {
  exchange(to_experts_, rows, plan_bounds(p), source_bounds(ex), d, recv_, 0);
  out.resize(static_cast<size_t>(ex.offsets[n_experts_] * d));
  regroup(ex, recv_.data(), out.data(), d, true);
}

void MpiExpertDispatcher::to_sources(const DispatchPlan& p, const MoeExchange& ex,
                                     const float* rows, int64_t d, std::vector<float>& out) {
  const std::vector<int64_t> sb = source_bounds(ex);
  send_.resize(static_cast<size_t>(sb.back() * d));
  regroup(ex, rows, send_.data(), d, false);
  exchange(back_, send_.data(), sb, plan_bounds(p), d, out, 1);
}

void MpiExpertDispatcher::dispatch(const DispatchPlan& p, const float* x, int64_t d,
                                   MoeExchange& ex, std::vector<float>& grouped) {
  if (n_experts_ == 0) set_experts(p.n_experts);
  DSV3_CHECK(p.n_experts == n_experts_, "expert parallel: a plan over " +
                                            std::to_string(p.n_experts) + " experts, expected " +
                                            std::to_string(n_experts_));
  // This rank's rows grouped by expert, hence by owner.
  std::vector<float> mine;
  local_.dispatch(p, x, d, ex, mine);
  // Counts first: rank i learns how many rows of each of its experts every rank sends.
  ex.by_source.resize(static_cast<size_t>(comm_.size() * per_));
  comm_.alltoall(p.counts.data(), static_cast<int>(per_), ex.by_source.data());
  ex.counts.assign(static_cast<size_t>(n_experts_), 0);
  for (int i = 0; i < comm_.size(); ++i)
    for (int64_t e = 0; e < per_; ++e)
      ex.counts[static_cast<size_t>(first_expert() + e)] +=
          ex.by_source[static_cast<size_t>(i * per_ + e)];
  ex.offsets.assign(static_cast<size_t>(n_experts_) + 1, 0);
  for (int64_t e = 0; e < n_experts_; ++e) ex.offsets[e + 1] = ex.offsets[e] + ex.counts[e];
  to_owners(p, ex, mine.data(), d, grouped);
}

void MpiExpertDispatcher::combine(const DispatchPlan& p, MoeExchange& ex, const float* y,
                                  const float* weights, int64_t d, float* out) {
  to_sources(p, ex, y, d, ex.returned);
  local_.combine(p, ex, ex.returned.data(), weights, d, out);
}

void MpiExpertDispatcher::combine_backward(const DispatchPlan& p, const MoeExchange& ex,
                                           const float* dout, const float*, const float* weights,
                                           int64_t d, std::vector<float>& dy, float* dweights) {
  std::vector<float> mine;
  local_.combine_backward(p, ex, dout, ex.returned.data(), weights, d, mine, dweights);
  to_owners(p, ex, mine.data(), d, dy);
}

void MpiExpertDispatcher::dispatch_backward(const DispatchPlan& p, const MoeExchange& ex,
                                            const float* dgrouped, int64_t d, float* dx) {
  std::vector<float> mine;
  to_sources(p, ex, dgrouped, d, mine);
  local_.dispatch_backward(p, ex, mine.data(), d, dx);
}

}  // namespace dsv3

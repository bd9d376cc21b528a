// The all-to-all MoE dispatcher: see mpi_expert_dispatcher.h.
#include "dist/mpi_expert_dispatcher.h"

#include <algorithm>
#include <cstring>

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

void MpiExpertDispatcher::exchange_words(const void* send, std::span<const int64_t> send_bounds,
                                         void* recv, std::span<const int64_t> recv_bounds) {
  std::vector<int64_t> sb(send_bounds.begin(), send_bounds.end()),
      rb(recv_bounds.begin(), recv_bounds.end());
  for (int64_t& b : sb) b *= 4;
  for (int64_t& b : rb) b *= 4;
  comm_.alltoallv(static_cast<const uint8_t*>(send), sb, static_cast<uint8_t*>(recv), rb);
  const auto me = static_cast<size_t>(comm_.rank());
  const int64_t leaving = send_bounds.back() - (send_bounds[me + 1] - send_bounds[me]);
  words_sent_ += leaving;
  bytes_sent_ += 4 * leaving;
}

void MpiExpertDispatcher::regroup(const MoeExchange& ex, const void* in, void* out,
                                  int64_t row_bytes, bool to_expert_major) const {
  const auto* src = static_cast<const uint8_t*>(in);
  auto* dst = static_cast<uint8_t*>(out);
  int64_t src_at = 0;  // source-major row
  for (int i = 0; i < comm_.size(); ++i)
    for (int64_t e = 0; e < per_; ++e) {
      // Expert-major: this expert's rows start at its offset, after the earlier sources' rows.
      const int64_t ge = first_expert() + e;
      int64_t dst_at = ex.offsets[ge];
      for (int k = 0; k < i; ++k) dst_at += ex.by_source[static_cast<size_t>(k * per_ + e)];
      const int64_t n = ex.by_source[static_cast<size_t>(i * per_ + e)];
      if (n > 0) {
        if (to_expert_major)
          std::memcpy(dst + dst_at * row_bytes, src + src_at * row_bytes, n * row_bytes);
        else
          std::memcpy(dst + src_at * row_bytes, src + dst_at * row_bytes, n * row_bytes);
      }
      src_at += n;
    }
}

void MpiExpertDispatcher::tokens_to_owners(const MoeExchange& ex, const float* x, int64_t d) {
  send_.resize(ex.sent_tokens.size() * static_cast<size_t>(d));
  for (size_t u = 0; u < ex.sent_tokens.size(); ++u)
    std::copy_n(x + ex.sent_tokens[u] * d, d, send_.data() + u * d);
  exchange(to_experts_, send_.data(), ex.sent_bounds, ex.unique_bounds, d, recv_, 0);
}

void MpiExpertDispatcher::to_sources(const DispatchPlan& p, const MoeExchange& ex,
                                     const float* rows, int64_t d, std::vector<float>& out) {
  const std::vector<int64_t> sb = source_bounds(ex);
  send_.resize(static_cast<size_t>(sb.back() * d));
  regroup(ex, rows, send_.data(), d * 4, false);
  exchange(back_, send_.data(), sb, plan_bounds(p), d, out, 1);
}

void MpiExpertDispatcher::check_plan(const DispatchPlan& p) {
  if (n_experts_ == 0) set_experts(p.n_experts);
  DSV3_CHECK(p.n_experts == n_experts_, "expert parallel: a plan over " +
                                            std::to_string(p.n_experts) + " experts, expected " +
                                            std::to_string(n_experts_));
}

void MpiExpertDispatcher::dispatch(const DispatchPlan& p, const float* x, int64_t d,
                                   MoeExchange& ex, std::vector<float>& grouped) {
  check_plan(p);
  const int R = comm_.size();
  const int64_t K = p.top_k;
  // 1. The tokens each owner needs (ascending), and each plan row's index among them. The plan's
  // rows are grouped by expert, hence by owner.
  const std::vector<int64_t> pb = plan_bounds(p);
  std::vector<int32_t> index(static_cast<size_t>(pb.back()));
  std::vector<int32_t> pos(static_cast<size_t>(p.tokens), -1);
  ex.sent_tokens.clear();
  ex.sent_bounds.assign(static_cast<size_t>(R) + 1, 0);
  for (int j = 0; j < R; ++j) {
    const auto first = static_cast<ptrdiff_t>(ex.sent_tokens.size());
    for (int64_t r = pb[j]; r < pb[j + 1]; ++r) {
      const int32_t t = static_cast<int32_t>(p.slot_of_row[r] / K);
      if (pos[t] < 0) {
        pos[t] = 0;
        ex.sent_tokens.push_back(t);
      }
    }
    std::sort(ex.sent_tokens.begin() + first, ex.sent_tokens.end());
    for (auto u = first; u < static_cast<ptrdiff_t>(ex.sent_tokens.size()); ++u)
      pos[ex.sent_tokens[u]] = static_cast<int32_t>(u - first);
    for (int64_t r = pb[j]; r < pb[j + 1]; ++r) index[r] = pos[p.slot_of_row[r] / K];
    for (auto u = first; u < static_cast<ptrdiff_t>(ex.sent_tokens.size()); ++u)
      pos[ex.sent_tokens[u]] = -1;
    ex.sent_bounds[static_cast<size_t>(j) + 1] = static_cast<int64_t>(ex.sent_tokens.size());
  }
  // 2. Counts first: each rank learns how many slots of each of its experts, and how many token
  // rows, every rank sends.
  const int64_t w = per_ + 1;
  std::vector<int64_t> send_counts(static_cast<size_t>(R * w)), recv_counts(send_counts.size());
  for (int j = 0; j < R; ++j) {
    std::copy_n(p.counts.begin() + j * per_, per_, send_counts.begin() + j * w);
    send_counts[static_cast<size_t>(j * w + per_)] = ex.sent_bounds[j + 1] - ex.sent_bounds[j];
  }
  comm_.alltoall(send_counts.data(), static_cast<int>(w), recv_counts.data());
  ex.by_source.resize(static_cast<size_t>(R * per_));
  ex.unique_bounds.assign(static_cast<size_t>(R) + 1, 0);
  for (int i = 0; i < R; ++i) {
    std::copy_n(recv_counts.begin() + i * w, per_, ex.by_source.begin() + i * per_);
    ex.unique_bounds[static_cast<size_t>(i) + 1] =
        ex.unique_bounds[static_cast<size_t>(i)] + recv_counts[static_cast<size_t>(i * w + per_)];
  }
  ex.counts.assign(static_cast<size_t>(n_experts_), 0);
  for (int i = 0; i < R; ++i)
    for (int64_t e = 0; e < per_; ++e)
      ex.counts[static_cast<size_t>(first_expert() + e)] +=
          ex.by_source[static_cast<size_t>(i * per_ + e)];
  ex.offsets.assign(static_cast<size_t>(n_experts_) + 1, 0);
  for (int64_t e = 0; e < n_experts_; ++e) ex.offsets[e + 1] = ex.offsets[e] + ex.counts[e];
  // 3. The token rows, once per owner, then each slot's index into them (made global over the
  // sources' rows and regrouped expert-major).
  tokens_to_owners(ex, x, d);
  const std::vector<int64_t> sb = source_bounds(ex);
  std::vector<int32_t> arrived(static_cast<size_t>(sb.back()));
  exchange_words(index.data(), pb, arrived.data(), sb);
  for (int i = 0; i < R; ++i)
    for (int64_t r = sb[i]; r < sb[i + 1]; ++r)
      arrived[r] += static_cast<int32_t>(ex.unique_bounds[static_cast<size_t>(i)]);
  ex.unique_of_row.resize(arrived.size());
  regroup(ex, arrived.data(), ex.unique_of_row.data(), 4, true);
  grouped.resize(static_cast<size_t>(sb.back() * d));
  for (size_t r = 0; r < ex.unique_of_row.size(); ++r)
    std::copy_n(recv_.data() + ex.unique_of_row[r] * d, d, grouped.data() + r * d);
}

void MpiExpertDispatcher::combine(const DispatchPlan& p, MoeExchange& ex, const float* y,
                                  const float* weights, int64_t d, float* out) {
  to_sources(p, ex, y, d, returned_);
  local_.combine(p, ex, returned_.data(), weights, d, out);
}

void MpiExpertDispatcher::combine_backward(const DispatchPlan& p, const MoeExchange& ex,
                                           const float* dout, const float* y, const float* weights,
                                           int64_t d, std::vector<float>& dy, float* dweights) {
  check_plan(p);  // a dispatcher for backward chunks only (--overlap-fb) sees no dispatch
  // The output gradient of each token once per owner (as dispatch's rows), each slot's gate
  // weight beside it.
  tokens_to_owners(ex, dout, d);
  const std::vector<int64_t> pb = plan_bounds(p), sb = source_bounds(ex);
  std::vector<float> plan_words(static_cast<size_t>(pb.back())), src_words(sb.back()),
      major(sb.back());
  for (int64_t r = 0; r < pb.back(); ++r) plan_words[r] = weights[p.slot_of_row[r]];
  exchange_words(plan_words.data(), pb, src_words.data(), sb);
  regroup(ex, src_words.data(), major.data(), 4, true);
  // The owner's part: dL/dy of its rows, and dL/dweight from the outputs it holds.
  dy.resize(static_cast<size_t>(sb.back() * d));
  for (int64_t r = 0; r < sb.back(); ++r)
    major[r] = combine_backward_row(major[r], recv_.data() + ex.unique_of_row[r] * d, y + r * d, d,
                                    dy.data() + r * d);
  // dL/dweight home, in plan order.
  regroup(ex, major.data(), src_words.data(), 4, false);
  exchange_words(src_words.data(), sb, plan_words.data(), pb);
  for (int64_t r = 0; r < pb.back(); ++r) dweights[p.slot_of_row[r]] = plan_words[r];
}

void MpiExpertDispatcher::dispatch_backward(const DispatchPlan& p, const MoeExchange& ex,
                                            const float* dgrouped, int64_t d, float* dx) {
  check_plan(p);
  std::vector<float> mine;
  to_sources(p, ex, dgrouped, d, mine);
  local_.dispatch_backward(p, ex, mine.data(), d, dx);
}

}  // namespace dsv3

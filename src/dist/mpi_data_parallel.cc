// Fixed-order reductions over MPI: see mpi_data_parallel.h.
#include "dist/mpi_data_parallel.h"

#include <algorithm>
#include <utility>

#include "base/error.h"

namespace dsv3 {

namespace {

// out [len] = the n ranks' copies [n, len] added in rank order: rank 0's, plus rank 1's, ...
// (the one order every reduction of this group uses, blocking or in buckets).
void add_in_rank_order(float* out, const float* copies, int64_t len, int n) {
  for (int64_t k = 0; k < len; ++k) out[k] = copies[k];
  for (int i = 1; i < n; ++i) {
    const float* in = copies + i * len;
    for (int64_t k = 0; k < len; ++k) out[k] += in[k];
  }
}

}  // namespace

void MpiDataParallel::sum_in_rank_order(std::span<float> x, std::span<const int64_t> bounds) {
  const int n = size(), me = rank();
  DSV3_CHECK(static_cast<int>(bounds.size()) == n + 1 && bounds[0] == 0 &&
                 bounds[static_cast<size_t>(n)] == static_cast<int64_t>(x.size()),
             "data parallel: shard bounds do not cover the " + std::to_string(x.size()) +
                 "-element buffer over " + std::to_string(n) + " ranks");
  const int64_t lo = bounds[static_cast<size_t>(me)],
                len = bounds[static_cast<size_t>(me) + 1] - lo;
  // Rank r sends its elements [bounds[j], bounds[j+1]) to rank j; receives every rank's copy of
  // its own shard, rank i's at i·len.
  std::vector<int64_t> recv_bounds(static_cast<size_t>(n) + 1);
  for (int i = 0; i <= n; ++i) recv_bounds[static_cast<size_t>(i)] = i * len;
  recv_.resize(static_cast<size_t>(n * len));
  comm_.alltoallv(x.data(), bounds, recv_.data(), recv_bounds);
  add_in_rank_order(x.data() + lo, recv_.data(), len, n);
  comm_.allgatherv_inplace(x, bounds);
  // Sent: every shard but this rank's own (alltoallv), then this rank's shard to n - 1 ranks.
  bytes_sent_ += static_cast<int64_t>(sizeof(float)) *
                 ((static_cast<int64_t>(x.size()) - len) + (n - 1) * len);
}

void MpiDataParallel::start_sum(std::span<float> x, std::span<const int64_t> bounds, int64_t lo,
                                int64_t hi) {
  const int n = size(), me = rank();
  DSV3_CHECK(static_cast<int>(bounds.size()) == n + 1 && 0 <= lo && lo <= hi &&
                 hi <= static_cast<int64_t>(x.size()),
             "data parallel: bucket [" + std::to_string(lo) + ", " + std::to_string(hi) +
                 ") is not within the " + std::to_string(x.size()) + "-element buffer");
  // Rank j gets the bucket's part of its shard; this rank, every rank's copy of its own part.
  const auto clip = [&](int r) {
    const int64_t b = std::clamp(bounds[static_cast<size_t>(r)], lo, hi),
                  e = std::clamp(bounds[static_cast<size_t>(r) + 1], lo, hi);
    return std::pair{b, e};
  };
  std::vector<int64_t> send_bounds(static_cast<size_t>(n) + 1), recv_bounds(send_bounds.size());
  const auto [b, e] = clip(me);
  for (int j = 0; j < n; ++j) {
    send_bounds[static_cast<size_t>(j)] = clip(j).first;
    recv_bounds[static_cast<size_t>(j)] = j * (e - b);
  }
  send_bounds[static_cast<size_t>(n)] = clip(n - 1).second;
  recv_bounds[static_cast<size_t>(n)] = n * (e - b);
  Bucket& k = buckets_.emplace_back(Bucket{b, e - b, std::vector<float>(n * (e - b)), {}});
  k.request = comm_.ialltoallv(x.data(), send_bounds, k.recv.data(), recv_bounds);
  // Let the buckets in flight progress (MPI moves nonblocking collectives inside MPI calls).
  for (Bucket& f : buckets_) Communicator::test(f.request);
  bytes_sent_ += static_cast<int64_t>(sizeof(float)) * ((hi - lo) - (e - b));
}

void MpiDataParallel::finish_sum(std::span<float> x, std::span<const int64_t> bounds) {
  const int n = size(), me = rank();
  int64_t started = 0;
  for (Bucket& k : buckets_) {
    Communicator::wait(k.request);
    add_in_rank_order(x.data() + k.lo, k.recv.data(), k.len, n);
    started += k.len;
  }
  buckets_.clear();
  const int64_t shard = bounds[static_cast<size_t>(me) + 1] - bounds[static_cast<size_t>(me)];
  DSV3_CHECK(started == shard, "data parallel: the buckets started cover " +
                                   std::to_string(started) + " of this rank's " +
                                   std::to_string(shard) + " shard elements, not each once");
  comm_.allgatherv_inplace(x, bounds);
  bytes_sent_ += static_cast<int64_t>(sizeof(float)) * shard * (n - 1);
}

void MpiDataParallel::sum_in_rank_order(std::span<double> x) {
  const int n = size();
  all_.resize(static_cast<size_t>(n) * x.size());
  comm_.allgather(x.data(), static_cast<int>(x.size()), all_.data());
  for (size_t k = 0; k < x.size(); ++k) {
    double s = all_[k];
    for (int i = 1; i < n; ++i) s += all_[static_cast<size_t>(i) * x.size() + k];
    x[k] = s;
  }
  bytes_sent_ += static_cast<int64_t>(sizeof(double) * x.size()) * (n - 1);
}

void MpiDataParallel::sum(std::span<int64_t> x) {
  comm_.allreduce_sum(x);
  bytes_sent_ += static_cast<int64_t>(sizeof(int64_t) * x.size());  // about, for a ring or tree
}

void MpiDataParallel::allgather(std::span<float> x, std::span<const int64_t> bounds) {
  comm_.allgatherv_inplace(x, bounds);
  const auto me = static_cast<size_t>(rank());
  bytes_sent_ += static_cast<int64_t>(sizeof(float)) * (bounds[me + 1] - bounds[me]) * (size() - 1);
}

void MpiDataParallel::broadcast(std::string& text, int root) {
  comm_.broadcast(text, root);
  if (rank() == root) bytes_sent_ += static_cast<int64_t>(text.size()) * (size() - 1);
}

}  // namespace dsv3

// Fixed-order reductions over MPI: see mpi_data_parallel.h.
#include "dist/mpi_data_parallel.h"

#include "base/error.h"

namespace dsv3 {

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
  float* out = x.data() + lo;
  for (int64_t k = 0; k < len; ++k) out[k] = recv_[static_cast<size_t>(k)];
  for (int i = 1; i < n; ++i) {
    const float* in = recv_.data() + i * len;
    for (int64_t k = 0; k < len; ++k) out[k] += in[k];
  }
  comm_.allgatherv_inplace(x, bounds);
  // Sent: every shard but this rank's own (alltoallv), then this rank's shard to n - 1 ranks.
  bytes_sent_ += static_cast<int64_t>(sizeof(float)) *
                 ((static_cast<int64_t>(x.size()) - len) + (n - 1) * len);
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

// train/data_parallel.h's collectives over MPI (issue 18). The fixed-order float sum is a
// reduce-scatter built from MPI_Alltoallv (rank r receives every rank's copy of its shard and adds
// them in rank order itself) and an MPI_Allgatherv: MPI_Allreduce's own order depends on the
// algorithm OpenMPI picks for the message size and rank count, this one does not.
#pragma once
#include <vector>

#include "dist/mpi_comm.h"
#include "train/data_parallel.h"

namespace dsv3 {

class MpiDataParallel : public DataParallelGroup {
 public:
  explicit MpiDataParallel(const Communicator& comm) : comm_(comm) {}

  int rank() const override { return comm_.rank(); }
  int size() const override { return comm_.size(); }
  void sum_in_rank_order(std::span<float> x, std::span<const int64_t> bounds) override;
  void start_sum(std::span<float> x, std::span<const int64_t> bounds, int64_t lo,
                 int64_t hi) override;
  void finish_sum(std::span<float> x, std::span<const int64_t> bounds) override;
  void sum_in_rank_order(std::span<double> x) override;
  void sum(std::span<int64_t> x) override;
  void allgather(std::span<float> x, std::span<const int64_t> bounds) override;
  void broadcast(std::string& text, int root) override;

  // Bytes this rank has sent through the group so far (docs/DISTRIBUTED.md's volume per step).
  int64_t bytes_sent() const { return bytes_sent_; }

 private:
  const Communicator& comm_;
  std::vector<float> recv_;
  std::vector<double> all_;
  struct Bucket {  // a started reduce-scatter: this rank's shard ∩ [lo, hi) from every rank
    int64_t lo, len;
    std::vector<float> recv;  // [ranks, len], rank i's copy at i·len
    MPI_Request request;
  };
  std::vector<Bucket> buckets_;
  int64_t bytes_sent_ = 0;
};

}  // namespace dsv3

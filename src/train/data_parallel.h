// Data parallelism as the trainer sees it (SPEC §5: ZeRO-1 DP): the few collectives one optimizer
// step needs over the ranks of a data-parallel group. src/dist implements them over MPI; train
// itself knows no MPI, and a single process passes no group.
//
// Reductions of floating-point data run in a fixed order — rank 0's value first, then rank 1's
// added, and so on — whatever algorithm the transport uses, so every rank ends with the same bits
// and a run over D ranks equals one process that sums the same D parts in turn (the trainer's
// TrainConfig::dp, see trainer.h).
#pragma once
#include <cstdint>
#include <span>
#include <string>

namespace dsv3 {

class DataParallelGroup {
 public:
  virtual ~DataParallelGroup() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // x: on every rank, ((x_0 + x_1) + x_2) + ... over the ranks' x. bounds [size() + 1]: rank r
  // sums the elements [bounds[r], bounds[r+1]) (a reduce-scatter), then every rank gets every
  // sum (an allgather); bounds[0] = 0, bounds[size()] = x.size().
  virtual void sum_in_rank_order(std::span<float> x, std::span<const int64_t> bounds) = 0;
  // The same in buckets, to overlap with the backward pass: start_sum starts the reduce-scatter
  // of x's elements [lo, hi) and returns at once; when every element of x has been started once,
  // finish_sum completes them and allgathers, leaving x as sum_in_rank_order(x, bounds) would,
  // bit for bit (each element's sum in rank order). Every rank starts the same buckets in the
  // same order; a started range of x must not change until finish_sum.
  virtual void start_sum(std::span<float> x, std::span<const int64_t> bounds, int64_t lo,
                         int64_t hi) = 0;
  virtual void finish_sum(std::span<float> x, std::span<const int64_t> bounds) = 0;
  // The same for a few doubles (the step's losses), every element summed by every rank.
  virtual void sum_in_rank_order(std::span<double> x) = 0;
  // Integers (expert loads, flags): exact in any order.
  virtual void sum(std::span<int64_t> x) = 0;
  // x: rank r's elements [bounds[r], bounds[r+1]) copied to every rank.
  virtual void allgather(std::span<float> x, std::span<const int64_t> bounds) = 0;
  // `text` of rank `root` on every rank (a failing rank's error message).
  virtual void broadcast(std::string& text, int root) = 0;
};

}  // namespace dsv3

// A thin RAII layer over MPI (issue 18): the session (MPI_Init_thread / MPI_Finalize) and a
// communicator (a duplicate of MPI_COMM_WORLD, freed on destruction) whose calls throw Error
// naming the collective instead of returning codes. Only src/dist and the CLI see MPI; everything
// below knows the collectives through train/data_parallel.h.
#pragma once
#include <mpi.h>

#include <cstdint>
#include <span>
#include <string>

namespace dsv3 {

class MpiSession {
 public:
  // Initialises MPI. Threads: funneled (only the main thread calls MPI), or with
  // `threads_call_mpi` multiple (two threads at once: --overlap-fb's F&B pairs), which an MPI
  // library without that support refuses with an error.
  explicit MpiSession(bool threads_call_mpi = false);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  // Ends every rank with `code` (MPI_Abort): what a rank that failed must do, since the others
  // would otherwise wait for it in their next collective forever.
  [[noreturn]] static void abort(int code);
};

class Communicator {
 public:
  Communicator();  // every rank of the job
  // The ranks of `parent` with the same color, ordered by key (MPI_Comm_split).
  Communicator(const Communicator& parent, int color, int key);
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  MPI_Comm get() const { return comm_; }
  void barrier() const;

  // The calls the data-parallel group needs; counts and displacements in elements.
  void allgatherv_inplace(std::span<float> x, std::span<const int64_t> bounds) const;
  void alltoallv(const float* send, std::span<const int64_t> send_bounds, float* recv,
                 std::span<const int64_t> recv_bounds) const;
  // The same, nonblocking (MPI_Ialltoallv): the buffers stay the caller's until wait() or a
  // true test() completes the request.
  MPI_Request ialltoallv(const float* send, std::span<const int64_t> send_bounds, float* recv,
                         std::span<const int64_t> recv_bounds) const;
  // The same for bytes (encoded MoE rows, dist/ep_payload.h).
  void alltoallv(const uint8_t* send, std::span<const int64_t> send_bounds, uint8_t* recv,
                 std::span<const int64_t> recv_bounds) const;
  void allgather(const double* send, int n, double* recv) const;
  void allreduce_sum(std::span<int64_t> x) const;
  void broadcast(std::string& text, int root) const;  // its length first, then the bytes
  // send [size() * n]: elements [j·n, (j+1)·n) to rank j; recv [size() * n] from each in turn.
  void alltoall(const int64_t* send, int n, int64_t* recv) const;
  // Point to point (the pipeline's activations and gradients), nonblocking: the buffer stays the
  // caller's until wait() or a true test() completes the request.
  MPI_Request isend(const float* x, int64_t n, int dest, int tag) const;
  MPI_Request irecv(float* x, int64_t n, int src, int tag) const;
  static void wait(MPI_Request& r);
  static bool test(MPI_Request& r);

 private:
  void alltoallv(const void* send, std::span<const int64_t> send_bounds, void* recv,
                 std::span<const int64_t> recv_bounds, MPI_Datatype type) const;

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
};

// Throws Error naming `call` when rc is not MPI_SUCCESS.
void check_mpi(int rc, const std::string& call);

}  // namespace dsv3

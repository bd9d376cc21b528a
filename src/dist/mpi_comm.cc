// The MPI session and communicator: see mpi_comm.h.
#include "dist/mpi_comm.h"

#include <climits>
#include <vector>

#include "base/error.h"

namespace dsv3 {

namespace {

// MPI counts are int: a message of more elements needs splitting, which dsv3 does not do yet.
std::vector<int> to_counts(std::span<const int64_t> bounds, std::vector<int>& displs) {
  std::vector<int> counts(bounds.size() - 1);
  displs.resize(counts.size());
  for (size_t i = 0; i + 1 < bounds.size(); ++i) {
    DSV3_CHECK(bounds[i + 1] - bounds[i] <= INT_MAX && bounds[i + 1] <= INT_MAX,
               "MPI: a message of more than 2^31 elements",
               "use more ranks or a smaller model; dsv3 does not split MPI messages");
    counts[i] = static_cast<int>(bounds[i + 1] - bounds[i]);
    displs[i] = static_cast<int>(bounds[i]);
  }
  return counts;
}

}  // namespace

void check_mpi(int rc, const std::string& call) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  throw Error("MPI: " + call + " failed: " + std::string(msg, static_cast<size_t>(len)),
              "check that every rank runs the same command (mpirun -np N dsv3 ...)");
}

MpiSession::MpiSession(bool threads_call_mpi) {
  const int want = threads_call_mpi ? MPI_THREAD_MULTIPLE : MPI_THREAD_FUNNELED;
  int provided = 0;
  check_mpi(MPI_Init_thread(nullptr, nullptr, want, &provided), "MPI_Init_thread");
  // Errors come back as codes (check_mpi turns them into Error) instead of ending the job.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  if (provided < want) {
    MPI_Finalize();
    throw Error(
        "MPI: this MPI library does not let two threads call it at once "
        "(MPI_THREAD_MULTIPLE), which --overlap-fb needs",
        "run without --overlap-fb, or with an MPI built with thread support");
  }
}

MpiSession::~MpiSession() {
  MPI_Finalize();
}

void MpiSession::abort(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::abort();  // MPI_Abort does not return; this is for the compiler
}

Communicator::Communicator() {
  check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
  MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
}

Communicator::Communicator(const Communicator& parent, int color, int key) {
  check_mpi(MPI_Comm_split(parent.comm_, color, key, &comm_), "MPI_Comm_split");
  MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
}

Communicator::~Communicator() {
  if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

void Communicator::barrier() const {
  check_mpi(MPI_Barrier(comm_), "MPI_Barrier");
}

void Communicator::allgatherv_inplace(std::span<float> x, std::span<const int64_t> bounds) const {
  std::vector<int> displs;
  const std::vector<int> counts = to_counts(bounds, displs);
  check_mpi(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, x.data(), counts.data(),
                           displs.data(), MPI_FLOAT, comm_),
            "MPI_Allgatherv");
}

void Communicator::alltoallv(const void* send, std::span<const int64_t> send_bounds, void* recv,
                             std::span<const int64_t> recv_bounds, MPI_Datatype type) const {
  std::vector<int> sd, rd;
  const std::vector<int> sc = to_counts(send_bounds, sd), rc = to_counts(recv_bounds, rd);
  check_mpi(
      MPI_Alltoallv(send, sc.data(), sd.data(), type, recv, rc.data(), rd.data(), type, comm_),
      "MPI_Alltoallv");
}

void Communicator::alltoallv(const float* send, std::span<const int64_t> send_bounds, float* recv,
                             std::span<const int64_t> recv_bounds) const {
  alltoallv(send, send_bounds, recv, recv_bounds, MPI_FLOAT);
}

void Communicator::alltoallv(const uint8_t* send, std::span<const int64_t> send_bounds,
                             uint8_t* recv, std::span<const int64_t> recv_bounds) const {
  alltoallv(send, send_bounds, recv, recv_bounds, MPI_BYTE);
}

void Communicator::allgather(const double* send, int n, double* recv) const {
  check_mpi(MPI_Allgather(send, n, MPI_DOUBLE, recv, n, MPI_DOUBLE, comm_), "MPI_Allgather");
}

void Communicator::broadcast(std::string& text, int root) const {
  auto n = static_cast<int64_t>(text.size());
  check_mpi(MPI_Bcast(&n, 1, MPI_INT64_T, root, comm_), "MPI_Bcast");
  text.resize(static_cast<size_t>(n));
  check_mpi(MPI_Bcast(text.data(), static_cast<int>(n), MPI_CHAR, root, comm_), "MPI_Bcast");
}

void Communicator::allreduce_sum(std::span<int64_t> x) const {
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, x.data(), static_cast<int>(x.size()), MPI_INT64_T, MPI_SUM,
                          comm_),
            "MPI_Allreduce");
}

void Communicator::alltoall(const int64_t* send, int n, int64_t* recv) const {
  check_mpi(MPI_Alltoall(send, n, MPI_INT64_T, recv, n, MPI_INT64_T, comm_), "MPI_Alltoall");
}

namespace {
int message_count(int64_t n) {
  DSV3_CHECK(n >= 0 && n <= INT_MAX, "MPI: a message of more than 2^31 elements",
             "use smaller micro-batches; dsv3 does not split MPI messages");
  return static_cast<int>(n);
}
}  // namespace

MPI_Request Communicator::ialltoallv(const float* send, std::span<const int64_t> send_bounds,
                                     float* recv, std::span<const int64_t> recv_bounds) const {
  // Displacements relative to the buffers' starts, as the blocking alltoallv's.
  std::vector<int64_t> sb(send_bounds.begin(), send_bounds.end());
  for (int64_t& v : sb) v -= send_bounds[0];
  std::vector<int> sdispls, rdispls;
  const std::vector<int> scounts = to_counts(sb, sdispls),
                         rcounts = to_counts(recv_bounds, rdispls);
  MPI_Request r = MPI_REQUEST_NULL;
  check_mpi(MPI_Ialltoallv(send + send_bounds[0], scounts.data(), sdispls.data(), MPI_FLOAT, recv,
                           rcounts.data(), rdispls.data(), MPI_FLOAT, comm_, &r),
            "MPI_Ialltoallv");
  return r;
}

MPI_Request Communicator::isend(const float* x, int64_t n, int dest, int tag) const {
  MPI_Request r = MPI_REQUEST_NULL;
  check_mpi(MPI_Isend(x, message_count(n), MPI_FLOAT, dest, tag, comm_, &r), "MPI_Isend");
  return r;
}

MPI_Request Communicator::irecv(float* x, int64_t n, int src, int tag) const {
  MPI_Request r = MPI_REQUEST_NULL;
  check_mpi(MPI_Irecv(x, message_count(n), MPI_FLOAT, src, tag, comm_, &r), "MPI_Irecv");
  return r;
}

void Communicator::wait(MPI_Request& r) {
  check_mpi(MPI_Wait(&r, MPI_STATUS_IGNORE), "MPI_Wait");
}

bool Communicator::test(MPI_Request& r) {
  int done = 0;
  check_mpi(MPI_Test(&r, &done, MPI_STATUS_IGNORE), "MPI_Test");
  return done != 0;
}

}  // namespace dsv3

// dsv3 train over MPI ranks: see mpi_train.h.
#include "dist/mpi_train.h"

#include <algorithm>
#include <cstdio>
#include <memory>

#include "base/error.h"
#include "base/file.h"
#include "base/timer.h"
#include "dist/mpi_comm.h"
#include "dist/mpi_data_parallel.h"
#include "dist/mpi_expert_dispatcher.h"
#include "dist/pipeline_runner.h"
#include "kernels/best_kernels.h"

namespace dsv3 {

int64_t train_mpi(const TrainConfig& cfg, PipelineSchedule pipeline, const std::atomic<bool>* stop,
                  const WindowsHook& hook, bool* lead) {
  // --overlap-fb with EP: the F&B pair's two threads each run all-to-alls.
  MpiSession session(cfg.overlap_fb && cfg.ep > 1);
  Communicator comm;
  MpiDataParallel group(comm);
  *lead = comm.rank() == 0;
  Timer timer;
  int64_t done = 0;
  try {
    // Pipeline d is world ranks [d·P, (d+1)·P); rank r of it holds the stages of position r,
    // which DualPipe's partner P-1-r holds too (one process: P = 1, every rank position 0).
    const int E = static_cast<int>(cfg.ep), P = static_cast<int>(cfg.pp);
    const int d = comm.rank() / P, r = comm.rank() % P;
    const int held = pipeline == PipelineSchedule::DualPipe ? std::min(r, P - 1 - r) : r;
    // Expert parallelism inside data parallelism: the same position of E consecutive pipelines
    // share the routed experts, pipeline d holding position d % E's; the ranks holding the same
    // stages and the same experts reduce those experts' gradients.
    Communicator ep_comm(comm, d / E * P + r, comm.rank()),
        replica_comm(comm, held * E + d % E, comm.rank());
    MpiDataParallel ep_group(ep_comm), replicas(replica_comm);
    // --overlap-fb: the backward chunks' all-to-alls go through a communicator of their own (the
    // same ranks), so a pair's forward and backward exchange at once without mixing messages.
    Communicator ep_comm_b(ep_comm, 0, ep_comm.rank());
    std::unique_ptr<MpiExpertDispatcher> dispatcher, dispatcher_b;
    ExpertParallel ep;
    if (E > 1) {
      const bool fp8 = parse_ep_payload(cfg.ep_dispatch) == EpPayload::FP8;
      const EpPayload to = fp8 ? EpPayload::FP8 : EpPayload::F32,
                      back = fp8 ? EpPayload::BF16 : EpPayload::F32;
      dispatcher = std::make_unique<MpiExpertDispatcher>(ep_comm, best_kernels(), 0, to, back);
      if (cfg.overlap_fb)
        dispatcher_b =
            std::make_unique<MpiExpertDispatcher>(ep_comm_b, best_kernels(), 0, to, back);
      ep = {dispatcher.get(), &ep_group, &replicas};
    }
    // A pipeline rank holds its stages; the ranks holding the same ones (position r of every
    // pipeline, and for DualPipe its partner N-1-r too) reduce their gradients.
    std::unique_ptr<Communicator> pipe_ranks, holder_ranks;
    std::unique_ptr<MpiDataParallel> holders;
    std::unique_ptr<PipelineRunner> pipe;
    if (P > 1) {
      pipe_ranks = std::make_unique<Communicator>(comm, d, r);
      holder_ranks = std::make_unique<Communicator>(comm, held, comm.rank());
      holders = std::make_unique<MpiDataParallel>(*holder_ranks);
      pipe = std::make_unique<PipelineRunner>(comm, *pipe_ranks, *holders, pipeline);
      if (cfg.overlap_fb) pipe->overlap_fb(dispatcher_b.get());
    }
    done = train(cfg, stop, hook, &group, E > 1 ? &ep : nullptr, pipe.get());
    if (pipe) {
      const Json report = pipe->report();
      if (*lead) {
        write_file_atomic(path_join(cfg.out_dir, "pipeline.json"), report.dump(2) + "\n");
        std::fputs(PipelineRunner::summary(report).c_str(), stderr);
      }
    }
    if (*lead) {
      const double dp = static_cast<double>(group.bytes_sent() + ep_group.bytes_sent() +
                                            replicas.bytes_sent() +
                                            (holders ? holders->bytes_sent() : 0)),
                   moe = (dispatcher ? static_cast<double>(dispatcher->bytes_sent()) : 0.0) +
                         (dispatcher_b ? static_cast<double>(dispatcher_b->bytes_sent()) : 0.0);
      std::fprintf(stderr,
                   "train: %d ranks; rank 0 sent %.2f MB through MPI in %.1f s (%lld steps): "
                   "%.2f MB gradients, weights and losses, %.2f MB MoE all-to-all\n",
                   comm.size(), (dp + moe) / 1e6, timer.seconds(), static_cast<long long>(done),
                   dp / 1e6, moe / 1e6);
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "dsv3 train: rank %d: error: %s\n", comm.rank(), e.what());
    if (!e.hint().empty()) std::fprintf(stderr, "hint: %s\n", e.hint().c_str());
    MpiSession::abort(1);
  }
  return done;
}

}  // namespace dsv3

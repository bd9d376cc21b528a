// The pipeline runner over MPI (issue 18, SPEC §4): runs this rank's program (pipeline_schedule.h:
// 1F1B, DualPipe, DualPipeV) for each optimizer step, its stages (pipeline_layout.h) through the
// model's layer-range forward and backward (ForwardBackward's stage pieces), activations and
// their gradients sent to the neighbouring stages with nonblocking MPI point-to-point calls in
// program order.
//
// A rank holds only its stages' tensors (slice(): PipelineLayout::slice). Equal to one process,
// bit for bit: each parameter's gradient is accumulated by the one rank (per direction) that runs
// its stage, over that direction's micro-batches in order, and the trainer then sums it over the
// ranks holding it (holders(): the same position in every pipeline, DualPipe's partner too) in
// rank order, which is exactly fl(a + b) for DualPipe's two copies — what one process with --dp 2
// computes (the two
// directions are its two parts). With D pipelines (--dp D --pp P) replica d's micro-batches are
// part d (DualPipe: parts 2d, 2d+1) of one process's --dp D (2D); for DualPipe rank r and N-1-r
// first swap their copies of stage N-1-r, so that rank order is part order for every parameter. A
// zero-bubble B defers its Linears' weight-gradient GEMMs to a later W in queue order
// (model/linear.h), which leaves each weight's sum unchanged. The embedding's gradient gets
// contributions from the first stage and the MTP module on the last: both are kept as dL/d(rows)
// and added on the first stage's rank after the program, micro-batch by micro-batch, MTP first, as
// the one-process backward adds them.
#pragma once
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/json.h"
#include "dist/mpi_comm.h"
#include "dist/pipeline_layout.h"
#include "model/linear.h"
#include "train/step_runner.h"

namespace dsv3 {

class PipelineRunner : public StepRunner {
 public:
  // world: every rank (the trainer's data-parallel group spans it); pipe: the P ranks of this
  // rank's pipeline (world ranks [d·P, (d+1)·P) for replica d of D = world / P). Replica d runs
  // the step's micro-batches [d·C/D, (d+1)·C/D).
  // holders: the ranks holding this rank's stages (DualPipe: its partner N-1-r too) in every
  // pipeline.
  PipelineRunner(const Communicator& world, const Communicator& pipe, DataParallelGroup& holders,
                 PipelineSchedule schedule);
  ~PipelineRunner() override;
  // --overlap-fb: each F&B pair's F and B run at once, the F on this thread and the B on a second
  // one, the rank's threads split between two pools (attach), every B's MoE all-to-all through
  // `backward_dispatcher` (its own communicator; null without expert parallelism). Before attach.
  void overlap_fb(MoeDispatcher* backward_dispatcher);
  void attach(Model& model, ComputeContext ctx, const TrainConfig& cfg) override;
  void run(const std::vector<std::vector<int32_t>>& windows, double sums[5],
           std::vector<std::vector<int64_t>>& load) override;
  ParamSlice slice(const ModelConfig& c, const TrainConfig& cfg) override;
  DataParallelGroup& holders() override { return holders_; }
  // The first of the holders (pipeline 0; DualPipe: the partner with the lower rank) owns the
  // tensors of its stages; 1F1B's last rank holds the embedding for the MTP module only.
  bool owns(const std::string& tensor) const override;
  // Stage after stage along direction 0, each rank running its stages' forward.
  double evaluate_ce(const int32_t* windows, int64_t B, int64_t T) override;

  // What this rank measured over the steps so far, every rank's gathered (a collective): a JSON
  // array, one object per rank of the job: rank, replica (its pipeline), schedule, ranks (of a
  // pipeline), stages, micro_batches (of a pipeline) and micro_batches_per_step, steps, program
  // (SPEC §4 notation), executed (the first step's ops with their pipeline-local micro-batches,
  // "F0.3 B1z.12 W ...", an overlapped pair "F0.3&B1.2"), busy_s and idle_s (per step: the
  // program's wall time minus the ops' compute, i.e. waits for inputs), overlap_fb, op_s (mean
  // seconds of an F, B, zero-bubble B, W, and under --overlap-fb of an F&B pair: "FB"),
  // bytes_sent per step (activations, their gradients, the embedding rows and DualPipe's swap).
  Json report() const;
  // report()'s figures as a table for the terminal: per rank busy and idle seconds per step and
  // bytes sent, beside TR Table 2's bubble for the schedule with the measured mean chunk costs
  // (F, full B, W; F&B: the pairs' measured time under --overlap-fb, else F + B).
  static std::string summary(const Json& report);

 private:
  struct Action {
    PipeOp::Kind kind;  // F, B or W (an F&B is an F then a B)
    int phase = 0, micro_batch = 0;
    bool zero_bubble = false;
    bool paired = false;  // an F&B's F: with --overlap-fb it runs at once with the next action
  };
  struct Pending {  // a posted receive
    MPI_Request req = MPI_REQUEST_NULL;
    bool posted = false;
  };
  std::vector<Action> expand(const std::vector<PipeOp>& program) const;
  MicroBatch& state(const Action& a);
  void post(size_t i);
  // An action in two parts: compute (thread-safe against the other of an F&B pair: the pair's
  // chunks touch different stages, micro-batches, pools and dispatchers) and finish (sends and
  // bookkeeping, on the main thread, in program order).
  void compute(const Action& a, ThreadPool* pool);
  void finish(const Action& a);
  // Runs actions_[i] and actions_[i + 1] (an F&B pair) at once; returns the pair's seconds.
  double run_pair(size_t i);
  void send(const float* x, int64_t n, int dest, int tag);
  void reap_sends(bool all);
  void embedding_grads();
  void sync_mtp_embedding();
  void sort_dualpipe_copies();
  int stage_of(const std::string& tensor) const;  // the stage whose gradient a tensor is
  const std::vector<int32_t>& window(int micro_batch) const;
  int tag(int micro_batch, int stage, int grad) const;

  const Communicator& world_;
  const Communicator& comm_;  // the pipeline's ranks
  DataParallelGroup& holders_;
  PipelineSchedule schedule_;
  int replica_ = 0, offset_ = 0;  // this pipeline's index and its first micro-batch of the step
  Model* model_ = nullptr;
  std::optional<ComputeContext> ctx_;
  std::unique_ptr<ForwardBackward> fb_;
  LossWeights weights_;
  int64_t batch_ = 0, seq_len_ = 0;
  bool recompute_ = false;
  std::optional<PipelineLayout> layout_;
  std::vector<PipeOp> program_;
  std::vector<Action> actions_;
  // Per step.
  const std::vector<std::vector<int32_t>>* windows_ = nullptr;
  std::vector<std::unique_ptr<MicroBatch>> states_;  // [phase * C + micro-batch]
  std::vector<std::vector<float>> dout_;             // [phase * C + micro-batch] received dL/dy
  std::vector<Pending> recvs_;                       // [action]
  std::deque<std::pair<MPI_Request, std::vector<float>>> sends_;
  std::vector<std::vector<float>> emb_main_, emb_mtp_;  // [micro-batch] dL/d(embedding rows)
  std::vector<double> ledger_;                          // [the step's micro-batch][loss terms]
  std::vector<float> partner_;  // DualPipe: the partner's copy of a stage's gradients
  std::vector<std::vector<int64_t>>* load_ = nullptr;
  WeightGradQueue wgrad_;
  // --overlap-fb.
  bool overlap_ = false;
  MoeDispatcher* b_dispatcher_ = nullptr;
  std::unique_ptr<ThreadPool> f_pool_, b_pool_;
  // Measured: op_s_ / ops_ per kind F, B, zero-bubble B, W, F&B pair (overlapped).
  int64_t steps_ = 0, bytes_ = 0;
  double busy_s_ = 0, span_s_ = 0, op_s_[5] = {0, 0, 0, 0, 0};
  int64_t ops_[5] = {0, 0, 0, 0, 0};
  std::string executed_;
};

}  // namespace dsv3

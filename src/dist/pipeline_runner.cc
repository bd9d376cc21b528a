// The pipeline runner: see pipeline_runner.h.
#include "dist/pipeline_runner.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <span>
#include <thread>
#include <utility>
#include <vector>

#include "base/error.h"
#include "base/thread_pool.h"
#include "base/timer.h"
#include "model/param_store.h"
#include "train/arena_layout.h"
#include "train/trainer.h"

namespace dsv3 {

namespace {
constexpr int kTagLimit = 32767;  // the least MPI_TAG_UB the standard allows
}  // namespace

PipelineRunner::PipelineRunner(const Communicator& world, const Communicator& pipe,
                               DataParallelGroup& holders, PipelineSchedule schedule)
    : world_(world),
      comm_(pipe),
      holders_(holders),
      schedule_(schedule),
      replica_(world.rank() / pipe.size()) {
  DSV3_CHECK(world.size() % pipe.size() == 0 && world.rank() % pipe.size() == pipe.rank(),
             "pipeline: the pipeline's ranks must be consecutive ranks of the job");
}

const std::vector<int32_t>& PipelineRunner::window(int micro_batch) const {
  return (*windows_)[static_cast<size_t>(offset_ + micro_batch)];
}

PipelineRunner::~PipelineRunner() {
  // A run that ended by an error may leave requests behind: cancel them before MPI_Finalize.
  for (auto& [req, buf] : sends_)
    if (req != MPI_REQUEST_NULL) MPI_Request_free(&req);
  for (Pending& p : recvs_)
    if (p.req != MPI_REQUEST_NULL) {
      MPI_Cancel(&p.req);
      MPI_Request_free(&p.req);
    }
}

void PipelineRunner::overlap_fb(MoeDispatcher* backward_dispatcher) {
  DSV3_CHECK(schedule_ != PipelineSchedule::OneFOneB,
             "pipeline: --overlap-fb needs DualPipe or DualPipeV (1F1B has no F&B pairs)");
  overlap_ = true;
  b_dispatcher_ = backward_dispatcher;
}

void PipelineRunner::attach(Model& model, ComputeContext ctx, const TrainConfig& cfg) {
  DSV3_CHECK(!model.config().tie_word_embeddings,
             "pipeline: a model with tied embeddings (the head is the embedding) is not supported",
             "train without --pp, or a model with its own lm_head (every DeepSeek model)");
  model_ = &model;
  ctx_.emplace(ctx);
  fb_ = std::make_unique<ForwardBackward>(model, ctx);
  weights_ = cfg.loss;
  batch_ = cfg.batch;
  seq_len_ = cfg.seq_len;
  recompute_ = cfg.recompute;
  if (overlap_) {  // the rank's threads split between the pair's chunks, at least one each
    const int n = ctx.pool.size();
    f_pool_ = std::make_unique<ThreadPool>(std::max(1, n - n / 2));
    b_pool_ = std::make_unique<ThreadPool>(std::max(1, n / 2));
  }
}

ParamSlice PipelineRunner::slice(const ModelConfig& c, const TrainConfig& cfg) {
  const int replicas = world_.size() / comm_.size();
  const int C = static_cast<int>(cfg.accum) / replicas;
  // As even as the layers divide; --pp-split cost (cmd_train checks the word) rebalances.
  layout_.emplace(schedule_, comm_.size(), C, c.num_hidden_layers);
  if (cfg.pp_split == "cost")
    layout_.emplace(schedule_, comm_.size(), C, c.num_hidden_layers,
                    balanced_stage_bounds(stage_costs(c, cfg.seq_len), layout_->stages()));
  return layout_->slice(comm_.rank(), c.num_nextn_predict_layers > 0);
}

bool PipelineRunner::owns(const std::string& tensor) const {
  DSV3_CHECK(layout_, "pipeline: owns before slice");
  const int s = stage_of(tensor), me = comm_.rank();
  return holders_.rank() == 0 && (layout_->stage(me, 0) == s || layout_->stage(me, 1) == s);
}

double PipelineRunner::evaluate_ce(const int32_t* windows, int64_t B, int64_t T) {
  DSV3_CHECK(model_, "pipeline: evaluate before attach");
  const int S = layout_->stages(), me = comm_.rank();
  LossWeights w = weights_;
  w.mtp_lambda = 0;
  const int64_t n = B * T * model_->config().hidden_size;
  std::vector<float> carry;  // DualPipeV's turn at rank N-1: a stage's output to itself
  double ce = 0;
  for (int s = 0; s < S; ++s) {
    if (layout_->rank_of(s, 0) != me) continue;
    const StageLayers sl = layout_->stage_layers(s);
    MicroBatch mb;
    fb_->start(mb, windows, B, T, w, 1.0);
    if (s > 0) {
      mb.acts.resid.resize(static_cast<size_t>(layout_->layers + 1));
      std::vector<float>& in = mb.acts.resid[static_cast<size_t>(sl.begin)];
      if (layout_->rank_of(s - 1, 0) == me) {
        in = std::move(carry);
      } else {
        in.resize(static_cast<size_t>(n));
        MPI_Request r = comm_.irecv(in.data(), n, layout_->rank_of(s - 1, 0), s);
        Communicator::wait(r);
      }
    }
    fb_->forward(mb, sl, w, false);
    if (s + 1 == S) {
      ce = ForwardBackward::loss_parts(mb.terms, w).ce;
    } else if (layout_->rank_of(s + 1, 0) == me) {
      carry = std::move(mb.acts.resid[static_cast<size_t>(sl.end)]);
    } else {
      MPI_Request r = comm_.isend(mb.acts.resid[static_cast<size_t>(sl.end)].data(), n,
                                  layout_->rank_of(s + 1, 0), s + 1);
      Communicator::wait(r);
    }
  }
  std::vector<double> all(static_cast<size_t>(comm_.size()));
  comm_.allgather(&ce, 1, all.data());
  return all[static_cast<size_t>(layout_->rank_of(S - 1, 0))];
}

void PipelineRunner::sync_mtp_embedding() {
  // 1F1B's last rank holds the embedding only for its MTP module, which embeds the shifted
  // tokens; the first stage's rank trains it and sends the values before each step.
  const int S = layout_->stages(), me = comm_.rank(), first = layout_->rank_of(0, 0),
            last = layout_->rank_of(S - 1, 0);
  if (schedule_ != PipelineSchedule::OneFOneB || first == last || (me != first && me != last) ||
      !model_->has_mtp())
    return;
  Param& p = model_->params().get("model.embed_tokens.weight");
  float* x = model_->params().master().data() + p.offset;
  MPI_Request r =
      me == first ? comm_.isend(x, p.numel, last, 0) : comm_.irecv(x, p.numel, first, 0);
  Communicator::wait(r);
  if (me == first) bytes_ += p.numel * static_cast<int64_t>(sizeof(float));
}

int PipelineRunner::tag(int micro_batch, int stage, int grad) const {
  return (micro_batch * layout_->stages() + stage) * 2 + grad;
}

std::vector<PipelineRunner::Action> PipelineRunner::expand(
    const std::vector<PipeOp>& program) const {
  const int me = comm_.rank();
  int next_f[2] = {0, 0}, next_b[2] = {0, 0};
  std::vector<Action> out;
  auto mb = [&](int phase, int* next) {
    return layout_->first_micro_batch(layout_->direction(me, phase)) + next[phase]++;
  };
  for (const PipeOp& op : program) {
    switch (op.kind) {
      case PipeOp::F:
        out.push_back({PipeOp::F, op.phase, mb(op.phase, next_f)});
        break;
      case PipeOp::B:
        out.push_back({PipeOp::B, op.phase, mb(op.phase, next_b), op.zero_bubble});
        break;
      case PipeOp::W:
        out.push_back({PipeOp::W});
        break;
      case PipeOp::FB:
        out.push_back({PipeOp::F, op.phase, mb(op.phase, next_f), false, true});
        out.push_back({PipeOp::B, 1 - op.phase, mb(1 - op.phase, next_b)});
        break;
    }
  }
  return out;
}

MicroBatch& PipelineRunner::state(const Action& a) {
  auto& s = states_[static_cast<size_t>(a.phase * layout_->micro_batches + a.micro_batch)];
  if (!s) {
    s = std::make_unique<MicroBatch>();
    fb_->start(*s, window(a.micro_batch).data(), batch_, seq_len_, weights_,
               1.0 / static_cast<double>(windows_->size()));
    s->acts.recompute = recompute_;
    s->acts.defer_embedding_grad = true;
  }
  return *s;
}

void PipelineRunner::post(size_t i) {
  if (i >= actions_.size() || recvs_[i].posted) return;
  const Action& a = actions_[i];
  recvs_[i].posted = true;
  if (a.kind == PipeOp::W) return;
  const int me = comm_.rank(), s = layout_->stage(me, a.phase);
  const int dir = layout_->direction(me, a.phase);
  const StageLayers sl = layout_->stage_layers(s);
  const int64_t n = batch_ * seq_len_ * model_->config().hidden_size;
  if (a.kind == PipeOp::F) {
    MicroBatch& mb = state(a);
    if (s == 0) return;
    mb.acts.resid.resize(static_cast<size_t>(layout_->layers + 1));
    std::vector<float>& in = mb.acts.resid[static_cast<size_t>(sl.begin)];
    in.resize(static_cast<size_t>(n));
    recvs_[i].req =
        comm_.irecv(in.data(), n, layout_->rank_of(s - 1, dir), tag(a.micro_batch, s, 0));
  } else if (sl.end < layout_->layers) {
    std::vector<float>& d =
        dout_[static_cast<size_t>(a.phase * layout_->micro_batches + a.micro_batch)];
    d.resize(static_cast<size_t>(n));
    recvs_[i].req =
        comm_.irecv(d.data(), n, layout_->rank_of(s + 1, dir), tag(a.micro_batch, s + 1, 1));
  }
}

void PipelineRunner::send(const float* x, int64_t n, int dest, int t) {
  sends_.emplace_back(MPI_REQUEST_NULL, std::vector<float>(x, x + n));
  sends_.back().first = comm_.isend(sends_.back().second.data(), n, dest, t);
  if (dest != comm_.rank()) bytes_ += n * static_cast<int64_t>(sizeof(float));
}

void PipelineRunner::reap_sends(bool all) {
  while (!sends_.empty() && (all ? (Communicator::wait(sends_.front().first), true)
                                 : Communicator::test(sends_.front().first)))
    sends_.pop_front();
}

void PipelineRunner::compute(const Action& a, ThreadPool* pool) {
  if (a.kind == PipeOp::W) {
    wgrad_.run_oldest(*ctx_);
    return;
  }
  const int me = comm_.rank(), s = layout_->stage(me, a.phase);
  const StageLayers sl = layout_->stage_layers(s);
  const size_t idx = static_cast<size_t>(a.phase * layout_->micro_batches + a.micro_batch);
  MicroBatch& mb = state(a);
  mb.acts.pool = pool;
  if (a.kind == PipeOp::F) {
    fb_->forward(mb, sl, weights_, true);
    mb.acts.pool = nullptr;
    return;
  }
  const bool last = sl.end == layout_->layers;
  if (last && !(std::isfinite(mb.terms[0]) && std::isfinite(mb.terms[1]))) {
    // Diverged: no backward (the losses' gradients are not there); NaN gradients upstream make
    // the trainer skip the step as one process does.
    const int64_t n = mb.main.rows() * model_->config().hidden_size;
    mb.acts.dinput.assign(static_cast<size_t>(n), NAN);
    mb.acts.mtp.demb.assign(static_cast<size_t>(n), NAN);
  } else {
    // A full B after a deferred one would add its weight gradients before the older W's.
    DSV3_CHECK(a.zero_bubble || wgrad_.groups() == 0,
               "pipeline: a full backward while weight gradients are queued (schedule bug)");
    if (a.zero_bubble) {
      wgrad_.open();
      mb.acts.wgrad = &wgrad_;
    }
    // Every B (paired or not) exchanges through the backward dispatcher, so the ranks sharing
    // experts, which run the same program, meet on the same communicator op for op.
    mb.acts.dispatcher = overlap_ ? b_dispatcher_ : nullptr;
    fb_->backward(mb, sl, last ? nullptr : dout_[idx].data());
    mb.acts.wgrad = nullptr;
    mb.acts.dispatcher = nullptr;
  }
  mb.acts.pool = nullptr;
}

void PipelineRunner::finish(const Action& a) {
  if (a.kind == PipeOp::W) return;
  const int me = comm_.rank(), s = layout_->stage(me, a.phase), S = layout_->stages();
  const int dir = layout_->direction(me, a.phase);
  const StageLayers sl = layout_->stage_layers(s);
  const size_t idx = static_cast<size_t>(a.phase * layout_->micro_batches + a.micro_batch);
  MicroBatch& mb = state(a);
  const int64_t L = layout_->layers, n = mb.main.rows() * model_->config().hidden_size;
  if (a.kind == PipeOp::F) {
    const size_t T = mb.terms.size();
    for (size_t j = 0; j < T; ++j)
      ledger_[static_cast<size_t>(offset_ + a.micro_batch) * T + j] += mb.terms[j];
    auto add = [](std::vector<int64_t>& to, const std::vector<int64_t>& from) {
      for (size_t e = 0; e < from.size() && e < to.size(); ++e) to[e] += from[e];
    };
    for (int64_t l = sl.begin; l < sl.end; ++l)
      add((*load_)[static_cast<size_t>(l)], mb.acts.expert_load[static_cast<size_t>(l)]);
    if (sl.end == L && mb.with_mtp && load_->size() > static_cast<size_t>(L))
      add((*load_)[static_cast<size_t>(L)], mb.acts.mtp.layer.moe.plan.counts);
    if (s + 1 < S)
      send(mb.acts.resid[static_cast<size_t>(sl.end)].data(), n, layout_->rank_of(s + 1, dir),
           tag(a.micro_batch, s + 1, 0));
    return;
  }
  if (s > 0)
    send(mb.acts.dinput.data(), n, layout_->rank_of(s - 1, dir), tag(a.micro_batch, s, 1));
  else
    emb_main_[static_cast<size_t>(a.micro_batch)] = std::move(mb.acts.dinput);
  if (sl.end == L && mb.with_mtp)
    emb_mtp_[static_cast<size_t>(a.micro_batch)] = std::move(mb.acts.mtp.demb);
  states_[idx].reset();
  std::vector<float>().swap(dout_[idx]);
}

double PipelineRunner::run_pair(size_t i) {
  const Action &f = actions_[i], &b = actions_[i + 1];
  Timer pair;
  double secs[2] = {0, 0};
  std::exception_ptr b_error;
  std::thread helper([&] {
    try {
      Timer t;
      compute(b, b_pool_.get());
      secs[1] = t.seconds();
    } catch (...) {
      b_error = std::current_exception();
    }
  });
  try {
    Timer t;
    compute(f, f_pool_.get());
    secs[0] = t.seconds();
  } catch (...) {
    // The B may wait in an all-to-all that this rank's failure leaves unanswered: leave it; the
    // caller's error handling ends the job (MPI_Abort).
    helper.detach();
    throw;
  }
  helper.join();
  if (b_error) std::rethrow_exception(b_error);
  for (int k = 0; k < 2; ++k) op_s_[k] += secs[k], ++ops_[k];
  finish(f);
  finish(b);
  return pair.seconds();
}

void PipelineRunner::embedding_grads() {
  const int me = comm_.rank(), S = layout_->stages(), C = layout_->micro_batches;
  const bool mtp = weights_.mtp_lambda > 0 && model_->has_mtp();
  const int64_t T = seq_len_, d = model_->config().hidden_size, N = batch_ * T;
  std::vector<int32_t> ids(static_cast<size_t>(N));
  for (int dir = 0; dir < layout_->directions(); ++dir) {
    const int first = layout_->rank_of(0, dir), last = layout_->rank_of(S - 1, dir);
    const int m0 = layout_->first_micro_batch(dir), m1 = m0 + layout_->micro_batches_of();
    if (me != first && me != last) continue;
    if (mtp && first != last) {
      std::vector<MPI_Request> reqs;
      for (int m = m0; m < m1; ++m) {
        std::vector<float>& e = emb_mtp_[static_cast<size_t>(m)];
        if (me == first) e.resize(static_cast<size_t>(N * d));
        reqs.push_back(me == first ? comm_.irecv(e.data(), N * d, last, 2 * C * S + m)
                                   : comm_.isend(e.data(), N * d, first, 2 * C * S + m));
        if (me == last) bytes_ += N * d * static_cast<int64_t>(sizeof(float));
      }
      for (MPI_Request& r : reqs) Communicator::wait(r);
    }
    if (me != first) continue;
    // The one-process order: per micro-batch, the MTP module's rows (its backward runs first),
    // then the main model's.
    for (int m = m0; m < m1; ++m) {
      const std::vector<int32_t>& w = window(m);
      for (int shift = mtp ? 1 : 0; shift >= 0; --shift) {
        for (int64_t b = 0; b < batch_; ++b)
          for (int64_t i = 0; i < T; ++i)
            ids[static_cast<size_t>(b * T + i)] = w[static_cast<size_t>(b * (T + 1) + i + shift)];
        const auto& g =
            shift ? emb_mtp_[static_cast<size_t>(m)] : emb_main_[static_cast<size_t>(m)];
        model_->embedding_backward(ids.data(), g.data(), N);
      }
    }
  }
}

void PipelineRunner::run(const std::vector<std::vector<int32_t>>& windows, double sums[5],
                         std::vector<std::vector<int64_t>>& load) {
  DSV3_CHECK(model_, "pipeline: run before attach");
  const int replicas = world_.size() / comm_.size(), me = comm_.rank();
  const int total = static_cast<int>(windows.size()), C = total / replicas;
  DSV3_CHECK(total % replicas == 0, "pipeline: --accum " + std::to_string(total) +
                                        " does not split into " + std::to_string(replicas) +
                                        " pipelines");
  const ModelConfig& mc = model_->config();
  if (!layout_ || layout_->micro_batches != C || actions_.empty()) {
    // The stages slice() placed (the rank holds their tensors), for C micro-batches.
    std::vector<int64_t> bounds = layout_ ? layout_->bounds() : std::vector<int64_t>();
    layout_.emplace(schedule_, comm_.size(), C, mc.num_hidden_layers, std::move(bounds));
    DSV3_CHECK(2 * C * layout_->stages() + C <= kTagLimit,
               "pipeline: " + std::to_string(C) + " micro-batches over " +
                   std::to_string(layout_->stages()) + " stages exceed MPI's message tags",
               "lower --accum");
    program_ = pipeline_program(schedule_, comm_.size(), C, me);
    actions_ = expand(program_);
  }
  offset_ = replica_ * C;
  windows_ = &windows;
  sync_mtp_embedding();
  const size_t TS = fb_->terms_size();
  states_.clear();
  states_.resize(static_cast<size_t>(2 * C));
  dout_.assign(static_cast<size_t>(2 * C), {});
  recvs_.assign(actions_.size(), {});
  emb_main_.assign(static_cast<size_t>(C), {});
  emb_mtp_.assign(static_cast<size_t>(C), {});
  ledger_.assign(static_cast<size_t>(total) * TS, 0.0);
  // Every rank reports the whole shape (the trainer's group sums it), zero where others count.
  const bool mtp = weights_.mtp_lambda > 0 && model_->has_mtp();
  const int64_t L = mc.num_hidden_layers;
  load.assign(static_cast<size_t>(L + (mtp ? 1 : 0)), {});
  for (int64_t l = 0; l < static_cast<int64_t>(load.size()); ++l)
    if (mc.is_moe_layer(l))
      load[static_cast<size_t>(l)].assign(static_cast<size_t>(mc.n_routed_experts), 0);
  load_ = &load;

  const bool trace = steps_ == 0;
  Timer span;
  double busy = 0;
  auto name = [](const Action& a) {
    char op[32];
    if (a.kind == PipeOp::W)
      std::snprintf(op, sizeof op, "W");
    else
      std::snprintf(op, sizeof op, "%c%d%s.%d", a.kind == PipeOp::F ? 'F' : 'B', a.phase,
                    a.zero_bubble ? "z" : "", a.micro_batch);
    return std::string(op);
  };
  for (size_t i = 0; i < actions_.size(); ++i) {
    const Action& a = actions_[i];
    const bool pair = overlap_ && a.paired;
    post(i);
    post(i + 1);  // the next op's input may arrive while this one computes
    if (pair) post(i + 2);
    Communicator::wait(recvs_[i].req);
    if (pair) Communicator::wait(recvs_[i + 1].req);
    std::string op = name(a);
    if (pair) {
      const double secs = run_pair(i);
      busy += secs;
      op_s_[4] += secs;
      ++ops_[4];
      op.push_back('&');
      op.append(name(actions_[++i]));
    } else {
      Timer t;
      compute(a, nullptr);
      finish(a);
      const double secs = t.seconds();
      busy += secs;
      const int k = a.kind == PipeOp::F ? 0 : a.kind == PipeOp::W ? 3 : a.zero_bubble ? 2 : 1;
      op_s_[k] += secs;
      ++ops_[k];
    }
    if (trace) {
      if (!executed_.empty()) executed_.push_back(' ');
      executed_.append(op);
    }
    reap_sends(false);
  }
  reap_sends(true);
  span_s_ += span.seconds();
  busy_s_ += busy;
  ++steps_;
  DSV3_CHECK(wgrad_.groups() == 0, "pipeline: weight gradients left queued (schedule bug)");
  embedding_grads();
  if (schedule_ == PipelineSchedule::DualPipe) sort_dualpipe_copies();

  // The loss terms: each (micro-batch, term) computed by one rank; a sum in rank order adds zeros.
  std::vector<double> all(ledger_.size() * static_cast<size_t>(world_.size()));
  world_.allgather(ledger_.data(), static_cast<int>(ledger_.size()), all.data());
  for (size_t j = 0; j < ledger_.size(); ++j) {
    double x = all[j];
    for (int r = 1; r < world_.size(); ++r) x += all[static_cast<size_t>(r) * ledger_.size() + j];
    ledger_[j] = x;
  }
  // The trainer's sums, as one process adds them: a direction of a pipeline is a data-parallel
  // part, in micro-batch order. Rank 0 reports them, the others zero.
  for (int k = 0; k < 5; ++k) sums[k] = 0;
  if (world_.rank() != 0) return;
  std::vector<double> terms(TS);
  for (int part = 0; part < replicas * layout_->directions(); ++part) {
    double part_sum[5] = {0, 0, 0, 0, 0};
    const int m0 = part * layout_->micro_batches_of(), m1 = m0 + layout_->micro_batches_of();
    for (int m = m0; m < m1; ++m) {
      terms.assign(ledger_.begin() + static_cast<ptrdiff_t>(m * TS),
                   ledger_.begin() + static_cast<ptrdiff_t>((m + 1) * TS));
      const LossParts p = ForwardBackward::loss_parts(terms, weights_);
      const double parts[5] = {p.total, p.ce, p.mtp, p.balance, p.aux};
      for (int k = 0; k < 5; ++k) part_sum[k] += parts[k] / static_cast<double>(total);
    }
    for (int k = 0; k < 5; ++k) sums[k] += part_sum[k];
  }
}

int PipelineRunner::stage_of(const std::string& tensor) const {
  const int S = layout_->stages();
  if (tensor.starts_with("model.embed_tokens.")) return 0;
  if (tensor.starts_with("model.norm.") || tensor.starts_with("lm_head.")) return S - 1;
  const std::string prefix = "model.layers.";
  DSV3_CHECK(tensor.starts_with(prefix), "pipeline: no stage holds the tensor " + tensor);
  const int64_t l = std::stoll(tensor.substr(prefix.size()));
  for (int s = 0; s < S; ++s)
    if (l < layout_->stage_layers(s).end) return s;
  return S - 1;  // the MTP module, model.layers.<L>, is the last stage's
}

void PipelineRunner::sort_dualpipe_copies() {
  // Rank r < N/2 holds direction 0's gradient of stage r and direction 1's of stage N-1-r; rank
  // N-1-r the other two copies. Swapping stage N-1-r's leaves rank r with direction 0's copies
  // and N-1-r with direction 1's, so the trainer's sum in rank order adds, for every parameter,
  // pipeline 0's direction 0, its direction 1, pipeline 1's direction 0, ...: one process's
  // parts in order.
  const int me = comm_.rank(), partner = comm_.size() - 1 - me;
  const int stage = comm_.size() - 1 - std::min(me, partner);
  const std::span<float> g = model_->params().grads();
  std::vector<float> out;
  for (const ArenaTensor& t : ArenaLayout::of(model_->params()).tensors)
    if (stage_of(t.name) == stage)
      out.insert(out.end(), g.begin() + t.offset, g.begin() + t.offset + t.numel);
  partner_.resize(out.size());
  MPI_Request reqs[2] = {comm_.irecv(partner_.data(), static_cast<int64_t>(out.size()), partner, 0),
                         comm_.isend(out.data(), static_cast<int64_t>(out.size()), partner, 0)};
  bytes_ += static_cast<int64_t>(out.size() * sizeof(float));
  for (MPI_Request& r : reqs) Communicator::wait(r);
  size_t at = 0;
  for (const ArenaTensor& t : ArenaLayout::of(model_->params()).tensors)
    if (stage_of(t.name) == stage) {
      std::copy_n(partner_.data() + at, t.numel, g.begin() + t.offset);
      at += static_cast<size_t>(t.numel);
    }
}

Json PipelineRunner::report() const {
  Json j = Json::object();
  j["rank"] = world_.rank();
  j["replica"] = replica_;
  j["schedule"] = schedule_name(schedule_);
  j["ranks"] = comm_.size();
  j["micro_batches_per_step"] = windows_ ? static_cast<int64_t>(windows_->size()) : 0;
  j["stages"] = layout_ ? layout_->stages() : 0;
  j["micro_batches"] = layout_ ? layout_->micro_batches : 0;
  j["steps"] = steps_;
  j["program"] = to_string(program_);
  j["executed"] = executed_;
  const double steps = steps_ > 0 ? static_cast<double>(steps_) : 1.0;
  j["busy_s"] = busy_s_ / steps;
  j["idle_s"] = (span_s_ - busy_s_) / steps;
  j["overlap_fb"] = overlap_;
  Json ops = Json::object();
  const char* names[5] = {"F", "B", "Bz", "W", "FB"};
  for (int k = 0; k < 5; ++k)
    ops[names[k]] = ops_[k] > 0 ? op_s_[k] / static_cast<double>(ops_[k]) : 0.0;
  j["op_s"] = ops;
  j["bytes_sent"] = static_cast<double>(bytes_) / steps;
  // Gather every rank's object (as text) in rank order.
  const std::string mine = j.dump();
  const int n = world_.size();
  int len = static_cast<int>(mine.size());
  std::vector<int> lens(static_cast<size_t>(n)), displs(static_cast<size_t>(n));
  check_mpi(MPI_Allgather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, world_.get()),
            "MPI_Allgather");
  int total = 0;
  for (int r = 0; r < n; ++r)
    displs[static_cast<size_t>(r)] = total, total += lens[static_cast<size_t>(r)];
  std::string text(static_cast<size_t>(total), ' ');
  check_mpi(MPI_Allgatherv(mine.data(), len, MPI_CHAR, text.data(), lens.data(), displs.data(),
                           MPI_CHAR, world_.get()),
            "MPI_Allgatherv");
  Json out = Json::array();
  for (int r = 0; r < n; ++r)
    out.push_back(Json::parse(text.substr(static_cast<size_t>(displs[static_cast<size_t>(r)]),
                                          static_cast<size_t>(lens[static_cast<size_t>(r)])),
                              "pipeline report"));
  return out;
}

std::string PipelineRunner::summary(const Json& report) {
  const auto& ranks = report.as_array("pipeline report");
  if (ranks.empty()) return "";
  const Json& r0 = ranks[0];
  const PipelineSchedule s = parse_schedule(r0.at("schedule").as_string("schedule"));
  ChunkCosts c;
  c.f = c.b = c.w = 0;
  double pair = 0;
  for (const Json& r : ranks) {
    const Json& ops = r.at("op_s");
    c.f += ops.at("F").as_double("F") / static_cast<double>(ranks.size());
    c.b += ops.at("B").as_double("B") / static_cast<double>(ranks.size());
    c.w += ops.at("W").as_double("W") / static_cast<double>(ranks.size());
    pair += ops.at("FB").as_double("FB") / static_cast<double>(ranks.size());
  }
  // An F&B pair costs what it took when overlapped, else its F and its B one after the other.
  c.fb = pair > 0 ? pair : c.f + c.b;
  const auto P = static_cast<int>(r0.at("ranks").as_int("ranks"));
  char line[256];
  std::snprintf(line, sizeof line,
                "pipeline: %s, %lld pipeline(s) of %d ranks, %lld stages, %lld micro-batches a "
                "pipeline, %lld steps; mean chunk F %.4fs B %.4fs W %.4fs F&B %.4fs%s\n",
                schedule_name(s), static_cast<long long>(ranks.size()) / P, P,
                static_cast<long long>(r0.at("stages").as_int("stages")),
                static_cast<long long>(r0.at("micro_batches").as_int("micro_batches")),
                static_cast<long long>(r0.at("steps").as_int("steps")), c.f, c.b, c.w, c.fb,
                pair > 0 ? " (overlapped)" : "");
  std::string out = line;
  for (const Json& r : ranks) {
    std::snprintf(line, sizeof line,
                  "  rank %lld: busy %.3fs, idle (bubble) %.3fs per step, %.2f MB sent per step\n",
                  static_cast<long long>(r.at("rank").as_int("rank")),
                  r.at("busy_s").as_double("busy_s"), r.at("idle_s").as_double("idle_s"),
                  r.at("bytes_sent").as_double("bytes_sent") / 1e6);
    out += line;
  }
  std::snprintf(line, sizeof line, "  TR Table 2 bubble with these chunk costs: %.3fs\n",
                table2_bubble(s, P, c));
  return out + line;
}

}  // namespace dsv3

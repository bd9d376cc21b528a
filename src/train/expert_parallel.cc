// ZeRO-1 and the reductions under expert parallelism: see expert_parallel.h.
#include "train/expert_parallel.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <utility>

#include "base/error.h"
#include "model/param_table.h"
#include "train/optimizer.h"

namespace dsv3 {

ParamSlice expert_slice(const ModelConfig& c, int64_t ep, int64_t position) {
  DSV3_CHECK(ep >= 1 && c.n_routed_experts > 0 && c.n_routed_experts % ep == 0,
             "train: --ep " + std::to_string(ep) + " does not divide the model's " +
                 std::to_string(c.n_routed_experts) + " routed experts",
             "use an --ep that divides n_routed_experts (and --dp)");
  const int64_t per = c.n_routed_experts / ep;
  return ParamSlice::experts(position * per, per);
}

ExpertParallelAdamW::ExpertParallelAdamW(const ParamStore& ps, const AdamWConfig& c,
                                         DataParallelGroup& all, const ExpertParallel& ep)
    : all_(all),
      ep_(ep),
      split_(ps.expert_offset()),
      numel_(ps.arena_numel()),
      rest_layout_(shard_layout(ArenaLayout::of(ps), 0, split_)),
      expert_layout_(shard_layout(ArenaLayout::of(ps), split_, numel_)),
      whole_(ArenaLayout::whole(ps.config())),
      rest_(rest_layout_, c, all),
      experts_(expert_layout_, c, *ep.replicas),
      cfg_(c) {
  // Where each whole-model tensor lies once the regions are gathered: the rest in table order
  // from 0 (as in every rank's arena), position j's experts in table order from
  // split_ + j · region (as in position j's arena from split_).
  const int64_t region = numel_ - split_, per = ps.config().n_routed_experts / ep.group->size();
  int64_t rest_at = 0;
  std::vector<int64_t> at(static_cast<size_t>(ep.group->size()), 0);
  for (const ParamSpec& s : param_table(ps.config())) {
    if (!s.copy_of.empty()) continue;
    int64_t& next = s.expert < 0 ? rest_at : at[static_cast<size_t>(s.expert / per)];
    gathered_at_[s.name] = (s.expert < 0 ? 0 : split_ + s.expert / per * region) + next;
    next += shape_numel(s.shape);
  }
  DSV3_CHECK(rest_at == split_ && at[static_cast<size_t>(ep.group->rank())] == region,
             "expert parallel: the store's arena is not [the rest | one position's experts]");
  for (const ArenaTensor& t : whole_.tensors) whole_at_[t.name] = t.offset;
}

void ExpertParallelAdamW::reduce(std::span<float> grads) {
  const auto split = static_cast<size_t>(split_);
  all_.sum_in_rank_order(grads.first(split), rest_.bounds());
  ep_.replicas->sum_in_rank_order(grads.subspan(split), experts_.bounds());
}

double ExpertParallelAdamW::clip(std::span<float> grads, double max_norm, ThreadPool* pool) {
  const auto split = static_cast<size_t>(split_);
  const double rest = global_grad_norm(rest_layout_, grads.first(split), pool);
  double experts = global_grad_norm(expert_layout_, grads.subspan(split), pool);
  experts *= experts;
  ep_.group->sum_in_rank_order(std::span<double>(&experts, 1));
  const double norm = std::sqrt(rest * rest + experts);
  if (max_norm > 0) {
    clip_grads_to(rest_layout_, grads.first(split), norm, max_norm, pool);
    clip_grads_to(expert_layout_, grads.subspan(split), norm, max_norm, pool);
  }
  return norm;
}

void ExpertParallelAdamW::step(std::span<float> master, std::span<const float> grads, double lr,
                               ThreadPool* pool) {
  const auto split = static_cast<size_t>(split_);
  rest_.step(master.first(split), grads.first(split), lr, pool);
  experts_.step(master.subspan(split), grads.subspan(split), lr, pool);
}

int64_t ExpertParallelAdamW::shard_numel() const {
  const auto shard = [](const Zero1AdamW& z, int rank) {
    return z.bounds()[static_cast<size_t>(rank) + 1] - z.bounds()[static_cast<size_t>(rank)];
  };
  return shard(rest_, all_.rank()) + shard(experts_, ep_.replicas->rank());
}

std::vector<float> ExpertParallelAdamW::gather_regions(std::span<const float> mine) const {
  const int64_t region = numel_ - split_;
  const int n = ep_.group->size(), me = ep_.group->rank();
  std::vector<float> all(static_cast<size_t>(n * region));
  std::copy(mine.begin(), mine.end(), all.begin() + me * region);
  std::vector<int64_t> bounds(static_cast<size_t>(n) + 1);
  for (int j = 0; j <= n; ++j) bounds[static_cast<size_t>(j)] = j * region;
  ep_.group->allgather(all, bounds);
  return all;
}

ParamStore::AbsentValues ExpertParallelAdamW::gather_experts(std::span<const float> master) {
  // Owned by the lookup: freed with it once the checkpoint is written.
  auto all = std::make_shared<const std::vector<float>>(
      gather_regions(master.subspan(static_cast<size_t>(split_))));
  return [this, all](const Param& p) -> const float* {
    return all->data() + (gathered_at_.at(p.name()) - split_);
  };
}

void ExpertParallelAdamW::place(std::span<const float> rest, std::span<const float> regions,
                                std::vector<float>& whole) const {
  whole.resize(static_cast<size_t>(whole_.numel));
  for (const ArenaTensor& t : whole_.tensors) {
    const int64_t at = gathered_at_.at(t.name);  // the rest lies below split_, the regions above
    const float* from = at >= split_ ? regions.data() + (at - split_) : rest.data() + at;
    std::copy_n(from, t.numel, whole.begin() + t.offset);
  }
}

void ExpertParallelAdamW::save(const std::string& path) const {
  // The whole model's moments in ArenaLayout::whole's order, gathered a piece at a time (each
  // freed once placed: a checkpoint's peak memory is about the whole state once, plus a region).
  std::vector<float> m, v;
  {
    std::vector<float> rest_m, rest_v, own_m, own_v;
    rest_.gather_state(rest_m, rest_v);
    experts_.gather_state(own_m, own_v);
    const std::vector<float> exp_m = gather_regions(own_m);
    own_m = {};
    if (all_.rank() == 0) place(rest_m, exp_m, m);
    const std::vector<float> exp_v = gather_regions(own_v);
    if (all_.rank() == 0) place(rest_v, exp_v, v);
  }
  if (all_.rank() == 0) save_adamw_state(whole_, cfg_, std::move(m), std::move(v), steps(), path);
}

void ExpertParallelAdamW::load(const std::string& path) {
  AdamW whole(whole_, cfg_);
  whole.load(path);
  const std::vector<float> m = whole.exp_avg(), v = whole.exp_avg_sq();
  // This rank's tensors, picked by name from the whole-model state.
  const auto pick = [&](const ArenaLayout& l, std::vector<float>& lm, std::vector<float>& lv) {
    lm.assign(static_cast<size_t>(l.numel), 0.0f);
    lv.assign(lm.size(), 0.0f);
    for (const ArenaTensor& t : l.tensors) {
      const int64_t at = whole_at_.at(t.name);
      std::copy_n(m.begin() + at, t.numel, lm.begin() + t.offset);
      std::copy_n(v.begin() + at, t.numel, lv.begin() + t.offset);
    }
  };
  std::vector<float> lm, lv;
  pick(rest_layout_, lm, lv);
  rest_.set_whole_state(lm, lv, whole.steps());
  pick(expert_layout_, lm, lv);
  experts_.set_whole_state(lm, lv, whole.steps());
}

}  // namespace dsv3

// ZeRO-1 and the reductions over a store holding a slice of the model: see held_params.h.
#include "train/held_params.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <utility>

#include "base/error.h"
#include "train/optimizer.h"
#include "train/zero1.h"

namespace dsv3 {

HeldParamsAdamW::HeldParamsAdamW(const ParamStore& ps, const AdamWConfig& c, DataParallelGroup& all,
                                 DataParallelGroup& holders, const Owns& owns,
                                 DataParallelGroup* expert_holders)
    : all_(all),
      holders_(holders),
      expert_holders_(expert_holders),
      local_(ArenaLayout::of(ps)),
      whole_(ArenaLayout::whole(ps.config())),
      split_(expert_holders ? ps.expert_offset() : local_.numel),
      zero_(shard_layout(local_, 0, split_), c, holders),
      cfg_(c) {
  if (expert_holders)
    experts_ = std::make_unique<Zero1AdamW>(shard_layout(local_, split_, local_.numel), c,
                                            *expert_holders);
  std::unordered_map<std::string, int64_t> held;
  for (const ArenaTensor& t : local_.tensors) held[t.name] = t.offset;
  const size_t n = whole_.tensors.size();
  std::vector<int64_t> owned(n, 0), owners(n, 0);
  local_at_.assign(n, -1);
  piece_at_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const ArenaTensor& t = whole_.tensors[i];
    index_[t.name] = i;
    piece_at_[i] = pieces_;
    if (t.trained) pieces_ += (t.numel + kNormPiece - 1) / kNormPiece;
    const auto it = held.find(t.name);
    if (it == held.end()) continue;
    local_at_[i] = it->second;
    if (owns(t.name)) owned[i] = all.rank(), owners[i] = 1;
  }
  all.sum(owned);
  all.sum(owners);
  owner_.resize(n);
  bounds_.assign(static_cast<size_t>(all.size()) + 1, 0);
  for (size_t i = 0; i < n; ++i) {
    DSV3_CHECK(owners[i] == 1, "train: the tensor " + whole_.tensors[i].name + " has " +
                                   std::to_string(owners[i]) + " owners among the ranks, not one");
    owner_[i] = static_cast<int>(owned[i]);
    bounds_[static_cast<size_t>(owner_[i]) + 1] += whole_.tensors[i].numel;
  }
  for (size_t r = 1; r < bounds_.size(); ++r) bounds_[r] += bounds_[r - 1];
}

void HeldParamsAdamW::reduce(std::span<float> grads) {
  const auto split = static_cast<size_t>(split_);
  holders_.sum_in_rank_order(grads.first(split), zero_.bounds());
  if (experts_) expert_holders_->sum_in_rank_order(grads.subspan(split), experts_->bounds());
}

double HeldParamsAdamW::clip(std::span<float> grads, double max_norm, ThreadPool* pool) {
  // Each piece's Σg² at its place in the one-process sum, from the tensor's owner; zeros
  // elsewhere (x + 0 is exact, so the sum over the ranks is the owner's value).
  std::vector<double> parts(static_cast<size_t>(pieces_), 0.0);
  for (size_t i = 0; i < whole_.tensors.size(); ++i) {
    const ArenaTensor& t = whole_.tensors[i];
    if (!t.trained || owner_[i] != all_.rank()) continue;
    const std::vector<double> s =
        piece_square_sums(grads.subspan(static_cast<size_t>(local_at_[i]), t.numel));
    std::copy(s.begin(), s.end(), parts.begin() + piece_at_[i]);
  }
  all_.sum_in_rank_order(std::span<double>(parts));
  double total = 0;
  for (double p : parts) total += p;
  const double norm = std::sqrt(total);
  if (max_norm > 0) clip_grads_to(local_, grads, norm, max_norm, pool);
  return norm;
}

void HeldParamsAdamW::step(std::span<float> master, std::span<const float> grads, double lr,
                           ThreadPool* pool) {
  const auto split = static_cast<size_t>(split_);
  zero_.step(master.first(split), grads.first(split), lr, pool);
  if (experts_) experts_->step(master.subspan(split), grads.subspan(split), lr, pool);
}

int64_t HeldParamsAdamW::shard_numel() const {
  const auto shard = [](const Zero1AdamW& z, int rank) {
    return z.bounds()[static_cast<size_t>(rank) + 1] - z.bounds()[static_cast<size_t>(rank)];
  };
  return shard(zero_, holders_.rank()) + (experts_ ? shard(*experts_, expert_holders_->rank()) : 0);
}

std::vector<float> HeldParamsAdamW::gather_whole(std::span<const float> local) const {
  // Rank r's owned tensors, in whole-model order, at [bounds_[r], bounds_[r+1]).
  std::vector<float> buf(static_cast<size_t>(whole_.numel));
  int64_t at = bounds_[static_cast<size_t>(all_.rank())];
  for (size_t i = 0; i < whole_.tensors.size(); ++i) {
    if (owner_[i] != all_.rank()) continue;
    std::copy_n(local.begin() + local_at_[i], whole_.tensors[i].numel, buf.begin() + at);
    at += whole_.tensors[i].numel;
  }
  all_.gather_to_first(buf, bounds_);
  if (all_.rank() != 0) return {};
  std::vector<float> whole(buf.size());
  std::vector<int64_t> next(bounds_.begin(), bounds_.end() - 1);
  for (size_t i = 0; i < whole_.tensors.size(); ++i) {
    const ArenaTensor& t = whole_.tensors[i];
    int64_t& from = next[static_cast<size_t>(owner_[i])];
    std::copy_n(buf.begin() + from, t.numel, whole.begin() + t.offset);
    from += t.numel;
  }
  return whole;
}

ParamStore::AbsentValues HeldParamsAdamW::gather(std::span<const float> master) const {
  // Owned by the lookup: freed with it once the checkpoint is written.
  auto all = std::make_shared<const std::vector<float>>(gather_whole(master));
  return [this, all](const Param& p) -> const float* {
    const std::string& name = p.spec->copy_of.empty() ? p.name() : p.spec->copy_of;
    return all->data() + whole_.tensors[index_.at(name)].offset;
  };
}

void HeldParamsAdamW::save(const std::string& path) const {
  std::vector<float> m, v;
  zero_.gather_state(m, v);  // this rank's tensors' whole moments, from the holders' shards
  if (experts_) {            // and its experts', from theirs: [the rest | the experts]
    std::vector<float> em, ev;
    experts_->gather_state(em, ev);
    m.insert(m.end(), em.begin(), em.end());
    v.insert(v.end(), ev.begin(), ev.end());
  }
  m = gather_whole(m);
  v = gather_whole(v);
  if (all_.rank() == 0) save_adamw_state(whole_, cfg_, std::move(m), std::move(v), steps(), path);
}

void HeldParamsAdamW::load(const std::string& path) {
  AdamW whole(whole_, cfg_);
  whole.load(path);
  const std::vector<float> m = whole.exp_avg(), v = whole.exp_avg_sq();
  std::vector<float> lm(static_cast<size_t>(local_.numel)), lv(lm.size());
  for (size_t i = 0; i < whole_.tensors.size(); ++i) {
    if (local_at_[i] < 0) continue;
    const ArenaTensor& t = whole_.tensors[i];
    std::copy_n(m.begin() + t.offset, t.numel, lm.begin() + local_at_[i]);
    std::copy_n(v.begin() + t.offset, t.numel, lv.begin() + local_at_[i]);
  }
  const auto split = static_cast<size_t>(split_);
  zero_.set_whole_state(std::span(lm).first(split), std::span(lv).first(split), whole.steps());
  if (experts_)
    experts_->set_whole_state(std::span(lm).subspan(split), std::span(lv).subspan(split),
                              whole.steps());
}

}  // namespace dsv3

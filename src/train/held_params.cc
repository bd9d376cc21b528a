// ZeRO-1 and the reductions over a store holding a slice of the model: see held_params.h.
#include "train/held_params.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <utility>

#include "base/error.h"
#include "train/arena_file.h"
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
  for (size_t i = 0; i < n; ++i) {
    DSV3_CHECK(owners[i] == 1, "train: the tensor " + whole_.tensors[i].name + " has " +
                                   std::to_string(owners[i]) + " owners among the ranks, not one");
    owner_[i] = static_cast<int>(owned[i]);
  }
  // Whose shards write a tensor into a checkpoint: the group holding its owner. A tensor held by
  // two groups (the embedding on the first stage and, for the MTP module, the last) is written
  // once, by that one.
  std::vector<int64_t> in_rest(n, 0), in_experts(n, 0);
  for (size_t i = 0; i < n; ++i)
    if (owner_[i] == all.rank()) (local_at_[i] >= split_ ? in_experts : in_rest)[i] = 1;
  holders.sum(in_rest);
  if (expert_holders) expert_holders->sum(in_experts);
  group_writes_.resize(n);
  for (size_t i = 0; i < n; ++i) group_writes_[i] = in_rest[i] + in_experts[i] > 0;
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

bool HeldParamsAdamW::owns(const std::string& tensor) const {
  return owner_[index_.at(tensor)] == all_.rank();
}

void HeldParamsAdamW::write_local(ArenaFileWriter& out, std::string_view name, int64_t at,
                                  std::span<const float> values) const {
  // The local tensors overlapping [at, at + n), each piece at its place in the whole arena.
  const auto end = at + static_cast<int64_t>(values.size());
  for (const ArenaTensor& t : local_.tensors) {
    const int64_t b = std::max(at, t.offset), e = std::min(end, t.offset + t.numel);
    const size_t i = index_.at(t.name);
    if (b >= e || !group_writes_[i]) continue;
    out.write(name, whole_.tensors[i].offset + (b - t.offset),
              values.subspan(static_cast<size_t>(b - at), static_cast<size_t>(e - b)));
  }
}

void HeldParamsAdamW::save_shard(ArenaFileWriter& out) const {
  write_local(out, "exp_avg", zero_.begin(), zero_.shard().exp_avg());
  write_local(out, "exp_avg_sq", zero_.begin(), zero_.shard().exp_avg_sq());
  if (!experts_) return;
  write_local(out, "exp_avg", split_ + experts_->begin(), experts_->shard().exp_avg());
  write_local(out, "exp_avg_sq", split_ + experts_->begin(), experts_->shard().exp_avg_sq());
}

void HeldParamsAdamW::write_shard(ArenaFileWriter& out, std::string_view name,
                                  std::span<const float> local) const {
  const auto piece = [&](int64_t b, int64_t e) {
    write_local(out, name, b, local.subspan(static_cast<size_t>(b), static_cast<size_t>(e - b)));
  };
  piece(zero_.begin(), zero_.end());
  if (experts_) piece(split_ + experts_->begin(), split_ + experts_->end());
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

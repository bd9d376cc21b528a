// ZeRO-1 sharding of the AdamW state: see zero1.h.
#include "train/zero1.h"

#include <algorithm>
#include <utility>

#include "base/error.h"
#include "train/arena_file.h"

namespace dsv3 {

std::vector<int64_t> shard_bounds(const ArenaLayout& l, int n) {
  DSV3_CHECK(n >= 1, "ZeRO-1: " + std::to_string(n) + " ranks; need at least 1");
  std::vector<int64_t> starts;  // tensor starts in arena order, then the end
  for (const ArenaTensor& t : l.tensors) starts.push_back(t.offset);
  std::sort(starts.begin(), starts.end());
  starts.push_back(l.numel);
  std::vector<int64_t> b(static_cast<size_t>(n) + 1, l.numel);
  b[0] = 0;
  for (int r = 1; r < n; ++r) {
    const int64_t want = l.numel * r / n;
    b[r] = std::max(b[r - 1], *std::lower_bound(starts.begin(), starts.end(), want));
  }
  return b;
}

ArenaLayout shard_layout(const ArenaLayout& l, int64_t begin, int64_t end) {
  ArenaLayout s;
  s.numel = end - begin;
  for (const ArenaTensor& t : l.tensors) {
    if (t.offset + t.numel <= begin || t.offset >= end) continue;
    DSV3_CHECK(t.offset >= begin && t.offset + t.numel <= end,
               "ZeRO-1: tensor " + t.name + " straddles the shard [" + std::to_string(begin) +
                   ", " + std::to_string(end) + ")");
    ArenaTensor u = t;
    u.offset -= begin;
    s.tensors.push_back(std::move(u));
  }
  return s;
}

Zero1AdamW::Zero1AdamW(const ArenaLayout& full, const AdamWConfig& c, DataParallelGroup& group)
    : full_(full),
      cfg_(c),
      group_(group),
      bounds_(shard_bounds(full, group.size())),
      begin_(bounds_[static_cast<size_t>(group.rank())]),
      end_(bounds_[static_cast<size_t>(group.rank()) + 1]),
      shard_(shard_layout(full, begin_, end_), c) {}

void Zero1AdamW::step(std::span<float> master, std::span<const float> grads, double lr,
                      ThreadPool* pool) {
  DSV3_CHECK(static_cast<int64_t>(master.size()) == full_.numel &&
                 static_cast<int64_t>(grads.size()) == full_.numel,
             "ZeRO-1 step: arenas of " + std::to_string(master.size()) + " and " +
                 std::to_string(grads.size()) + " elements, the layout has " +
                 std::to_string(full_.numel));
  const auto n = static_cast<size_t>(end_ - begin_);
  shard_.step(master.subspan(static_cast<size_t>(begin_), n),
              grads.subspan(static_cast<size_t>(begin_), n), lr, pool);
  group_.allgather(master, bounds_);
}

void Zero1AdamW::set_whole_state(std::span<const float> m, std::span<const float> v,
                                 int64_t steps) {
  const auto at = static_cast<size_t>(begin_), n = static_cast<size_t>(end_ - begin_);
  shard_.set_state(m.subspan(at, n), v.subspan(at, n), steps);
}

void Zero1AdamW::save_shard(ArenaFileWriter& out) const {
  out.write("exp_avg", begin_, shard_.exp_avg());
  out.write("exp_avg_sq", begin_, shard_.exp_avg_sq());
}

void Zero1AdamW::write_shard(ArenaFileWriter& out, std::string_view name,
                             std::span<const float> local) const {
  out.write(name, begin_,
            local.subspan(static_cast<size_t>(begin_), static_cast<size_t>(end_ - begin_)));
}

void Zero1AdamW::load(const std::string& path) {
  AdamW whole(full_, cfg_);
  whole.load(path);
  set_whole_state(whole.exp_avg(), whole.exp_avg_sq(), whole.steps());
}

}  // namespace dsv3

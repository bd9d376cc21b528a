// ZeRO-1 (SPEC §5; Rajbhandari et al. 2019, stage 1): each rank of a data-parallel group owns the
// AdamW state and updates the master weights of one shard of the arena — a run of whole tensors in
// arena order, about numel / D elements — then the shards are allgathered. The update of every
// element is independent of the others (optimizer.h), so the sharded step equals the whole one bit
// for bit. Checkpoints hold the whole state (one optimizer.safetensors, whatever D, each rank
// writing its shard into it), so a run resumes on another number of ranks.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "train/arena_layout.h"
#include "train/data_parallel.h"
#include "train/optimizer.h"

namespace dsv3 {

class ArenaFileWriter;

// Shard boundaries [n + 1] over l's arena: bounds[r] .. bounds[r+1] is rank r's shard, cut only
// between tensors (at the first tensor start at or past r·numel/n), so a shard may be empty when
// tensors are few and large. bounds[0] = 0, bounds[n] = l.numel.
std::vector<int64_t> shard_bounds(const ArenaLayout& l, int n);
// The tensors of l inside [begin, end), their offsets relative to begin (a layout of end - begin
// elements). Throws Error if a tensor straddles a boundary.
ArenaLayout shard_layout(const ArenaLayout& l, int64_t begin, int64_t end);

class Zero1AdamW {
 public:
  Zero1AdamW(const ArenaLayout& full, const AdamWConfig& c, DataParallelGroup& group);

  // AdamW on this rank's shard of master (with the summed grads), then the allgather.
  void step(std::span<float> master, std::span<const float> grads, double lr,
            ThreadPool* pool = nullptr);
  // This rank's shard of the moments into a state file laid out by save_adamw_layout for the
  // whole arena this optimizer covers (a checkpoint: each rank writes its shard, none gathers).
  void save_shard(ArenaFileWriter& out) const;
  // This rank's shard of `local` (another arena laid out as this optimizer's: the EMA) into the
  // flat tensor `name` of a file laid out the same way.
  void write_shard(ArenaFileWriter& out, std::string_view name, std::span<const float> local) const;
  // Every rank reads the whole state (written by any number of ranks) and keeps its shard.
  void load(const std::string& path);
  // Keeps this rank's shard of whole moments [layout numel] and the step count.
  void set_whole_state(std::span<const float> m, std::span<const float> v, int64_t steps);
  int64_t steps() const { return shard_.steps(); }
  std::span<const int64_t> bounds() const { return bounds_; }
  // This rank's shard: the arena's elements [begin(), end()) and their AdamW.
  int64_t begin() const { return begin_; }
  int64_t end() const { return end_; }
  const AdamW& shard() const { return shard_; }

 private:
  ArenaLayout full_;
  AdamWConfig cfg_;
  DataParallelGroup& group_;
  std::vector<int64_t> bounds_;
  int64_t begin_ = 0, end_ = 0;
  AdamW shard_;
};

}  // namespace dsv3

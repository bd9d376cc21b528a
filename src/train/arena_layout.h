// Where each tensor of a ParamStore lies in its flat arenas, as the optimizer and the EMA lay out
// their own state. Saved with that state so that a checkpoint restored into another model (other
// shapes, another table order) is refused by name instead of read at the wrong offsets.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/json.h"
#include "model/config.h"

namespace dsv3 {

class ParamStore;

struct ArenaTensor {
  std::string name;
  int64_t offset = 0, numel = 0;
  bool matrix = false;  // rank 2 (embeddings, Linear weights, the head): weight decay applies
  bool trained = true;  // has a gradient (false: e_score_correction_bias, set by SPEC §2's rule)

  bool operator==(const ArenaTensor&) const = default;
};

struct ArenaLayout {
  int64_t numel = 0;                 // elements of each arena
  std::vector<ArenaTensor> tensors;  // every tensor once (the MTP aliases left out), arena order

  // The store's layout (training need not be enabled yet); absent experts left out.
  static ArenaLayout of(const ParamStore& ps);
  // The layout of a store holding every tensor of c's table (what one process trains and
  // checkpoints), whatever this process holds.
  static ArenaLayout whole(const ModelConfig& c);
  Json to_json() const;
  // Throws Error naming `source` for anything malformed (a tensor past the arena's end, overlaps).
  static ArenaLayout from_json(const Json& j, std::string_view source);
  // Throws Error naming `what` and the first tensor that differs (missing, extra, moved, resized).
  void check_same(const ArenaLayout& want, std::string_view what) const;
};

}  // namespace dsv3

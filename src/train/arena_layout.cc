// Arena layouts: from a store, to and from JSON (compact rows [name, offset, numel, matrix,
// trained]), and the comparison a restored checkpoint must pass.
#include "train/arena_layout.h"

#include <algorithm>

#include "base/error.h"
#include "model/param_store.h"
#include "model/param_table.h"

namespace dsv3 {

ArenaLayout ArenaLayout::of(const ParamStore& ps) {
  ArenaLayout l;
  l.numel = ps.arena_numel();
  for (const Param& p : ps.all()) {
    if (p.alias || p.absent) continue;  // an alias shares its main tensor's offset and state
    l.tensors.push_back({p.name(), p.offset, p.numel, p.spec->shape.size() == 2, p.spec->has_grad});
  }
  return l;
}

ArenaLayout ArenaLayout::whole(const ModelConfig& c) {
  ArenaLayout l;
  for (const ParamSpec& s : param_table(c)) {
    if (!s.copy_of.empty()) continue;
    const int64_t n = shape_numel(s.shape);
    l.tensors.push_back({s.name, l.numel, n, s.shape.size() == 2, s.has_grad});
    l.numel += n;
  }
  return l;
}

Json ArenaLayout::to_json() const {
  Json rows = Json::array();
  for (const ArenaTensor& t : tensors)
    rows.push_back(Json(Json::Array{t.name, t.offset, t.numel, t.matrix, t.trained}));
  Json j = Json::object();
  j["numel"] = numel;
  j["tensors"] = std::move(rows);
  return j;
}

ArenaLayout ArenaLayout::from_json(const Json& j, std::string_view source) {
  const std::string src(source);
  ArenaLayout l;
  l.numel = j.at("numel").as_int(src + ": layout numel");
  DSV3_CHECK(l.numel >= 0, src + ": layout numel is negative");
  for (const Json& row : j.at("tensors").as_array(src + ": layout tensors")) {
    const Json::Array& r = row.as_array(src + ": layout row");
    DSV3_CHECK(r.size() == 5, src + ": a layout row has " + std::to_string(r.size()) +
                                  " fields, expected 5 (name, offset, numel, matrix, trained)");
    ArenaTensor t{r[0].as_string(src + ": tensor name"), r[1].as_int(src + ": tensor offset"),
                  r[2].as_int(src + ": tensor numel"), r[3].as_bool(src + ": tensor matrix"),
                  r[4].as_bool(src + ": tensor trained")};
    DSV3_CHECK(t.offset >= 0 && t.numel >= 0 && t.offset <= l.numel - t.numel,
               src + ": tensor " + t.name + " lies outside the arena of " +
                   std::to_string(l.numel) + " elements");
    l.tensors.push_back(std::move(t));
  }
  // Offsets must not overlap: what the state's readers index with them is then always in range.
  std::vector<const ArenaTensor*> by_offset;
  for (const ArenaTensor& t : l.tensors) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const ArenaTensor* a, const ArenaTensor* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i)
    DSV3_CHECK(by_offset[i - 1]->offset + by_offset[i - 1]->numel <= by_offset[i]->offset,
               src + ": tensors " + by_offset[i - 1]->name + " and " + by_offset[i]->name +
                   " overlap in the layout");
  return l;
}

void ArenaLayout::check_same(const ArenaLayout& want, std::string_view what) const {
  const std::string w(what);
  const char* hint = "the state was saved for another model; start it afresh or use its model";
  const size_t n = std::min(tensors.size(), want.tensors.size());
  for (size_t i = 0; i < n; ++i) {
    const ArenaTensor &a = tensors[i], &b = want.tensors[i];
    DSV3_CHECK(a.name == b.name,
               w + ": tensor " + std::to_string(i) + " is " + a.name + ", the model has " + b.name,
               hint);
    DSV3_CHECK(a == b,
               w + ": tensor " + a.name + " has offset " + std::to_string(a.offset) + " and " +
                   std::to_string(a.numel) + " elements, the model's has offset " +
                   std::to_string(b.offset) + " and " + std::to_string(b.numel) +
                   " (or differs in being a matrix or trained)",
               hint);
  }
  // (The messages are built only when the check fails, so index n is then in range.)
  DSV3_CHECK(tensors.size() <= n, w + ": tensor " + tensors[n].name + " is not in the model", hint);
  DSV3_CHECK(want.tensors.size() <= n,
             w + ": the model's tensor " + want.tensors[n].name + " is missing", hint);
  DSV3_CHECK(numel == want.numel,
             w + ": arena of " + std::to_string(numel) + " elements, the model's has " +
                 std::to_string(want.numel),
             hint);
}

}  // namespace dsv3

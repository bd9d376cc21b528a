// Stage placement: see pipeline_layout.h.
#include "dist/pipeline_layout.h"

#include <algorithm>
#include <limits>
#include <string>
#include <utility>

#include "base/error.h"
#include "model/param_table.h"

namespace dsv3 {

StageCosts stage_costs(const ModelConfig& c, int64_t seq_len) {
  const int64_t L = c.num_hidden_layers;
  StageCosts k;
  k.layer.assign(static_cast<size_t>(L), 0.0);
  const double routed = c.n_routed_experts > 0 ? static_cast<double>(c.num_experts_per_tok) /
                                                     static_cast<double>(c.n_routed_experts)
                                               : 1.0;
  // Scores and weighted values over (seq_len + 1) / 2 keys on average, every head.
  const double attention =
      static_cast<double>(seq_len + 1) / 2 * static_cast<double>(c.num_attention_heads) *
      static_cast<double>(c.qk_nope_head_dim + c.qk_rope_head_dim + c.v_head_dim);
  for (double& x : k.layer) x = attention;
  for (const ParamSpec& s : param_table(c)) {
    const std::string& of = s.copy_of.empty() ? s.name : s.copy_of;
    if (s.shape.size() != 2 || of == "model.embed_tokens.weight") continue;  // lookups, norms
    const double macs = static_cast<double>(shape_numel(s.shape)) * (s.expert >= 0 ? routed : 1);
    if (s.group == ParamGroup::Mtp || s.layer >= L || s.layer < 0)
      k.last += macs;  // the head, and the MTP module (its head copy included: it runs)
    else
      k.layer[static_cast<size_t>(s.layer)] += macs;
  }
  k.last += attention * static_cast<double>(c.num_nextn_predict_layers > 0 ? 1 : 0);
  return k;
}

std::vector<int64_t> balanced_stage_bounds(const StageCosts& k, int stages) {
  const auto L = static_cast<int64_t>(k.layer.size());
  DSV3_CHECK(
      stages >= 1 && L >= stages,
      "pipeline: " + std::to_string(L) + " layers over " + std::to_string(stages) + " stages",
      "use fewer ranks, or a model with at least one layer per stage");
  std::vector<double> pre(static_cast<size_t>(L) + 1, 0.0);
  for (int64_t i = 0; i < L; ++i) pre[i + 1] = pre[i] + k.layer[i];
  // cost(s, a, b): stage s over layers [a, b).
  const auto cost = [&](int s, int64_t a, int64_t b) {
    return pre[b] - pre[a] + (s == 0 ? k.first : 0) + (s == stages - 1 ? k.last : 0);
  };
  // Dynamic programming over (stage s, layers [0, i) in stages [0, s]), twice: the least
  // costliest stage M, then, among the splits whose every stage costs at most M, the least sum of
  // squared stage costs (the most even of the best splits).
  const double inf = std::numeric_limits<double>::infinity();
  const auto solve = [&](double cap, std::vector<int64_t>* bounds) {
    std::vector<std::vector<double>> best(static_cast<size_t>(stages),
                                          std::vector<double>(static_cast<size_t>(L) + 1, inf));
    std::vector<std::vector<int64_t>> cut(best.size(), std::vector<int64_t>(best[0].size(), 0));
    const auto add = [&](double acc, double c) {
      return c > cap ? inf : cap == inf ? std::max(acc, c) : acc + c * c;
    };
    for (int64_t i = 1; i <= L; ++i) best[0][i] = add(0, cost(0, 0, i));
    for (int s = 1; s < stages; ++s)
      for (int64_t i = s + 1; i <= L; ++i)
        for (int64_t j = s; j < i; ++j) {
          const double v = add(best[s - 1][j], cost(s, j, i));
          if (v < best[s][i]) best[s][i] = v, cut[s][i] = j;
        }
    if (bounds) {
      bounds->assign(static_cast<size_t>(stages) + 1, 0);
      (*bounds)[static_cast<size_t>(stages)] = L;
      for (int s = stages - 1; s > 0; --s)
        (*bounds)[static_cast<size_t>(s)] = cut[s][(*bounds)[static_cast<size_t>(s) + 1]];
    }
    return best[static_cast<size_t>(stages) - 1][static_cast<size_t>(L)];
  };
  const double most = solve(inf, nullptr);
  std::vector<int64_t> bounds;
  solve(most * (1 + 1e-12), &bounds);  // the cap admits the best splits despite rounding
  return bounds;
}

PipelineLayout::PipelineLayout(PipelineSchedule s, int n, int c, int64_t l,
                               std::vector<int64_t> bounds)
    : schedule(s), ranks(n), micro_batches(c), layers(l), bounds_(std::move(bounds)) {
  pipeline_program(s, n, c, 0);  // checks N and C
  DSV3_CHECK(layers >= stages(),
             std::string("pipeline: ") + schedule_name(s) + " over " + std::to_string(n) +
                 " ranks has " + std::to_string(stages()) + " stages but the model " +
                 std::to_string(layers) + " layers",
             "use fewer ranks, or a model with at least one layer per stage");
  if (bounds_.empty()) {
    const int64_t S = stages(), base = layers / S, extra = layers % S;
    for (int64_t st = 0; st <= S; ++st) bounds_.push_back(st * base + std::min(st, extra));
  }
  bool ok = static_cast<int>(bounds_.size()) == stages() + 1 && bounds_.front() == 0 &&
            bounds_.back() == layers;
  for (size_t i = 1; ok && i < bounds_.size(); ++i) ok = bounds_[i] > bounds_[i - 1];
  DSV3_CHECK(ok, "pipeline: stage bounds that do not split " + std::to_string(layers) +
                     " layers into " + std::to_string(stages()) + " non-empty stages");
}

StageLayers PipelineLayout::stage_layers(int s) const {
  return {bounds_[static_cast<size_t>(s)], bounds_[static_cast<size_t>(s) + 1]};
}

int PipelineLayout::direction(int rank, int phase) const {
  if (schedule != PipelineSchedule::DualPipe) return 0;
  return rank < ranks / 2 ? phase : 1 - phase;
}

int PipelineLayout::stage(int rank, int phase) const {
  switch (schedule) {
    case PipelineSchedule::OneFOneB:
      return rank;
    case PipelineSchedule::DualPipe:
      return direction(rank, phase) == 0 ? rank : ranks - 1 - rank;
    case PipelineSchedule::DualPipeV:
      return phase == 0 ? rank : 2 * ranks - 1 - rank;
  }
  return 0;
}

int PipelineLayout::rank_of(int s, int dir) const {
  switch (schedule) {
    case PipelineSchedule::OneFOneB:
      return s;
    case PipelineSchedule::DualPipe:
      return dir == 0 ? s : ranks - 1 - s;
    case PipelineSchedule::DualPipeV:
      return s < ranks ? s : 2 * ranks - 1 - s;
  }
  return 0;
}

ParamSlice PipelineLayout::slice(int rank, bool mtp) const {
  ParamSlice s;
  s.embedding = s.head = false;
  // DualPipe's second phase runs the same stage as another rank's first: one of them suffices.
  const int phases = schedule == PipelineSchedule::OneFOneB ? 1 : 2;
  for (int phase = 0; phase < phases; ++phase) {
    const int st = stage(rank, phase);
    const StageLayers l = stage_layers(st);
    s.layers.push_back({l.begin, l.end});
    const bool last = st == stages() - 1;
    s.embedding = s.embedding || st == 0 || (last && mtp);
    s.head = s.head || last;
  }
  return s;
}

int PipelineLayout::first_micro_batch(int dir) const {
  return dir * micro_batches_of();
}

}  // namespace dsv3

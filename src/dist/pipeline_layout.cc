// Stage placement: see pipeline_layout.h.
#include "dist/pipeline_layout.h"

#include "base/error.h"

namespace dsv3 {

PipelineLayout::PipelineLayout(PipelineSchedule s, int n, int c, int64_t l)
    : schedule(s), ranks(n), micro_batches(c), layers(l) {
  pipeline_program(s, n, c, 0);  // checks N and C
  DSV3_CHECK(layers >= stages(),
             std::string("pipeline: ") + schedule_name(s) + " over " + std::to_string(n) +
                 " ranks has " + std::to_string(stages()) + " stages but the model " +
                 std::to_string(layers) + " layers",
             "use fewer ranks, or a model with at least one layer per stage");
}

StageLayers PipelineLayout::stage_layers(int s) const {
  const int64_t S = stages(), base = layers / S, extra = layers % S;
  const int64_t begin = s * base + std::min<int64_t>(s, extra);
  return {begin, begin + base + (s < extra ? 1 : 0)};
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

// Pipeline programs and their simulator: see pipeline_schedule.h. The DualPipe and DualPipeV
// programs follow SPEC §4's eight steps (after dualpipe.py / dualpipev.py `step`).
#include "dist/pipeline_schedule.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <deque>
#include <limits>

#include "base/error.h"

namespace dsv3 {

namespace {

// The later of two ready times; NaN (an input not computed yet) wins, as std::max would drop it.
double later(double a, double b) {
  return std::isnan(a) || std::isnan(b) ? NAN : std::max(a, b);
}

PipeOp f(int p) {
  return {PipeOp::F, p, false};
}
PipeOp b(int p, bool zb = false) {
  return {PipeOp::B, p, zb};
}
PipeOp w() {
  return {PipeOp::W, 0, false};
}
PipeOp fb(int p) {
  return {PipeOp::FB, p, false};
}

// SPEC §4's eight steps with the counts of the schedule: n1..n8, and when the first pair of step 4
// runs unoverlapped (as F0 then B1). `h` decides where step 6 switches to zero-bubble backwards.
std::vector<PipeOp> eight_steps(const int n[8], bool first_pair_split, int h) {
  std::vector<PipeOp> out;
  for (int i = 0; i < n[0]; ++i) out.push_back(f(0));
  for (int i = 0; i < n[1]; ++i) out.insert(out.end(), {f(0), f(1)});
  for (int i = 0; i < n[2]; ++i) out.insert(out.end(), {b(1, true), w(), f(1)});
  for (int i = 0; i < n[3]; ++i) {
    if (i == 0 && first_pair_split)
      out.insert(out.end(), {f(0), b(1)});
    else
      out.push_back(fb(0));
    out.push_back(fb(1));
  }
  for (int i = 0; i < n[4]; ++i) out.insert(out.end(), {b(1), fb(1)});
  // Step 6: the later backwards defer their weight gradients, from iteration ⌊(h+1)/2⌋ on (its B1
  // already when h is odd, from its B0 when h is even).
  bool zb = false;
  for (int i = 0; i < n[5]; ++i) {
    if (i == n[5] / 2 && h % 2 == 1) zb = true;
    out.push_back(b(1, zb));
    if (i == n[5] / 2 && h % 2 == 0) zb = true;
    out.push_back(b(0, zb));
  }
  for (int i = 0; i < n[6]; ++i) out.insert(out.end(), {w(), b(0, true)});
  for (int i = 0; i < n[7]; ++i) out.push_back(w());
  return out;
}

void check_shape(PipelineSchedule s, int N, int C, int rank) {
  DSV3_CHECK(N >= 1 && rank >= 0 && rank < N,
             "pipeline: rank " + std::to_string(rank) + " of " + std::to_string(N) + " ranks");
  switch (s) {
    case PipelineSchedule::OneFOneB:
      DSV3_CHECK(C >= 1, "pipeline: 1f1b needs at least one micro-batch");
      break;
    case PipelineSchedule::DualPipe:
      DSV3_CHECK(N >= 2 && N % 2 == 0, "pipeline: dualpipe needs an even number of ranks >= 2",
                 "use dualpipev for an odd number");
      DSV3_CHECK(C % 2 == 0 && C >= 2 * N,
                 "pipeline: dualpipe needs an even number of micro-batches >= 2 x ranks (" +
                     std::to_string(2 * N) + "), got " + std::to_string(C),
                 "raise --accum");
      break;
    case PipelineSchedule::DualPipeV:
      DSV3_CHECK(C >= 2 * N,
                 "pipeline: dualpipev needs at least 2 x ranks (" + std::to_string(2 * N) +
                     ") micro-batches, got " + std::to_string(C),
                 "raise --accum");
      break;
  }
}

}  // namespace

const char* schedule_name(PipelineSchedule s) {
  switch (s) {
    case PipelineSchedule::OneFOneB:
      return "1f1b";
    case PipelineSchedule::DualPipe:
      return "dualpipe";
    case PipelineSchedule::DualPipeV:
      return "dualpipev";
  }
  return "?";
}

PipelineSchedule parse_schedule(const std::string& name) {
  for (PipelineSchedule s :
       {PipelineSchedule::OneFOneB, PipelineSchedule::DualPipe, PipelineSchedule::DualPipeV})
    if (name == schedule_name(s)) return s;
  throw Error("pipeline: unknown schedule '" + name + "'", "use 1f1b, dualpipe or dualpipev");
}

std::vector<PipeOp> pipeline_program(PipelineSchedule s, int N, int C, int rank) {
  check_shape(s, N, C, rank);
  if (s == PipelineSchedule::OneFOneB) {
    const int warmup = std::min(N - rank - 1, C);
    std::vector<PipeOp> out;
    for (int i = 0; i < warmup; ++i) out.push_back(f(0));
    for (int i = 0; i < C - warmup; ++i) out.insert(out.end(), {f(0), b(0)});
    for (int i = 0; i < warmup; ++i) out.push_back(b(0));
    return out;
  }
  if (s == PipelineSchedule::DualPipe) {
    const int half = N / 2, h = std::min(rank, N - 1 - rank), k = half - h - 1;
    const int n[8] = {2 * k, h + 1, k, C / 2 - N + h + 1, k, h + 1, k, h + 1};
    return eight_steps(n, h == half - 1, h);
  }
  const int r = rank, k = N - r - 1;
  const int n[8] = {2 * k, r + 1, k, C - 2 * N + r + 1, k, r + 1, k, r + 1};
  return eight_steps(n, r == N - 1, r);
}

std::string to_string(const std::vector<PipeOp>& program) {
  std::string out;
  for (const PipeOp& op : program) {
    if (!out.empty()) out += ' ';
    const std::string p = std::to_string(op.phase), q = std::to_string(1 - op.phase);
    switch (op.kind) {
      case PipeOp::F:
        out += "F" + p;
        break;
      case PipeOp::B:
        out += "B" + p + (op.zero_bubble ? "z" : "");
        break;
      case PipeOp::W:
        out += "W";
        break;
      case PipeOp::FB:
        out += "F" + p + "&B" + q;
        break;
    }
  }
  return out;
}

namespace {

// Where the chunks of a schedule live: direction d, stage s; and each rank's phases.
struct Layout {
  int dirs = 1, stages = 1, per_dir = 1;  // micro-batches per direction
  int ranks = 1;
  PipelineSchedule s{};
  // The (direction, stage) of rank r's phase p.
  std::pair<int, int> chunk(int r, int p) const {
    switch (s) {
      case PipelineSchedule::OneFOneB:
        return {0, r};
      case PipelineSchedule::DualPipe: {
        const bool first = r < ranks / 2;
        return (p == 0) == first ? std::pair{0, r} : std::pair{1, ranks - 1 - r};
      }
      case PipelineSchedule::DualPipeV:
        return {0, p == 0 ? r : 2 * ranks - 1 - r};
    }
    return {0, 0};
  }
};

}  // namespace

PipelineTiming simulate_pipeline(PipelineSchedule s, int N, int C, const ChunkCosts& c) {
  Layout L;
  L.s = s;
  L.ranks = N;
  L.dirs = s == PipelineSchedule::DualPipe ? 2 : 1;
  L.stages = s == PipelineSchedule::DualPipeV ? 2 * N : N;
  L.per_dir = C / L.dirs;
  std::vector<std::vector<PipeOp>> prog(static_cast<size_t>(N));
  for (int r = 0; r < N; ++r) prog[static_cast<size_t>(r)] = pipeline_program(s, N, C, r);
  const double unset = std::numeric_limits<double>::quiet_NaN();
  // Completion times [dir][mb][stage] of forwards and of input gradients.
  auto idx = [&](int d, int m, int st) {
    return (static_cast<size_t>(d) * static_cast<size_t>(L.per_dir) + static_cast<size_t>(m)) *
               static_cast<size_t>(L.stages) +
           static_cast<size_t>(st);
  };
  const size_t cells = static_cast<size_t>(L.dirs * L.per_dir * L.stages);
  std::vector<double> fdone(cells, unset), bdone(cells, unset);
  PipelineTiming t;
  t.busy.assign(static_cast<size_t>(N), 0);
  t.start.assign(static_cast<size_t>(N), {});
  std::vector<double> free_at(static_cast<size_t>(N), 0);
  std::vector<size_t> pc(static_cast<size_t>(N), 0);
  std::vector<std::array<int, 2>> nf(static_cast<size_t>(N), {0, 0}), nb(nf);
  std::vector<std::deque<int>> wq(static_cast<size_t>(N));
  // The time a forward / backward of rank r's phase p, next micro-batch, may start (NaN: not yet).
  auto f_ready = [&](int r, int p) {
    const auto [d, st] = L.chunk(r, p);
    const int m = nf[static_cast<size_t>(r)][static_cast<size_t>(p)];
    DSV3_CHECK(m < L.per_dir, "pipeline simulation: too many forwards on a rank");
    return st == 0 ? 0.0 : fdone[idx(d, m, st - 1)];
  };
  auto b_ready = [&](int r, int p) {
    const auto [d, st] = L.chunk(r, p);
    const int m = nb[static_cast<size_t>(r)][static_cast<size_t>(p)];
    DSV3_CHECK(m < L.per_dir, "pipeline simulation: too many backwards on a rank");
    const double own = fdone[idx(d, m, st)];
    return st == L.stages - 1 ? own : later(own, bdone[idx(d, m, st + 1)]);
  };
  auto finish_f = [&](int r, int p, double end) {
    const auto [d, st] = L.chunk(r, p);
    fdone[idx(d, nf[static_cast<size_t>(r)][static_cast<size_t>(p)]++, st)] = end;
  };
  auto finish_b = [&](int r, int p, double end) {
    const auto [d, st] = L.chunk(r, p);
    bdone[idx(d, nb[static_cast<size_t>(r)][static_cast<size_t>(p)]++, st)] = end;
  };
  size_t left = 0;
  for (const auto& p : prog) left += p.size();
  while (left > 0) {
    bool progress = false;
    for (int r = 0; r < N; ++r) {
      const auto ru = static_cast<size_t>(r);
      while (pc[ru] < prog[ru].size()) {
        const PipeOp& op = prog[ru][pc[ru]];
        double ready = 0, cost = 0;
        switch (op.kind) {
          case PipeOp::F:
            ready = f_ready(r, op.phase), cost = c.f;
            break;
          case PipeOp::B:
            ready = b_ready(r, op.phase), cost = op.zero_bubble ? c.b - c.w : c.b;
            break;
          case PipeOp::W:
            DSV3_CHECK(!wq[ru].empty(), "pipeline simulation: a W with no deferred backward");
            cost = c.w;
            break;
          case PipeOp::FB:
            ready = later(f_ready(r, op.phase), b_ready(r, 1 - op.phase)), cost = c.fb;
            break;
        }
        if (std::isnan(ready)) break;  // waits for another rank
        const double start = std::max(ready, free_at[ru]), end = start + cost;
        t.start[ru].push_back(start);
        free_at[ru] = end;
        t.busy[ru] += cost;
        if (op.kind == PipeOp::F || op.kind == PipeOp::FB) finish_f(r, op.phase, end);
        if (op.kind == PipeOp::B) finish_b(r, op.phase, end);
        if (op.kind == PipeOp::FB) finish_b(r, 1 - op.phase, end);
        if (op.kind == PipeOp::B && op.zero_bubble) wq[ru].push_back(op.phase);
        if (op.kind == PipeOp::W) wq[ru].pop_front();
        ++pc[ru];
        --left;
        progress = true;
      }
    }
    DSV3_CHECK(progress, std::string("pipeline simulation: the ") + schedule_name(s) +
                             " programs deadlock at " + std::to_string(N) + " ranks, " +
                             std::to_string(C) + " micro-batches");
  }
  for (double x : free_at) t.makespan = std::max(t.makespan, x);
  for (int r = 0; r < N; ++r) t.bubble.push_back(t.makespan - t.busy[static_cast<size_t>(r)]);
  return t;
}

double table2_bubble(PipelineSchedule s, int ranks, const ChunkCosts& c) {
  switch (s) {
    case PipelineSchedule::OneFOneB:
      return (ranks - 1) * (c.f + c.b);
    case PipelineSchedule::DualPipe:
      return (ranks / 2.0 - 1) * (c.fb + c.b - 3 * c.w);
    case PipelineSchedule::DualPipeV:
      return (ranks - 1) * (c.fb + c.b - 3 * c.w);  // PP = 2N stages: (2N/2 - 1)
  }
  return 0;
}

}  // namespace dsv3

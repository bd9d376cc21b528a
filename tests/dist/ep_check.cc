// Expert parallelism over MPI (issue 18): `mpirun -np E dist_ep_check` on the tiny preset. Each
// rank runs its own 2 windows through a model whose MoE layers use MpiExpertDispatcher (rank j
// computes experts [j·E_r/E, (j+1)·E_r/E) for every rank's tokens), forward and backward with
// dL/dlogits = 1e-3 · logits; the reference is this same program's model with the local
// dispatcher, run by every rank on (a) its own windows and (b) all ranks' windows in one batch.
// Checks, FP32 dispatch:
//   - logits equal (a)'s bit for bit: an expert's output row does not depend on the other rows of
//     its GEMM, and a token's K outputs are added in the same expert order;
//   - the gradient of every expert this rank holds equals (b)'s bit for bit: its GEMMs see the
//     same rows in the same order (rank 0's tokens, then rank 1's, ... = (b)'s token order);
//     the experts it does not hold get no gradient;
//   - the other gradients, summed over ranks, match (b)'s within 1 - 2Σxy/Σ(x²+y²) < 1e-13: (b)
//     sums over all ranks' rows inside one GEMM, the ranks over their own rows and then across
//     ranks (reassociation only, ~1e-7 relative per element, squared in this measure).
// With `fp8` (V3's payloads: dispatch in E4M3 1x128 tiles with power-of-two scales, the rows back
// in BF16), the same comparisons within bounds derived from E4M3's step: a normal E4M3 value has
// 3 mantissa bits, so rounding moves it by at most 2^-4 relative (a tile's values below 2^-6 of
// its scale's range are subnormal, off by at most 2^-10 of the scale: negligible against the
// tile's largest). An input off by δ <= 2^-4 relative gives 1 - 2Σxy/Σ(x²+y²) = Σ(x-y)²/Σ(x²+y²)
// <= δ²/2 = 2^-9 for what it reaches linearly: the logits' bound (the MoE output is only part of
// the residual stream, so the logits move less). The gate and up projections' weight gradients
// meet three quantized factors (the input, the activations computed from it, the output gradient
// through the down projection: δ <= 3 · 2^-4), so the gradients' bound is (3 · 2^-4)²/2 = 9 · 2^-9
// (a token whose routing the perturbation flips moves its experts' gradients too; measured:
// ~4e-3 and ~3e-3 over 2 and 4 ranks). Each measure must also be > 0: the payloads were quantized.
// The logits are the same whatever the rank count (a row's tiles do not depend on where it goes).
// The traffic, counted from each rank's routing: a token's row travels towards the experts once
// per other rank holding one of its experts (U such pairs, twice: dispatch and the backward of
// combine), a slot's row back once per pass (S slots whose expert another rank holds, twice:
// combine and the backward of dispatch), and 3 words a slot (its index, weight and weight
// gradient). The bytes sent are exactly d + ceil(d/128) per row towards the experts, 2d per row
// back and 4 per word (FP32: 4d, 4d, 4). The tiny preset routes a token to 4 experts of 2 of 4
// groups, so at 2 and 4 ranks U < S: each row sent once per rank, not once per expert, is seen.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/rng.h"
#include "base/thread_pool.h"
#include "dist/mpi_comm.h"
#include "dist/mpi_expert_dispatcher.h"
#include "kernels/best_kernels.h"
#include "model/activations.h"
#include "model/batch.h"
#include "model/model.h"
#include "model/param_store.h"
#include "model/presets.h"

using namespace dsv3;

namespace {

constexpr int64_t kB = 2, kT = 16;

// Of this rank's routing, over its MoE layers: token rows and slots bound for other ranks.
struct Traffic {
  int64_t token_rows = 0, slots = 0;
};

Traffic remote_traffic(const ForwardActs& acts, int64_t per_rank, int me) {
  Traffic t;
  for (const LayerActs& l : acts.layers) {
    const DispatchPlan& p = l.moe.plan;
    for (int64_t tok = 0; tok < p.tokens; ++tok) {
      std::vector<bool> owner(static_cast<size_t>(p.n_experts / per_rank), false);
      for (int64_t j = 0; j < p.top_k; ++j) {
        const auto o = static_cast<size_t>(l.moe.experts[tok * p.top_k + j] / per_rank);
        if (static_cast<int>(o) == me) continue;
        ++t.slots;
        t.token_rows += !owner[o];
        owner[o] = true;
      }
    }
  }
  return t;
}

// Forward and backward of `seqs` [n, kT] through m; returns the logits. per_rank > 0: fills
// *traffic from the routing for a rank holding per_rank experts.
std::vector<float> forward_backward(Model& m, const std::vector<int32_t>& ids, int64_t first,
                                    int64_t n, int64_t per_rank = 0, int me = 0,
                                    Traffic* traffic = nullptr) {
  Batch b;
  for (int64_t s = first; s < first + n; ++s)
    b.add(nullptr, std::span<const int32_t>(ids.data() + s * kT, kT), LogitsRows::All);
  ForwardActs acts;
  acts.keep_layers = true;
  const int64_t V = m.config().vocab_size;
  std::vector<float> logits(static_cast<size_t>(b.rows() * V)), dl(logits.size());
  m.forward(b, acts, logits.data(), nullptr);
  for (size_t i = 0; i < dl.size(); ++i) dl[i] = 1e-3f * logits[i];
  m.params().zero_grads();
  m.backward(b, acts, dl.data(), nullptr);
  if (traffic) *traffic = remote_traffic(acts, per_rank, me);
  return logits;
}

std::unique_ptr<Model> training_model(const ModelWeights& w, ComputeContext ctx) {
  std::unique_ptr<Model> m = make_model(w, ctx);
  m->params().enable_training();
  m->set_attention_path(AttentionPath::Naive);
  return m;
}

// 1 - 2Σxy/Σ(x²+y²) over x, y.
double rel_err(const float* x, const float* y, size_t n) {
  double xy = 0, xx = 0;
  for (size_t i = 0; i < n; ++i) {
    xy += static_cast<double>(x[i]) * y[i];
    xx += static_cast<double>(x[i]) * x[i] + static_cast<double>(y[i]) * y[i];
  }
  return xx > 0 ? 1 - 2 * xy / xx : 0;
}

int check(const Communicator& comm, bool fp8) {
  const int R = comm.size(), me = comm.rank();
  ThreadPool pool(1);
  const Kernels& k = best_kernels();
  const ComputeContext ctx{k, pool, Precision::F32};
  const ModelConfig c = preset_config("tiny");
  const ModelWeights w = ModelWeights::random(c, 5, DType::F32);
  std::vector<int32_t> ids(static_cast<size_t>(R * kB * kT));
  Rng rng(11);
  for (int32_t& t : ids) t = static_cast<int32_t>(rng.below(static_cast<uint64_t>(c.vocab_size)));

  auto ep = training_model(w, ctx);
  MpiExpertDispatcher disp(comm, k, c.n_routed_experts, fp8 ? EpPayload::FP8 : EpPayload::F32,
                           fp8 ? EpPayload::BF16 : EpPayload::F32);
  ep->set_dispatcher(&disp);
  Traffic traffic;
  const std::vector<float> l_ep =
      forward_backward(*ep, ids, me * kB, kB, disp.experts_per_rank(), me, &traffic);
  auto own = training_model(w, ctx);
  const std::vector<float> l_own = forward_backward(*own, ids, me * kB, kB);
  auto all = training_model(w, ctx);
  forward_backward(*all, ids, 0, R * kB);

  // Per rank: logits vs (a), held experts' gradients vs (b) (bit-identical flags and errors).
  double errs[3] = {rel_err(l_ep.data(), l_own.data(), l_ep.size()), 0, 0};
  int64_t flags[4] = {std::memcmp(l_ep.data(), l_own.data(), l_ep.size() * sizeof(float)) != 0, 0,
                      0, 0};
  int64_t held = 0;
  double exy = 0, exx = 0;
  std::vector<double> sums;
  std::vector<const Param*> dense;
  for (const Param& p : ep->params().all()) {
    if (p.alias || !p.grad) continue;
    const Param& q = all->params().get(p.name());
    const auto n = static_cast<size_t>(p.numel);
    if (p.spec->expert >= 0) {
      if (p.spec->expert / disp.experts_per_rank() == me) {
        ++held;
        flags[1] += std::memcmp(p.grad, q.grad, n * sizeof(float)) != 0;
        for (size_t i = 0; i < n; ++i) {
          exy += static_cast<double>(p.grad[i]) * q.grad[i];
          exx += static_cast<double>(p.grad[i]) * p.grad[i] +
                 static_cast<double>(q.grad[i]) * q.grad[i];
        }
      } else {
        for (size_t i = 0; i < n; ++i) flags[2] += p.grad[i] != 0;
      }
      continue;
    }
    dense.push_back(&p);
    sums.insert(sums.end(), p.grad, p.grad + n);
  }
  errs[1] = exx > 0 ? 1 - 2 * exy / exx : 0;
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, sums.data(), static_cast<int>(sums.size()), MPI_DOUBLE,
                          MPI_SUM, comm.get()),
            "MPI_Allreduce");
  double xy = 0, xx = 0;  // the non-expert gradients, summed over ranks, against (b)'s
  size_t at = 0;
  for (const Param* p : dense) {
    const Param& q = all->params().get(p->name());
    for (int64_t i = 0; i < p->numel; ++i, ++at) {
      const double x = sums[at], y = q.grad[i];
      xy += x * y;
      xx += x * x + y * y;
    }
  }
  errs[2] = xx > 0 ? 1 - 2 * xy / xx : 0;
  // The traffic: token rows from this rank's routing; slot rows and words over all ranks (a slot
  // row comes back from the rank holding the expert); bytes from the payloads' row sizes.
  const int64_t d = c.hidden_size,
                want = disp.rows_to_experts() *
                           payload_row_bytes(fp8 ? EpPayload::FP8 : EpPayload::F32, d) +
                       disp.rows_back() *
                           payload_row_bytes(fp8 ? EpPayload::BF16 : EpPayload::F32, d) +
                       4 * disp.words_sent();
  flags[3] = disp.bytes_sent() != want || disp.rows_to_experts() != 2 * traffic.token_rows;
  int64_t totals[4] = {traffic.slots, traffic.token_rows, disp.rows_back(), disp.words_sent()};
  comm.allreduce_sum(std::span<int64_t>(flags, 4));
  comm.allreduce_sum(std::span<int64_t>(totals, 4));
  flags[3] += totals[2] != 2 * totals[0] || totals[3] != 3 * totals[0] || totals[1] >= totals[0];
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, errs, 2, MPI_DOUBLE, MPI_MAX, comm.get()), "MPI_Allreduce");
  const double fp32_bytes = static_cast<double>(disp.rows_to_experts() + disp.rows_back()) * 4 * d +
                            4.0 * static_cast<double>(disp.words_sent());
  if (me == 0)
    std::printf(
        "EP over %d ranks, %s payloads (%lld experts each, %lld held expert tensors on rank 0): "
        "logits vs no EP %s (1 - 2Σxy/Σ(x²+y²) = %.3g); held experts' gradients vs one batch %s "
        "(%.3g); %lld nonzero gradient elements of experts not held; other gradients %.3g; "
        "%lld token rows for %lld remote slots; rank 0 sent %.3f MB (%s the routing's rows and "
        "the payloads' row sizes; %.3f of FP32's)\n",
        R, fp8 ? "FP8 dispatch / BF16 combine" : "FP32",
        static_cast<long long>(disp.experts_per_rank()), static_cast<long long>(held),
        flags[0] ? "differ" : "bit-identical", errs[0], flags[1] ? "differ" : "bit-identical",
        errs[1], static_cast<long long>(flags[2]), errs[2], static_cast<long long>(totals[1]),
        static_cast<long long>(totals[0]), static_cast<double>(disp.bytes_sent()) / 1e6,
        flags[3] ? "NOT" : "exactly", static_cast<double>(disp.bytes_sent()) / fp32_bytes);
  if (flags[2] != 0 || flags[3] != 0) return 1;
  if (!fp8) return flags[0] == 0 && flags[1] == 0 && errs[2] < 1e-13 ? 0 : 1;
  const double logits_bound = std::ldexp(1.0, -9), grad_bound = 9 * std::ldexp(1.0, -9);
  return errs[0] > 0 && errs[0] <= logits_bound && errs[1] > 0 && errs[1] <= grad_bound &&
                 errs[2] > 0 && errs[2] <= grad_bound
             ? 0
             : 1;
}

}  // namespace

int main(int argc, char** argv) {
  MpiSession session;
  int rc = 1;
  try {
    Communicator comm;
    rc = check(comm, argc > 1 && std::string(argv[1]) == "fp8");
  } catch (const Error& e) {
    std::fprintf(stderr, "ep_check: %s\n", e.what());
    MpiSession::abort(1);
  }
  return rc;
}

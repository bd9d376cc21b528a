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
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
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

struct Run {
  std::vector<float> logits;
};

// Forward and backward of `seqs` [n, kT] through m; returns the logits.
std::vector<float> forward_backward(Model& m, const std::vector<int32_t>& ids, int64_t first,
                                    int64_t n) {
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
  return logits;
}

std::unique_ptr<Model> training_model(const ModelWeights& w, ComputeContext ctx) {
  std::unique_ptr<Model> m = make_model(w, ctx);
  m->params().enable_training();
  m->set_attention_path(AttentionPath::Naive);
  return m;
}

int check(const Communicator& comm) {
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
  MpiExpertDispatcher disp(comm, k, c.n_routed_experts);
  ep->set_dispatcher(&disp);
  const std::vector<float> l_ep = forward_backward(*ep, ids, me * kB, kB);
  auto own = training_model(w, ctx);
  const std::vector<float> l_own = forward_backward(*own, ids, me * kB, kB);
  auto all = training_model(w, ctx);
  forward_backward(*all, ids, 0, R * kB);

  int64_t bad = 0;
  bad += std::memcmp(l_ep.data(), l_own.data(), l_ep.size() * sizeof(float)) != 0;
  int64_t expert_bad = 0, held = 0, stray = 0;
  double xy = 0, xx = 0;  // the non-expert gradients, summed over ranks, against (b)'s
  std::vector<double> sums;
  std::vector<const Param*> dense;
  for (const Param& p : ep->params().all()) {
    if (p.alias || !p.grad) continue;
    const Param& q = all->params().get(p.name());
    const auto n = static_cast<size_t>(p.numel);
    if (p.spec->expert >= 0) {
      if (p.spec->expert / disp.experts_per_rank() == me) {
        ++held;
        expert_bad += std::memcmp(p.grad, q.grad, n * sizeof(float)) != 0;
      } else {
        for (size_t i = 0; i < n; ++i) stray += p.grad[i] != 0;
      }
      continue;
    }
    dense.push_back(&p);
    sums.insert(sums.end(), p.grad, p.grad + n);
  }
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, sums.data(), static_cast<int>(sums.size()), MPI_DOUBLE,
                          MPI_SUM, comm.get()),
            "MPI_Allreduce");
  size_t at = 0;
  for (const Param* p : dense) {
    const Param& q = all->params().get(p->name());
    for (int64_t i = 0; i < p->numel; ++i, ++at) {
      const double x = sums[at], y = q.grad[i];
      xy += x * y;
      xx += x * x + y * y;
    }
  }
  const double dense_err = xx > 0 ? 1 - 2 * xy / xx : 0;
  int64_t flags[3] = {bad, expert_bad, stray};
  comm.allreduce_sum(std::span<int64_t>(flags, 3));
  if (me == 0)
    std::printf(
        "EP over %d ranks (%lld experts each, %lld held expert tensors on rank 0): logits vs no EP "
        "%s; held experts' gradients vs one batch %s; %lld nonzero gradient elements of experts "
        "not held; other gradients 1 - 2Σxy/Σ(x²+y²) = %.3g; rank 0 sent %.2f MB\n",
        R, static_cast<long long>(disp.experts_per_rank()), static_cast<long long>(held),
        flags[0] ? "DIFFER" : "bit-identical", flags[1] ? "DIFFER" : "bit-identical",
        static_cast<long long>(flags[2]), dense_err, static_cast<double>(disp.bytes_sent()) / 1e6);
  return flags[0] == 0 && flags[1] == 0 && flags[2] == 0 && dense_err < 1e-13 ? 0 : 1;
}

}  // namespace

int main() {
  MpiSession session;
  int rc = 1;
  try {
    Communicator comm;
    rc = check(comm);
  } catch (const Error& e) {
    std::fprintf(stderr, "ep_check: %s\n", e.what());
    MpiSession::abort(1);
  }
  return rc;
}

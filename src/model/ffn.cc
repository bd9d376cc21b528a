// SwiGLU FFN (SPEC §1.6).
#include "model/ffn.h"

namespace dsv3 {

SwiGlu::SwiGlu(const ModelWeights& w, const std::string& prefix, int64_t hidden, int64_t inter)
    : inter_(inter),
      gate_(weight_ref(w, prefix + "gate_proj.weight", inter, hidden)),
      up_(weight_ref(w, prefix + "up_proj.weight", inter, hidden)),
      down_(weight_ref(w, prefix + "down_proj.weight", hidden, inter)) {}

void SwiGlu::forward(ComputeContext ctx, const float* x, int64_t T, FfnActs& a, float* out) const {
  a.gate.resize(T * inter_);
  a.up.resize(T * inter_);
  ctx.kernels.matmul(a.gate.data(), x, gate_, T, ctx.pool);
  ctx.kernels.matmul(a.up.data(), x, up_, T, ctx.pool);
  ctx.kernels.swiglu(a.gate.data(), a.up.data(), T * inter_);
  ctx.kernels.matmul(out, a.gate.data(), down_, T, ctx.pool);
}

}  // namespace dsv3

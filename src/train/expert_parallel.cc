// The experts an expert-parallel position holds: see expert_parallel.h.
#include "train/expert_parallel.h"

#include <string>

#include "base/error.h"

namespace dsv3 {

ParamSlice expert_slice(const ModelConfig& c, int64_t ep, int64_t position) {
  DSV3_CHECK(ep >= 1 && c.n_routed_experts > 0 && c.n_routed_experts % ep == 0,
             "train: --ep " + std::to_string(ep) + " does not divide the model's " +
                 std::to_string(c.n_routed_experts) + " routed experts",
             "use an --ep that divides n_routed_experts (and --dp)");
  const int64_t per = c.n_routed_experts / ep;
  return ParamSlice::experts(position * per, per);
}

}  // namespace dsv3

// THE list of a model's parameters (ARCHITECTURE habit 9): name (HF layout, SPEC §6), shape, how it
// is initialised, and whether DeepSeek's FP8 checkpoints store it as E4M3 with a weight_scale_inv.
// Load, init, save, inspect, the optimizer and the gradients all walk this one table.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"
#include "tensor/dtype.h"

namespace dsv3 {

enum class ParamInit { Normal, Ones, Zeros };  // Normal: N(0, 0.006) (SPEC §1.2)
enum class ParamGroup { Main, Mtp };           // MTP module k = model.layers.{L + k - 1}.*

struct ParamSpec {
  std::string name;  // e.g. "model.layers.3.mlp.experts.17.gate_proj.weight"
  Shape shape;
  ParamInit init = ParamInit::Normal;
  ParamGroup group = ParamGroup::Main;
  int64_t layer = -1;     // decoder layer index, -1 for embedding / final norm / head
  bool fp8_able = false;  // a Linear weight that FP8 checkpoints store as E4M3 (SPEC §6 '*')
  bool keep_f32 = false;  // stored FP32 whatever the model dtype (e_score_correction_bias)
  // False when no gradient trains it: e_score_correction_bias follows the balance rule (SPEC §2).
  bool has_grad = true;
  int64_t expert = -1;  // routed expert index, -1 otherwise (for activated-parameter counts)
  // MTP embed_tokens / shared_head.head: a stored copy of this main tensor (SPEC §6); loaders may
  // alias it, and parameter counts leave it out of the "unique" MTP figure.
  std::string copy_of;
};

std::vector<ParamSpec> param_table(const ModelConfig& c);

// The dtype a tensor is stored in when a model is written in `dtype`: keep_f32 tensors stay F32;
// an F8_E4M3 model (DeepSeek's FP8 layout, SPEC §3.2) stores the fp8_able matrices as E4M3 and the
// rest as BF16.
DType storage_dtype(const ParamSpec& p, DType dtype);

struct ParamCounts {
  uint64_t main_total = 0;
  uint64_t mtp_total = 0;   // every MTP tensor as stored, the embedding and head copies included
  uint64_t mtp_unique = 0;  // without those copies (SPEC §1.1: V3 about 11.6B)
  // Per token: all but the unselected routed experts and the embedding lookup.
  uint64_t main_activated = 0;
  uint64_t mtp_activated = 0;  // likewise for the MTP module, copies left out
};
ParamCounts count_params(const ModelConfig& c);

// THE parameter count every command prints for a model (init, inspect, generate, chat, bench):
// the main model without the MTP module, as DeepSeek reports V3's 671B; the MTP module follows as
// its own unique parameters (its copies of the embedding and head left out): "7.97M parameters +
// 1.92M MTP", "1.78B parameters" for a model without one.
std::string parameter_summary(const ModelConfig& c);
// A count the way the papers print it: 671.0B, 14.77B, 2.45B, 35.10M, 512.
std::string format_params(uint64_t n);

// The tensors and parameters of param_table(c), MTP copies included, computed from a few one-layer
// tables (so a config of a billion layers costs no more than one of three): what loaders and
// writers check before building anything. Doubles: the counts of an absurd config overflow int64.
struct ModelSize {
  double tensors = 0;
  double parameters = 0;
};
ModelSize model_size(const ModelConfig& c);

// dsv3's limits on a whole model (DeepSeek-V3 has about 91 thousand tensors, 685 billion
// parameters with its MTP module): a config over them is refused, naming the limit.
inline constexpr double kMaxTensors = 1e6;
inline constexpr double kMaxParameters = 1e13;
void check_model_size(const ModelConfig& c, const std::string& source);

}  // namespace dsv3

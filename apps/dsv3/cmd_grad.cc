// dsv3 grad: the training loss of one sequence and the gradient of every parameter, written under
// the Hugging Face names so the backward pass can be checked against another framework
// (tests/ref/train_ref.py compare-grad).
#include <cstdio>
#include <cstring>
#include <vector>

#include "apps/dsv3/commands.h"
#include "apps/dsv3/output_folder.h"
#include "base/error.h"
#include "base/strings.h"
#include "base/thread_pool.h"
#include "kernels/best_kernels.h"
#include "model/linear.h"
#include "model/model.h"
#include "model/param_store.h"
#include "model/weights.h"
#include "tensor/safetensors.h"
#include "train/forward_backward.h"

namespace dsv3::cli {

namespace {

const char kUsage[] =
    "usage: dsv3 grad -m DIR --ids LIST --out FILE.safetensors [--mtp-lambda X]\n"
    "                 [--balance-alpha X] [--aux-alpha X] [--precision P] [--fp8-gemms LIST]\n"
    "                 [--fp8-o-proj-cache F] [-t THREADS]\n\n"
    "Runs one training forward and backward pass over the token ids (a window: the model reads\n"
    "ids[0 .. n-2] and predicts ids[1 .. n-1]; the MTP module predicts two ahead) and writes the\n"
    "FP32 gradient of every trained parameter under its Hugging Face name (the MTP module's "
    "copies\n"
    "of the embedding and head are the main tensors: only the main names are written). The loss\n"
    "and its parts are printed and stored in the file's __metadata__ (loss, ce, mtp, balance, "
    "aux;\n"
    "the parts unweighted, loss = ce + lambda mtp + alpha balance + aux_alpha aux).\n\n"
    "  -m, --model DIR       Hugging Face model folder (DeepSeek architecture)\n"
    "  --ids LIST            at least 3 token ids, separated by commas and/or spaces\n"
    "  --out FILE            the gradients (.safetensors)\n"
    "  --mtp-lambda X        weight of the MTP loss (default 0.3; 0: no MTP)\n"
    "  --balance-alpha X     sequence-wise balance loss weight (default 1e-4; 0: off)\n"
    "  --aux-alpha X         V2-style expert-level auxiliary loss weight (default 0: off)\n"
    "  --precision f32|bf16|fp8  the Linears' GEMMs (as dsv3 train; default f32)\n"
    "  --fp8-scaling tile|tensor  with fp8: tiles and blocks (default) or per tensor\n"
    "  --fp8-gemms LIST      with fp8: the GEMMs in FP8, of fprop,dgrad,wgrad (default all)\n"
    "  --fp8-o-proj-cache e5m6|e4m3  with fp8: the o_proj input cache (default e5m6)\n"
    "  -t, --threads N       worker threads (default: physical cores)\n";

std::string decimal(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", x);
  return buf;
}

}  // namespace

int cmd_grad(Args& a) {
  if (a.help()) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  const std::string dir = a.require({"-m", "--model"}, "model folder");
  const std::string id_list = a.require({"--ids"}, "token ids");
  const std::string out = a.require({"--out"}, "output file");
  LossWeights w;
  w.mtp_lambda = a.double_or({"--mtp-lambda"}, w.mtp_lambda);
  w.balance_alpha = a.double_or({"--balance-alpha"}, w.balance_alpha);
  w.aux_alpha = a.double_or({"--aux-alpha"}, w.aux_alpha);
  const Precision precision =
      with_fp8_scaling(parse_train_precision(a.get({"--precision"}).value_or("f32")),
                       a.get({"--fp8-scaling"}).value_or("tile"));
  Fp8Recipe fp8;
  if (auto g = a.get({"--fp8-gemms"})) fp8 = with_fp8_gemms(fp8, *g);
  if (auto o = a.get({"--fp8-o-proj-cache"})) fp8 = with_fp8_o_proj_cache(fp8, *o);
  const int threads = threads_arg(a);
  a.finish();
  const std::vector<int32_t> ids = parse_id_list(id_list, "grad: --ids");
  DSV3_CHECK(ids.size() >= 3, "grad: --ids needs at least 3 tokens (a window of T + 1, T >= 2)");
  DSV3_CHECK(w.mtp_lambda >= 0 && w.balance_alpha >= 0 && w.aux_alpha >= 0,
             "grad: loss weights must be >= 0");

  ModelWeights weights = ModelWeights::load(dir);
  check_output_file(out, "--out");  // before the work: never one of the model's own files
  ThreadPool pool(threads);
  ComputeContext ctx{best_kernels(), pool, precision};
  ctx.fp8 = fp8;
  auto model = make_model(weights, ctx);
  ParamStore& ps = model->params();
  ps.enable_training();
  ForwardBackward fb(*model, ctx);
  const auto T = static_cast<int64_t>(ids.size()) - 1;
  for (int64_t i = 0; i <= T; ++i) check_tokens(model->config(), ids.data() + i, 1, 0);
  const LossParts p = fb.run(ids.data(), 1, T, w, 1.0);

  SafetensorsWriter wr;
  for (const Param& prm : ps.all()) {
    if (prm.alias || !prm.grad) continue;
    wr.add_bytes(prm.name(), DType::F32, prm.spec->shape,
                 std::span<const std::byte>(reinterpret_cast<const std::byte*>(prm.grad),
                                            static_cast<size_t>(prm.numel) * sizeof(float)));
  }
  wr.set_metadata("loss", decimal(p.total));
  wr.set_metadata("ce", decimal(p.ce));
  wr.set_metadata("mtp", decimal(p.mtp));
  wr.set_metadata("balance", decimal(p.balance));
  wr.set_metadata("aux", decimal(p.aux));
  wr.write(out);
  std::printf(
      "loss %.9g (ce %.9g, mtp %.9g, balance %.9g, aux %.9g); %zu gradients written to %s\n",
      p.total, p.ce, p.mtp, p.balance, p.aux, wr.size(), out.c_str());
  return 0;
}

}  // namespace dsv3::cli

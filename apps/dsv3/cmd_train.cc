// dsv3 train: the training loop of train/trainer.h behind flags or a JSON config.
#include <cmath>
#include <cstdio>
#include <memory>
#include <vector>

#include "apps/dsv3/commands.h"
#include "apps/dsv3/inference.h"
#include "apps/dsv3/npy.h"
#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "dist/launch.h"
#include "dist/pipeline_schedule.h"
#include "model/linear.h"
#include "train/trainer.h"
#ifdef DSV3_MPI
#include "dist/mpi_train.h"
#endif

namespace dsv3::cli {

namespace {

const char kUsage[] =
    "usage: dsv3 train --data DATA_DIR -o RUN_DIR [--preset NAME | --init MODEL_DIR] [--resume]\n"
    "                  [--config train.json] [options]\n\n"
    "Trains a DeepSeek-V3-architecture model with the V3 recipe (SPEC §2, §5): cross-entropy plus\n"
    "the MTP loss and the sequence-wise balance loss, AdamW with FP32 master weights, clipping by\n"
    "global norm, V3's LR shape, the aux-loss-free bias update after each step. Writes\n"
    "RUN_DIR/metrics.jsonl (a line per step: loss, ce, mtp_loss, balance_loss, lr, grad_norm,\n"
    "tokens_per_s, maxvio per MoE layer; val_loss on validation steps) and checkpoints in\n"
    "RUN_DIR/checkpoints/step-N (a Hugging Face folder dsv3 generate loads, plus the trainer's\n"
    "state). Ctrl-C stops after the current step with a checkpoint; --resume continues exactly.\n\n"
    "  --data DIR            token shards from `dsv3 data prepare`\n"
    "  -o, --out DIR         the run folder\n"
    "  --preset NAME         start from the preset's random weights (default tiny; --seed)\n"
    "  --init DIR            start from a model folder instead\n"
    "  --resume              continue the run in -o from its last checkpoint\n"
    "  --config FILE         a JSON object with any of the options below (seq_len, lr, ...);\n"
    "                        flags given as well override it\n"
    "  --steps N             optimizer steps (default 100)\n"
    "  --seq-len N           tokens per window (default 128)\n"
    "  --batch N             windows per micro-batch (default 8)\n"
    "  --accum N             micro-batches per optimizer step (default 1)\n"
    "  --dp D                data parallel over D ranks (default 1): the --accum micro-batches\n"
    "                        of a step split into D equal parts, one per rank, their gradients\n"
    "                        summed in rank order (bit-identical to one process with --dp D),\n"
    "                        AdamW state sharded across ranks (ZeRO-1). Start with\n"
    "                        mpirun -np D dsv3 train --dp D ... (needs a DSV3_MPI=ON build);\n"
    "                        without mpirun one process runs the D parts in turn\n"
    "  --pp P                pipeline parallel over P ranks (default 1): consecutive layers per\n"
    "                        stage, the --accum micro-batches run by --pipeline's per-rank\n"
    "                        program (SPEC §4), each rank loading and keeping only its\n"
    "                        stages' weights and AdamW state (and EMA); losses and\n"
    "                        weights bit-identical to one process (--dp 2 for dualpipe, whose two\n"
    "                        directions are its two parts). mpirun -np P dsv3 train --pp P ...;\n"
    "                        with --dp D, D pipelines over D x P ranks (one process: --dp D, or\n"
    "                        2D for dualpipe). Writes RUN_DIR/pipeline.json (per-rank bubble)\n"
    "  --pipeline NAME       1f1b, dualpipe (P even; --accum / D even and >= 2P) or dualpipev\n"
    "                        (--accum / D >= 2P; 2P stages) (default dualpipev)\n"
    "  --pp-split even|cost  layers a stage: as even as they divide (default), or the split\n"
    "                        whose costliest stage is least, the head and MTP module counted\n"
    "                        (multiply-adds per token); the start-up report names each rank's\n"
    "                        layers\n"
    "  --ep E                expert parallel inside --dp (default 1): each group of E\n"
    "                        consecutive ranks shares the routed experts, a rank loading and\n"
    "                        keeping n_routed_experts / E of them (weights, gradients, AdamW\n"
    "                        state) and computing them for the group's tokens (MoE dispatch and\n"
    "                        combine as MPI all-to-alls). E divides --dp and n_routed_experts;\n"
    "                        needs mpirun -np D (with --pp: D x P, the same stage of E\n"
    "                        consecutive pipelines sharing the experts). Checkpoints hold the\n"
    "                        whole model\n"
    "  --ep-dispatch fp32|fp8  the MoE all-to-all's payloads: fp32 (default; exact, a\n"
    "                        token's forward as without EP), or V3's fp8: rows to the experts\n"
    "                        in E4M3 1x128 tiles with power-of-two scales, rows back in BF16\n"
    "                        (a quarter and a half of the bytes); a token's row goes once to\n"
    "                        each rank holding one of its experts\n"
    "  --node-limit M        node-limited routing (SPEC §2): a token's experts on at most M of\n"
    "                        the --ep ranks of its group, the ranks chosen by the sum of their\n"
    "                        two best expert scores (sets the model's n_group to E and\n"
    "                        topk_group to M; checkpoints keep it). Default: the model's own\n"
    "  --seed N              weights (with --preset) and data order (default 0)\n"
    "  --lr X                peak learning rate (default 1e-3)\n"
    "  --final-lr X          learning rate after the cosine decay (default 1e-4)\n"
    "  --warmup N            linear warmup steps (default 0)\n"
    "  --decay-start N       last step at the peak, where the cosine decay starts (default:\n"
    "                        none, the rate stays at the peak)\n"
    "  --decay-steps N       length of the cosine decay down to --final-lr (default 0)\n"
    "  --weight-decay X      AdamW decoupled weight decay on matrices (default 0.1)\n"
    "  --beta1 X, --beta2 X  AdamW betas (default 0.9, 0.95); --eps X (default 1e-8)\n"
    "  --clip X              clip the global gradient norm to X (default 1.0; 0: off)\n"
    "  --moments bf16|f32    AdamW moment storage (default bf16, as V3)\n"
    "  --precision f32|bf16|fp8  the Linears' GEMMs: FP32; BF16 operands with FP32 sums (V3's\n"
    "                        mixed precision; the MoE gate stays FP32); or V3's FP8 recipe (E4M3\n"
    "                        Fprop, Dgrad and Wgrad with FP32 promotion every 128; the embedding,\n"
    "                        heads and MTP eh_proj in BF16, the MoE gate FP32; docs/FP8.md).\n"
    "                        Default f32\n"
    "  --fp8-scaling tile|tensor  with fp8: 1x128 activation tiles and 128x128 weight blocks\n"
    "                        (default, the recipe), or one scale per tensor (the baseline)\n"
    "  --fp8-gemms LIST      with fp8, for ablations: the GEMMs that run in FP8, a comma list\n"
    "                        of fprop, dgrad, wgrad (default all three, the recipe); the others\n"
    "                        run BF16\n"
    "  --fp8-o-proj-cache e5m6|e4m3  with fp8: the attention output projection's input cached\n"
    "                        in E5M6 with power-of-two scales (default, the recipe) or in E4M3\n"
    "                        tiles like every other Linear's (ablation)\n"
    "  --mtp-lambda X        MTP loss weight (default 0.3; 0: no MTP)\n"
    "  --balance-alpha X     sequence-wise balance loss weight (default 1e-4; 0: off)\n"
    "  --aux-alpha X         V2-style expert-level auxiliary loss weight (default 0: off)\n"
    "  --gamma X             aux-loss-free bias update speed (default 1e-3; 0: off)\n"
    "  --ema X               keep an EMA of the parameters with this decay (default 0: off)\n"
    "  --recompute           recompute the RMSNorm outputs and MLA up-projections in the\n"
    "                        backward pass instead of keeping them (less memory, SPEC §3.1)\n"
    "  --overlap-reduce on|off  --dp over whole models: reduce the gradient in buckets started\n"
    "                        during the backward, each layer's when final (nonblocking MPI), or\n"
    "                        in one blocking reduction after it (default off: faster on one\n"
    "                        machine); the same bits either way\n"
    "  --overlap-fb on|off   --pipeline dualpipe|dualpipev: run each F&B pair's forward and\n"
    "                        backward chunks at once on two threads (the rank's --threads split\n"
    "                        between them), one computing while the other waits on its MoE\n"
    "                        all-to-all (default off); the same bits either way\n"
    "  --val-every N         validation loss every N steps (default 50) over --val-windows N\n"
    "                        windows (default 32)\n"
    "  --ckpt-every N        checkpoint every N steps (default 200) and at the end; --keep K\n"
    "                        keeps the newest K (default 2)\n"
    "  --max-bad-steps K     stop after K steps in a row with a non-finite loss (default 5)\n"
    "  --time-limit T        stop with a checkpoint after T (seconds, or 90s, 10m, 2h)\n"
    "  --dump-batches F.npy  write every step's token windows [steps, accum*batch, seq_len+1]\n"
    "  -t, --threads N       worker threads (default: physical cores)\n";

double parse_duration(const std::string& s) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  const std::string unit = s.substr(used);
  const double mult = unit.empty() || unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : -1;
  DSV3_CHECK(used > 0 && mult > 0 && v >= 0 && std::isfinite(v),
             "train: --time-limit '" + s + "' is not a duration", "write e.g. 600, 90s, 10m or 2h");
  return v * mult;
}

// --config: a JSON object whose keys are the long options without dashes, '-' as '_'.
void apply_config(const std::string& path, TrainConfig& c) {
  const Json j = Json::parse(read_file(path), path);
  for (const auto& [key, v] : j.as_object(path)) {
    const std::string what = path + ": " + key;
    if (key == "data")
      c.data_dir = v.as_string(what);
    else if (key == "preset")
      c.preset = v.as_string(what);
    else if (key == "init")
      c.init_dir = v.as_string(what);
    else if (key == "steps")
      c.steps = v.as_int(what);
    else if (key == "seq_len")
      c.seq_len = v.as_int(what);
    else if (key == "batch")
      c.batch = v.as_int(what);
    else if (key == "accum")
      c.accum = v.as_int(what);
    else if (key == "dp")
      c.dp = v.as_int(what);
    else if (key == "pp")
      c.pp = v.as_int(what);
    else if (key == "pp_split")
      c.pp_split = v.as_string(what);
    else if (key == "ep")
      c.ep = v.as_int(what);
    else if (key == "ep_dispatch")
      c.ep_dispatch = v.as_string(what);
    else if (key == "node_limit")
      c.node_limit = v.as_int(what);
    else if (key == "seed")
      c.seed = static_cast<uint64_t>(v.as_int(what));
    else if (key == "lr")
      c.lr = v.as_double(what);
    else if (key == "final_lr")
      c.final_lr = v.as_double(what);
    else if (key == "warmup")
      c.warmup = v.as_int(what);
    else if (key == "decay_start")
      c.decay_start = v.as_int(what);
    else if (key == "decay_steps")
      c.decay_steps = v.as_int(what);
    else if (key == "weight_decay")
      c.weight_decay = v.as_double(what);
    else if (key == "beta1")
      c.beta1 = v.as_double(what);
    else if (key == "beta2")
      c.beta2 = v.as_double(what);
    else if (key == "eps")
      c.eps = v.as_double(what);
    else if (key == "clip")
      c.clip = v.as_double(what);
    else if (key == "moments")
      c.bf16_moments = v.as_string(what) == "bf16";
    else if (key == "precision")
      c.precision = parse_train_precision(v.as_string(what));
    else if (key == "fp8_gemms")
      c.fp8 = with_fp8_gemms(c.fp8, v.as_string(what));
    else if (key == "fp8_o_proj_cache")
      c.fp8 = with_fp8_o_proj_cache(c.fp8, v.as_string(what));
    else if (key == "mtp_lambda")
      c.loss.mtp_lambda = v.as_double(what);
    else if (key == "balance_alpha")
      c.loss.balance_alpha = v.as_double(what);
    else if (key == "aux_alpha")
      c.loss.aux_alpha = v.as_double(what);
    else if (key == "gamma")
      c.gamma = v.as_double(what);
    else if (key == "recompute")
      c.recompute = v.as_bool(what);
    else if (key == "overlap_reduce")
      c.overlap_reduce = v.as_bool(what);
    else if (key == "overlap_fb")
      c.overlap_fb = v.as_bool(what);
    else if (key == "ema")
      c.ema_decay = v.as_double(what);
    else if (key == "val_every")
      c.val_every = v.as_int(what);
    else if (key == "val_windows")
      c.val_windows = v.as_int(what);
    else if (key == "ckpt_every")
      c.ckpt_every = v.as_int(what);
    else if (key == "keep")
      c.keep_last = static_cast<int>(v.as_int(what));
    else if (key == "max_bad_steps")
      c.max_bad_steps = static_cast<int>(v.as_int(what));
    else if (key == "time_limit")
      c.time_limit_s = v.is_number() ? v.as_double(what) : parse_duration(v.as_string(what));
    else
      throw Error(what + ": unknown option", "see dsv3 train --help for the option names");
  }
}

}  // namespace

int cmd_train(Args& a) {
  if (a.help()) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  TrainConfig c;
  if (auto f = a.get({"--config"})) apply_config(*f, c);
  if (auto v = a.get({"--data"})) c.data_dir = *v;
  if (auto v = a.get({"-o", "--out"})) c.out_dir = *v;
  const auto preset = a.get({"--preset"});
  const auto init = a.get({"--init"});
  DSV3_CHECK(!(preset && init), "train: --preset and --init exclude each other");
  if (preset) c.preset = *preset, c.init_dir.clear();
  if (init) c.init_dir = *init;
  c.resume = a.flag({"--resume"});
  c.steps = a.int_or({"--steps"}, c.steps);
  c.seq_len = a.int_or({"--seq-len"}, c.seq_len);
  c.batch = a.int_or({"--batch"}, c.batch);
  c.accum = a.int_or({"--accum"}, c.accum);
  c.dp = a.int_or({"--dp"}, c.dp);
  c.pp = a.int_or({"--pp"}, c.pp);
  const PipelineSchedule pipeline = parse_schedule(a.get({"--pipeline"}).value_or("dualpipev"));
  if (auto v = a.get({"--pp-split"})) c.pp_split = *v;
  c.ep = a.int_or({"--ep"}, c.ep);
  if (auto v = a.get({"--ep-dispatch"})) c.ep_dispatch = *v;
  c.node_limit = a.int_or({"--node-limit"}, c.node_limit);
  c.seed = static_cast<uint64_t>(a.int_or({"--seed"}, static_cast<int64_t>(c.seed)));
  c.lr = a.double_or({"--lr"}, c.lr);
  c.final_lr = a.double_or({"--final-lr"}, c.final_lr);
  c.warmup = a.int_or({"--warmup"}, c.warmup);
  c.decay_start = a.int_or({"--decay-start"}, c.decay_start);
  c.decay_steps = a.int_or({"--decay-steps"}, c.decay_steps);
  c.weight_decay = a.double_or({"--weight-decay"}, c.weight_decay);
  c.beta1 = a.double_or({"--beta1"}, c.beta1);
  c.beta2 = a.double_or({"--beta2"}, c.beta2);
  c.eps = a.double_or({"--eps"}, c.eps);
  c.clip = a.double_or({"--clip"}, c.clip);
  if (auto m = a.get({"--moments"})) {
    DSV3_CHECK(*m == "bf16" || *m == "f32",
               "train: --moments must be bf16 or f32, not '" + *m + "'");
    c.bf16_moments = *m == "bf16";
  }
  if (auto p = a.get({"--precision"})) c.precision = parse_train_precision(*p);
  if (auto f = a.get({"--fp8-scaling"})) c.precision = with_fp8_scaling(c.precision, *f);
  if (auto g = a.get({"--fp8-gemms"})) c.fp8 = with_fp8_gemms(c.fp8, *g);
  if (auto o = a.get({"--fp8-o-proj-cache"})) c.fp8 = with_fp8_o_proj_cache(c.fp8, *o);
  DSV3_CHECK(is_fp8(c.precision) || fp8_gemms_name(c.fp8) == fp8_gemms_name(Fp8Recipe{}),
             "train: --fp8-gemms needs --precision fp8");
  c.loss.mtp_lambda = a.double_or({"--mtp-lambda"}, c.loss.mtp_lambda);
  c.loss.balance_alpha = a.double_or({"--balance-alpha"}, c.loss.balance_alpha);
  c.loss.aux_alpha = a.double_or({"--aux-alpha"}, c.loss.aux_alpha);
  c.gamma = a.double_or({"--gamma"}, c.gamma);
  c.ema_decay = a.double_or({"--ema"}, c.ema_decay);
  if (a.flag({"--recompute"})) c.recompute = true;
  if (auto v = a.get({"--overlap-reduce"})) {
    DSV3_CHECK(*v == "on" || *v == "off",
               "train: --overlap-reduce must be on or off, not '" + *v + "'");
    c.overlap_reduce = *v == "on";
  }
  if (auto v = a.get({"--overlap-fb"})) {
    DSV3_CHECK(*v == "on" || *v == "off",
               "train: --overlap-fb must be on or off, not '" + *v + "'");
    c.overlap_fb = *v == "on";
  }
  c.val_every = a.int_or({"--val-every"}, c.val_every);
  c.val_windows = a.int_or({"--val-windows"}, c.val_windows);
  c.ckpt_every = a.int_or({"--ckpt-every"}, c.ckpt_every);
  c.keep_last = static_cast<int>(a.int_or({"--keep"}, c.keep_last));
  c.max_bad_steps = static_cast<int>(a.int_or({"--max-bad-steps"}, c.max_bad_steps));
  if (auto t = a.get({"--time-limit"})) c.time_limit_s = parse_duration(*t);
  const auto dump = a.get({"--dump-batches"});
  c.threads = threads_arg(a);
  a.finish();
  DSV3_CHECK(!c.data_dir.empty(), "train: --data is required",
             "make one with dsv3 data prepare --tokenizer DIR --input FILE -o DATA_DIR");
  DSV3_CHECK(!c.out_dir.empty(), "train: -o RUN_DIR is required");
  DSV3_CHECK(c.loss.mtp_lambda >= 0 && c.loss.balance_alpha >= 0 && c.loss.aux_alpha >= 0,
             "train: loss weights must be >= 0");

  const int world = launcher_world_size();
  DSV3_CHECK(world == 1 || mpi_built(),
             "train: started as one of " + std::to_string(world) +
                 " MPI processes, but this dsv3 was built without MPI",
             "rebuild with scripts/build.sh -DDSV3_MPI=ON (needs libopenmpi-dev)");
  DSV3_CHECK(c.pp >= 1, "train: --pp must be >= 1");
  DSV3_CHECK(c.pp_split == "even" || c.pp_split == "cost",
             "train: --pp-split must be even or cost, not '" + c.pp_split + "'");
  // The schedule's needs (rank parity, micro-batches a pipeline) before any rank loads a model.
  if (c.pp > 1 && c.dp >= 1 && c.accum % c.dp == 0)
    pipeline_program(pipeline, static_cast<int>(c.pp), static_cast<int>(c.accum / c.dp), 0);
  DSV3_CHECK(
      world == 1 || world == c.dp * c.pp,
      "train: " + std::to_string(world) + " MPI processes but --dp " + std::to_string(c.dp) +
          " x --pp " + std::to_string(c.pp),
      "start as many processes as --dp x --pp: mpirun -np " + std::to_string(c.dp * c.pp) + " ...");
  DSV3_CHECK(!c.overlap_fb || (c.pp > 1 && pipeline != PipelineSchedule::OneFOneB),
             "train: --overlap-fb needs a pipeline with F&B pairs",
             "use it with --pp N --pipeline dualpipe or dualpipev");
  DSV3_CHECK(c.pp == 1 || world > 1, "train: --pp " + std::to_string(c.pp) + " needs MPI ranks",
             "start it as mpirun -np " + std::to_string(c.dp * c.pp) + " dsv3 train --pp " +
                 std::to_string(c.pp) + " ... (a DSV3_MPI=ON build)");

  DSV3_CHECK(
      c.ep >= 1 && c.dp % c.ep == 0,
      "train: --ep " + std::to_string(c.ep) + " does not divide --dp " + std::to_string(c.dp),
      "use an --ep that divides --dp (groups of E consecutive ranks share the experts)");
  DSV3_CHECK(c.ep_dispatch == "fp32" || c.ep_dispatch == "fp8",
             "train: --ep-dispatch must be fp32 or fp8, not '" + c.ep_dispatch + "'");
  DSV3_CHECK(c.ep == 1 || world > 1, "train: --ep " + std::to_string(c.ep) + " needs MPI ranks",
             "start mpirun -np D dsv3 train --dp D --ep E ...");

  InterruptGuard guard;
  std::vector<int32_t> dumped;
  WindowsHook hook;
  if (dump)
    hook = [&](int64_t, const std::vector<int32_t>& w) {
      dumped.insert(dumped.end(), w.begin(), w.end());
    };
  int64_t done = 0;
  bool lead = true;
  if (world == 1) {
    done = train(c, InterruptGuard::flag(), hook);
  } else {
#ifdef DSV3_MPI
    done = train_mpi(c, pipeline, InterruptGuard::flag(), hook, &lead);
#endif
  }
  if (!lead) return InterruptGuard::pending() ? 130 : 0;
  if (dump) {
    const int64_t per_step = c.accum * c.batch, row = c.seq_len + 1;
    const auto steps = static_cast<int64_t>(dumped.size()) / (per_step * row);
    write_npy_i32(*dump, dumped.data(), {steps, per_step, row});
  }
  std::fprintf(stderr, "train: stopped at step %lld of %lld; metrics in %s/metrics.jsonl\n",
               static_cast<long long>(done), static_cast<long long>(c.steps), c.out_dir.c_str());
  return InterruptGuard::pending() ? 130 : 0;
}

}  // namespace dsv3::cli

// The training loop: see trainer.h.
#include "train/trainer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>

#include "base/error.h"
#include "base/file.h"
#include "base/progress.h"
#include "base/thread_pool.h"
#include "base/timer.h"
#include "kernels/best_kernels.h"
#include "model/linear.h"
#include "model/param_store.h"
#include "model/presets.h"
#include "model/weights.h"
#include "train/arena_file.h"
#include "train/balance.h"
#include "train/checkpoint.h"
#include "train/data.h"
#include "train/ema.h"
#include "train/held_params.h"
#include "train/optimizer.h"
#include "train/schedule.h"
#include "train/zero1.h"

namespace dsv3 {

namespace fs = std::filesystem;

namespace {

constexpr const char* kRunJson = "run.json";
constexpr const char* kMetrics = "metrics.jsonl";
constexpr const char* kOptimizer = "optimizer.safetensors";
constexpr const char* kEma = "ema.safetensors";

std::string to_hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string from_hex(const std::string& hex, const std::string& what) {
  DSV3_CHECK(hex.size() % 2 == 0, what + ": not a hex string");
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    auto nib = [&](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      throw Error(what + ": not a hex string");
    };
    out += static_cast<char>(nib(hex[i]) * 16 + nib(hex[i + 1]));
  }
  return out;
}

// What a resumed run must share with the run that wrote the checkpoint.
// The FP8 recipe's memory (SPEC §3.1) against BF16, per parameter and per token: the weights as
// the GEMMs read them (E4M3 + an F32 scale per 128x128 block, against BF16) and the Linear inputs
// kept for Wgrad (E4M3 + an F32 scale per 1x128 tile; o_proj's E5M6, 12 bits; against BF16).
// Inputs shared by two Linears (gate/up, q_a/kv_a) count once; routed experts see top-k / E of
// the tokens. This CPU emulation keeps its activations in FP32 (the values are the FP8 ones), so
// the activation line of the report does not shrink.
void fp8_memory_report(const ParamStore& ps, const ModelConfig& mc) {
  double weights = 0, inputs = 0, inputs_e5m6 = 0;
  for (const Param& p : ps.all()) {
    if (!p.spec->fp8_able || p.alias || p.absent) continue;
    weights += static_cast<double>(p.numel);
    const std::string& n = p.name();
    if (n.ends_with("up_proj.weight") || n.ends_with("kv_a_proj_with_mqa.weight")) continue;
    const double share =
        n.find(".mlp.experts.") != std::string::npos && mc.n_routed_experts > 0
            ? static_cast<double>(mc.num_experts_per_tok) / static_cast<double>(mc.n_routed_experts)
            : 1.0;
    (n.ends_with("o_proj.weight") ? inputs_e5m6 : inputs) += share * p.value.cols;
  }
  const double fp8_b = 1.0 + 4.0 / 128;  // a code and its share of the tile's scale
  std::fprintf(stderr,
               "memory: FP8 recipe: %.1fM Linear weights read as FP8 %.0f MB (BF16 %.0f MB); "
               "Linear inputs kept for Wgrad %.1f KB per token in FP8/E5M6 (BF16 %.1f KB): what "
               "the recipe stores; here every Linear's but o_proj's is kept so (docs/FP8.md)\n",
               weights / 1e6, weights * fp8_b / 1e6, weights * 2 / 1e6,
               (inputs * fp8_b + inputs_e5m6 * (1.5 + 4.0 / 128)) / 1e3,
               (inputs + inputs_e5m6) * 2 / 1e3);
}

// Data parallel over whole stores (--overlap-reduce on): the gradient's reduce-scatter in buckets
// of contiguous tensors, each started as soon as the last micro-batch's backward has made them
// final (ForwardActs::grads_ready). [event + 1]: the arena ranges of event L (the MTP module, final
// norm and head), l (layer l) and -1 (the embedding, final when the backward returns).
std::vector<std::vector<std::pair<int64_t, int64_t>>> grad_buckets(const ParamStore& ps,
                                                                   int64_t n_layers) {
  std::vector<std::vector<std::pair<int64_t, int64_t>>> buckets(static_cast<size_t>(n_layers) + 2);
  std::vector<std::pair<int64_t, const Param*>> by_offset;
  for (const Param& p : ps.all())
    if (!p.alias && !p.absent) by_offset.emplace_back(p.offset, &p);
  std::sort(by_offset.begin(), by_offset.end());
  int64_t last_event = -2;
  for (const auto& [offset, p] : by_offset) {
    const ParamSpec& s = *p->spec;
    const int64_t event = s.group == ParamGroup::Mtp              ? n_layers
                          : s.layer >= 0                          ? s.layer
                          : s.name == "model.embed_tokens.weight" ? -1
                                                                  : n_layers;
    auto& list = buckets[static_cast<size_t>(event + 1)];
    if (event == last_event && list.back().second == offset)
      list.back().second += p->numel;
    else
      list.emplace_back(offset, offset + p->numel);
    last_event = event;
  }
  return buckets;
}

Json fingerprint(const TrainConfig& c, const ParamStore& ps, const TokenDataset& data) {
  Json j = Json::object();
  j["model"] = ArenaLayout::whole(ps.config()).to_json();  // whatever part this rank holds
  j["data_fingerprint"] = std::to_string(data.train_fingerprint());
  j["seq_len"] = c.seq_len;
  j["batch"] = c.batch;
  j["accum"] = c.accum;
  j["seed"] = std::to_string(c.seed);
  j["moments"] = c.bf16_moments ? "bf16" : "f32";
  return j;
}

// Keeps the lines of metrics.jsonl up to `step` (a resumed run rewrites what came after).
void truncate_metrics(const std::string& path, int64_t step) {
  if (!file_exists(path)) return;
  std::istringstream in(read_file(path));
  std::string line, kept;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const Json j = Json::parse(line, path);
    if (j.at("step").as_int(path + ": step") <= step) kept += line + "\n";
  }
  write_file_atomic(path, kept);
}

void append_line(const std::string& path, const std::string& line) {
  FILE* f = std::fopen(path.c_str(), "a");
  DSV3_CHECK(f, "train: cannot append to " + path, "check the run folder's permissions");
  const bool ok = std::fputs(line.c_str(), f) >= 0 && std::fputc('\n', f) != EOF;
  DSV3_CHECK(std::fclose(f) == 0 && ok, "train: writing " + path + " failed",
             "free disk space, then resume with --resume");
}

// A JSON number, or null for NaN / Inf (JSON has neither).
Json num(double x) {
  return std::isfinite(x) ? Json(x) : Json();
}

std::string human(double x) {
  char buf[32];
  if (x >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.2fM", x / 1e6);
  } else if (x >= 1e3) {
    std::snprintf(buf, sizeof buf, "%.1fk", x / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f", x);
  }
  return buf;
}

}  // namespace

Json TrainConfig::to_json() const {
  Json j = Json::object();
  j["init"] = init_dir;
  j["preset"] = preset;
  j["data"] = data_dir;
  j["seed"] = std::to_string(seed);
  j["seq_len"] = seq_len;
  j["batch"] = batch;
  j["accum"] = accum;
  j["steps"] = steps;
  j["lr"] = lr;
  j["final_lr"] = final_lr;
  j["warmup"] = warmup;
  j["decay_start"] = decay_start;
  j["decay_steps"] = decay_steps;
  j["beta1"] = beta1;
  j["beta2"] = beta2;
  j["eps"] = eps;
  j["weight_decay"] = weight_decay;
  j["clip"] = clip;
  j["moments"] = bf16_moments ? "bf16" : "f32";
  j["precision"] = precision_name(precision);
  if (is_fp8(precision)) {
    j["fp8_gemms"] = fp8_gemms_name(fp8);
    j["fp8_o_proj_cache"] = fp8.e5m6_o_proj ? "e5m6" : "e4m3";
  }
  j["mtp_lambda"] = loss.mtp_lambda;
  j["balance_alpha"] = loss.balance_alpha;
  j["aux_alpha"] = loss.aux_alpha;
  j["gamma"] = gamma;
  j["ema_decay"] = ema_decay;
  j["recompute"] = recompute;
  j["overlap_reduce"] = overlap_reduce;
  j["overlap_fb"] = overlap_fb;
  return j;
}

int64_t train(const TrainConfig& cfg, const std::atomic<bool>* stop, const WindowsHook& on_windows,
              DataParallelGroup* group, const ExpertParallel* ep, StepRunner* runner) {
  DSV3_CHECK(!cfg.out_dir.empty(), "train: no run folder", "pass -o RUN_DIR");
  DSV3_CHECK(!cfg.data_dir.empty(), "train: no data", "pass --data DATA_DIR (dsv3 data prepare)");
  DSV3_CHECK(cfg.seq_len >= 2 && cfg.batch >= 1 && cfg.accum >= 1 && cfg.steps >= 1,
             "train: --seq-len must be >= 2 and --batch, --accum, --steps >= 1");
  DSV3_CHECK(cfg.clip >= 0 && cfg.gamma >= 0 && cfg.ema_decay >= 0 && cfg.ema_decay < 1,
             "train: --clip and --gamma must be >= 0 and --ema in [0, 1)");
  DSV3_CHECK(cfg.dp >= 1 && cfg.accum % cfg.dp == 0,
             "train: --accum " + std::to_string(cfg.accum) + " does not split into --dp " +
                 std::to_string(cfg.dp) + " equal parts",
             "make --accum a multiple of --dp (each rank runs accum / dp micro-batches)");
  DSV3_CHECK(!group || group->size() == cfg.dp * cfg.pp,
             "train: --dp " + std::to_string(cfg.dp) + " x --pp " + std::to_string(cfg.pp) +
                 " but " + std::to_string(group ? group->size() : 0) + " processes",
             "start as many processes as --dp x --pp (mpirun -np D dsv3 train --dp D ...)");
  DSV3_CHECK((cfg.pp > 1) == (runner != nullptr), "train: --pp needs a pipeline runner");
  DSV3_CHECK(cfg.ep >= 1 && cfg.dp % cfg.ep == 0 && (cfg.ep == 1) == !ep &&
                 (!ep || (group && ep->group->size() == cfg.ep)),
             "train: --ep " + std::to_string(cfg.ep) + " needs --dp a multiple of it and " +
                 std::to_string(cfg.dp) + " MPI processes",
             "start mpirun -np D dsv3 train --dp D --ep E with E dividing D");
  // Rank 0 (or the only process) writes the run folder and prints; every rank computes.
  const bool lead = !group || group->rank() == 0;
  const std::string metrics = path_join(cfg.out_dir, kMetrics);
  const std::string run_json = path_join(cfg.out_dir, kRunJson);

  // Where to start: the last checkpoint (--resume), a model folder, or a preset's random weights.
  std::string ckpt = cfg.resume ? latest_checkpoint(cfg.out_dir) : "";
  if (!cfg.resume)
    DSV3_CHECK(!file_exists(metrics) && latest_checkpoint(cfg.out_dir).empty(),
               "train: " + cfg.out_dir + " already holds a run",
               "continue it with --resume, or pass another -o");
  if (cfg.resume && ckpt.empty())
    std::fprintf(stderr, "train: no checkpoint in %s yet; starting from step 0\n",
                 cfg.out_dir.c_str());
  make_dirs(cfg.out_dir);

  ThreadPool pool(cfg.threads);
  const Kernels& kernels = best_kernels();
  DSV3_CHECK(cfg.precision != Precision::Inference, "train: precision must be f32, bf16 or fp8");
  ComputeContext ctx{kernels, pool, cfg.precision};
  ctx.fp8 = cfg.fp8;
  // Under expert parallelism a rank reads (or draws) only its own experts.
  const std::string from = !ckpt.empty() ? ckpt : cfg.init_dir;
  const ModelConfig start =
      from.empty() ? preset_config(cfg.preset) : load_config(path_join(from, "config.json"));
  // A pipeline rank holds only its stages' tensors, an expert-parallel rank only its experts.
  ParamSlice slice = runner ? runner->slice(start, cfg) : ParamSlice{};
  if (ep) {
    const ParamSlice experts = expert_slice(start, cfg.ep, ep->group->rank());
    slice.expert_first = experts.expert_first;
    slice.expert_count = experts.expert_count;
  }
  ModelWeights weights = !from.empty() ? ModelWeights::load(from, slice)
                                       : ModelWeights::random(start, cfg.seed, DType::F32, slice);
  DSV3_CHECK(cfg.node_limit == 0 || cfg.ep > 1, "train: --node-limit needs --ep",
             "node-limited routing spreads a token's experts over at most M expert-parallel ranks");
  if (cfg.node_limit > 0) weights.limit_routing_to_nodes(cfg.ep, cfg.node_limit);
  std::unique_ptr<Model> model = make_model(weights, ctx);
  if (ep) model->set_dispatcher(ep->dispatcher);
  ParamStore& ps = model->params();
  ps.enable_training();
  const ModelConfig& mc = model->config();

  TokenDataset data(cfg.data_dir, mc.vocab_size, true);
  BatchSampler sampler(data, cfg.seq_len, cfg.seed);
  const Json fp = fingerprint(cfg, ps, data);

  AdamWConfig oc;
  oc.lr = cfg.lr;
  oc.beta1 = cfg.beta1;
  oc.beta2 = cfg.beta2;
  oc.eps = cfg.eps;
  oc.weight_decay = cfg.weight_decay;
  oc.bf16_moments = cfg.bf16_moments;
  // One process keeps the whole AdamW state; a data-parallel group shards it (ZeRO-1).
  std::unique_ptr<AdamW> opt;
  std::unique_ptr<Zero1AdamW> zopt;
  // A slice of the model (stages, experts): ZeRO-1 over the ranks holding the same tensors, the
  // routed experts over those holding the same ones ([the rest | this rank's experts]).
  std::unique_ptr<HeldParamsAdamW> hopt;
  if (ep || runner) {
    DataParallelGroup& holders = runner ? runner->holders() : *group;
    // A tensor's owner is the first of its holders (the runner's rule for its stages).
    const auto owns = [&, ep, runner](const std::string& t) {
      if (ep && ps.get(t).spec->expert >= 0) return ep->replicas->rank() == 0;
      return runner ? runner->owns(t) : group->rank() == 0;
    };
    hopt = std::make_unique<HeldParamsAdamW>(ps, oc, *group, holders, owns,
                                             ep ? ep->replicas : nullptr);
  } else if (group)
    zopt = std::make_unique<Zero1AdamW>(ArenaLayout::of(ps), oc, *group);
  else
    opt = std::make_unique<AdamW>(ps, oc);
  LrSchedule sched;
  sched.peak_lr = cfg.lr;
  sched.final_lr = cfg.final_lr;
  sched.warmup_steps = cfg.warmup;
  // Without --decay-start the rate stays at the peak: a default that depended on --steps would
  // change the schedule of a run continued with a larger --steps.
  sched.decay_start =
      cfg.decay_start >= 0 ? cfg.decay_start : std::numeric_limits<int64_t>::max() / 4;
  sched.decay_steps = cfg.decay_start >= 0 ? std::max<int64_t>(cfg.decay_steps, 0) : 0;
  validate(sched);
  std::unique_ptr<ParamEma> ema;
  if (cfg.ema_decay > 0) ema = std::make_unique<ParamEma>(ps, cfg.ema_decay);

  int64_t step = 0;
  if (!ckpt.empty()) {
    const CheckpointState st(ckpt);
    const Json saved = Json::parse(read_file(run_json), run_json);
    for (const char* key :
         {"model", "data_fingerprint", "seq_len", "batch", "accum", "seed", "moments"})
      DSV3_CHECK(saved.at("fingerprint").at(key).dump() == fp.at(key).dump(),
                 "train: --resume into " + cfg.out_dir + " with another " + key +
                     " than the run that wrote it",
                 "resume with the same model, data and batch settings, or pass another -o");
    if (hopt) {
      hopt->load(path_join(ckpt, kOptimizer));
    } else if (zopt) {
      zopt->load(path_join(ckpt, kOptimizer));
    } else {
      opt->load(path_join(ckpt, kOptimizer));
      opt->check(ps);
    }
    if (ema) {
      DSV3_CHECK(file_exists(path_join(ckpt, kEma)),
                 "train: --ema is set but " + ckpt + " has no " + kEma,
                 "resume with the settings of the run");
      ema->load(path_join(ckpt, kEma));
    }
    sampler.restore(from_hex(st.meta().at("sampler").as_string("sampler"), ckpt + ": sampler"));
    step = st.step();
    if (lead) {
      truncate_metrics(metrics, step);
      std::fprintf(stderr, "train: resuming %s from step %lld\n", cfg.out_dir.c_str(),
                   static_cast<long long>(step));
    }
  } else if (lead) {
    Json run = Json::object();
    run["config"] = cfg.to_json();
    run["fingerprint"] = fp;
    write_file_atomic(run_json, run.dump(2) + "\n");
  }

  ForwardBackward fb(*model, ctx);
  fb.set_recompute(cfg.recompute);
  if (runner) runner->attach(*model, ctx, cfg);
  // The memory report: the per-parameter state now, the activations after the first step.
  const auto n_params = static_cast<double>(ps.arena_numel());
  const double moment_bytes = cfg.bf16_moments ? 2 : 4;
  if (lead)
    std::fprintf(stderr,
                 "memory: %.1fM parameters x (4 B FP32 master + 4 B FP32 gradient + 2 x %.0f B %s "
                 "AdamW moments%s) = %.0f MB\n",
                 n_params / 1e6, moment_bytes, cfg.bf16_moments ? "BF16" : "FP32",
                 ema ? " + 4 B EMA" : "", n_params * (8 + 2 * moment_bytes + (ema ? 4 : 0)) / 1e6);
  if (lead && ep && !runner) {  // what this rank keeps under --ep (ZeRO-1: moments too)
    const auto whole = static_cast<double>(ArenaLayout::whole(mc).numel),
               moments = static_cast<double>(hopt->shard_numel());
    std::fprintf(stderr,
                 "memory: --ep %lld: rank 0 holds %.2fM of the %.2fM parameters (routed experts "
                 "%lld of %lld a layer) and AdamW moments of %.2fM (its ZeRO-1 shards): %.0f MB, "
                 "against %.0f MB for the whole model in one process\n",
                 static_cast<long long>(cfg.ep), n_params / 1e6, whole / 1e6,
                 static_cast<long long>(slice.expert_count),
                 static_cast<long long>(mc.n_routed_experts), moments / 1e6,
                 (n_params * 8 + moments * 2 * moment_bytes) / 1e6,
                 whole * (8 + 2 * moment_bytes) / 1e6);
  }
  if (runner) {  // every pipeline rank: what it keeps of the whole model (its stages)
    std::string what;
    for (const ParamSlice::Layers& l : slice.layers)
      what += (what.empty() ? "layers " : ", ") + std::to_string(l.begin) + "-" +
              std::to_string(l.end - 1);
    if (slice.embedding) what += ", the embedding";
    if (slice.head) what += ", the final norm, head and MTP module";
    if (ep)
      what += " (routed experts " + std::to_string(slice.expert_count) + " of " +
              std::to_string(mc.n_routed_experts) + " a layer)";
    const auto whole = static_cast<double>(ArenaLayout::whole(mc).numel),
               moments = static_cast<double>(hopt->shard_numel());
    std::fprintf(stderr,
                 "memory: --pp %lld: rank %d holds %s: %.2fM of the %.2fM parameters and AdamW "
                 "moments of %.2fM (its ZeRO-1 shard; %d rank(s) hold these stages): %.0f MB, "
                 "against %.0f MB "
                 "for the whole model in one process\n",
                 static_cast<long long>(cfg.pp), group->rank(), what.c_str(), n_params / 1e6,
                 whole / 1e6, moments / 1e6, runner->holders().size(),
                 (n_params * 8 + moments * 2 * moment_bytes) / 1e6,
                 whole * (8 + 2 * moment_bytes) / 1e6);
  }
  if (lead && is_fp8(cfg.precision)) fp8_memory_report(ps, mc);
  const uint64_t rss_before_step = peak_rss_bytes();
  std::vector<int32_t> windows;
  std::vector<std::vector<int64_t>> load;
  const int64_t tokens_per_step = cfg.accum * cfg.batch * cfg.seq_len;
  // The tokenizer files of the data's tokenizer, so a checkpoint generates text as it is.
  const std::string tok_dir = fs::is_directory(data.tokenizer_path())
                                  ? data.tokenizer_path()
                                  : fs::path(data.tokenizer_path()).parent_path().string();
  const std::vector<std::string> copy_files = {path_join(tok_dir, "tokenizer.json"),
                                               path_join(tok_dir, "tokenizer_config.json")};

  // A job writes one folder together, each rank its part in place, none gathering the state:
  // the model tensors it owns (a data-parallel rank: those starting in its ZeRO-1 shard) and its
  // ZeRO-1 shards of the moments and the EMA.
  std::optional<CheckpointJob> job;
  if (group)
    job.emplace(CheckpointJob{*group, [&](const Param& p) {
                                const std::string& t =
                                    p.spec->copy_of.empty() ? p.name() : p.spec->copy_of;
                                if (hopt) return hopt->owns(t);
                                const int64_t at = ps.get(t).offset;
                                return at >= zopt->begin() && at < zopt->end();
                              }});
  const auto write_state = [&](const std::string& d, CheckpointPart part) -> uint64_t {
    const std::string opt_path = path_join(d, kOptimizer), ema_path = path_join(d, kEma);
    if (part == CheckpointPart::kWhole) {
      opt->save(opt_path);
      if (ema) ema->save(ema_path);  // what --resume with --ema reads back
      return 0;
    }
    if (part == CheckpointPart::kLayout) {
      const ArenaLayout whole = ArenaLayout::whole(mc);
      save_adamw_layout(whole, oc, hopt ? hopt->steps() : zopt->steps(), opt_path);
      if (ema) ema->save_layout(ema_path, whole);
      return 0;
    }
    ArenaFileWriter moments(opt_path);
    if (hopt)
      hopt->save_shard(moments);
    else
      zopt->save_shard(moments);
    uint64_t written = moments.close();
    if (!ema) return written;
    ArenaFileWriter averaged(ema_path);
    if (hopt)
      hopt->write_shard(averaged, "ema", ema->values());
    else
      zopt->write_shard(averaged, "ema", ema->values());
    return written + averaged.close();
  };
  auto checkpoint = [&](int64_t s) {
    Json meta = Json::object();
    meta["sampler"] = to_hex(sampler.state());
    return write_checkpoint(cfg.out_dir, s, ps, meta, copy_files, write_state, cfg.keep_last,
                            job ? &*job : nullptr);
  };
  auto validate_loss = [&]() {
    ValWindows val(data.val(), cfg.seq_len, cfg.val_windows);
    double sum = 0;
    int64_t n = 0;
    for (int64_t first = 0; first < val.count(); first += cfg.batch) {
      const int64_t b = std::min(cfg.batch, val.count() - first);
      val.get(first, b, windows);
      LossWeights lw;
      lw.mtp_lambda = 0;
      const double ce = runner ? runner->evaluate_ce(windows.data(), b, cfg.seq_len)
                               : fb.evaluate(windows.data(), b, cfg.seq_len, lw).ce;
      sum += ce * static_cast<double>(b);
      n += b;
    }
    return n > 0 ? sum / static_cast<double>(n) : NAN;
  };

  const int64_t n_layers = mc.num_hidden_layers;
  const std::vector<std::vector<std::pair<int64_t, int64_t>>> buckets =
      zopt && cfg.overlap_reduce ? grad_buckets(ps, n_layers)
                                 : std::vector<std::vector<std::pair<int64_t, int64_t>>>();
  // Starts the buckets of an event, once each (every rank in the same order).
  std::vector<bool> bucket_started;
  const auto start_buckets = [&](int64_t event) {
    if (bucket_started[static_cast<size_t>(event + 1)]) return;
    bucket_started[static_cast<size_t>(event + 1)] = true;
    for (const auto& [lo, hi] : buckets[static_cast<size_t>(event + 1)])
      group->start_sum(ps.grads(), zopt->bounds(), lo, hi);
  };

  const int64_t first_step = step + 1;
  // The micro-batches of part p are [p·per_part, (p+1)·per_part); this process runs parts
  // [part0, part1): its rank's one, or all of them without a group.
  const int64_t per_part = cfg.accum / cfg.dp;
  const int64_t part0 = group ? group->rank() : 0, part1 = group ? part0 + 1 : cfg.dp;
  std::vector<float> parts_sum;  // earlier parts' gradient sum, when one process runs several
  std::vector<std::vector<int32_t>> step_windows;  // a step's micro-batches, for a runner
  std::vector<int64_t> flat_load;
  ProgressBar bar("train", static_cast<uint64_t>(cfg.steps), "steps");
  bar.set(static_cast<uint64_t>(step));
  Timer run_timer;
  int bad = 0;
  std::string last_ckpt = ckpt;
  while (step < cfg.steps) {
    ++step;
    Timer t;
    ps.zero_grads();
    // The loss parts of the step: each part's sum over its micro-batches, the parts added in
    // order (the order a group's reduction uses).
    double sum[5] = {0, 0, 0, 0, 0}, part_sum[5] = {0, 0, 0, 0, 0};
    const auto a = static_cast<double>(cfg.accum);
    // A runner takes the whole step's micro-batches at once; otherwise the loop runs them.
    if (runner) {
      step_windows.resize(static_cast<size_t>(cfg.accum));
      for (auto& w : step_windows) {
        sampler.next(cfg.batch, w);
        if (on_windows) on_windows(step, w);
      }
      runner->run(step_windows, sum, load);
    }
    const int64_t own = runner ? 0 : cfg.accum;
    for (int64_t m = 0; m < own; ++m) {
      // Every rank draws the whole global batch (the sampler's state stays the same everywhere).
      sampler.next(cfg.batch, windows);
      if (on_windows) on_windows(step, windows);
      const int64_t part = m / per_part;
      if (part < part0 || part >= part1) continue;
      // The rank's last micro-batch starts the reduction as its backward goes; every bucket not
      // started by then (a skipped backward) starts after it, in the same order on every rank.
      const bool overlap = !buckets.empty() && m == part1 * per_part - 1;
      if (overlap) {
        bucket_started.assign(buckets.size(), false);
        fb.set_grads_ready(start_buckets);
      }
      const LossParts p =
          fb.run(windows.data(), cfg.batch, cfg.seq_len, cfg.loss, 1.0 / static_cast<double>(a));
      if (overlap) {
        fb.set_grads_ready(nullptr);
        for (int64_t e = n_layers; e >= -1; --e) start_buckets(e);
      }
      const double parts[5] = {p.total, p.ce, p.mtp, p.balance, p.aux};
      for (int k = 0; k < 5; ++k) part_sum[k] += parts[k] / a;
      const auto& l = fb.expert_load();
      if (m == part0 * per_part) {
        load = l;
      } else {
        for (size_t i = 0; i < l.size(); ++i)
          for (size_t e = 0; e < l[i].size(); ++e) load[i][e] += l[i][e];
      }
      if ((m + 1) % per_part != 0) continue;
      // The part is done: fold its loss and (when this process runs more parts) its gradient.
      for (int k = 0; k < 5; ++k) sum[k] += part_sum[k], part_sum[k] = 0;
      if (part1 - part0 == 1) continue;
      const std::span<float> g = ps.grads();
      if (part == part0)
        parts_sum.assign(g.begin(), g.end());
      else
        for (size_t i = 0; i < g.size(); ++i) parts_sum[i] += g[i];
      if (part + 1 < part1)
        ps.zero_grads();
      else
        std::copy(parts_sum.begin(), parts_sum.end(), g.begin());
    }
    if (group) {
      // ZeRO-1's shards double as the reduce-scatter's: rank r sums its shard, then all gather.
      if (hopt)
        hopt->reduce(ps.grads());
      else if (!buckets.empty())
        group->finish_sum(ps.grads(), zopt->bounds());
      else
        group->sum_in_rank_order(ps.grads(), zopt->bounds());
      group->sum_in_rank_order(std::span<double>(sum, 5));
      flat_load.clear();
      for (const auto& l : load) flat_load.insert(flat_load.end(), l.begin(), l.end());
      group->sum(flat_load);
      size_t at = 0;
      for (auto& l : load)
        for (int64_t& x : l) x = flat_load[at++];
    }
    const LossParts total{sum[0], sum[1], sum[2], sum[3], sum[4]};
    const double norm = hopt           ? hopt->clip(ps.grads(), cfg.clip, &pool)
                        : cfg.clip > 0 ? clip_grads(ps, cfg.clip, &pool)
                                       : global_grad_norm(ps, &pool);
    const double lr = lr_at(sched, step);
    Json line = Json::object();
    line["step"] = step;
    if (!std::isfinite(total.total) || !std::isfinite(norm)) {
      ++bad;
      line["skipped"] = true;
      line["loss"] = num(total.total);
      line["grad_norm"] = num(norm);
      if (lead) append_line(metrics, line.dump());
      if (lead)
        std::fprintf(stderr, "\ntrain: step %lld has a non-finite loss or gradient; skipped\n",
                     static_cast<long long>(step));
      DSV3_CHECK(bad < cfg.max_bad_steps,
                 "train: " + std::to_string(bad) +
                     " steps in a row had a non-finite loss or gradient (last: step " +
                     std::to_string(step) + ")",
                 "lower --lr or raise --warmup; the last good checkpoint is " +
                     (last_ckpt.empty() ? std::string("none (no checkpoint yet)") : last_ckpt));
      continue;
    }
    bad = 0;
    if (hopt)
      hopt->step(ps.master(), ps.grads(), lr, &pool);
    else if (zopt)
      zopt->step(ps.master(), ps.grads(), lr, &pool);
    else
      opt->step(ps, lr, &pool);
    if (ema) ema->update(ps, &pool);
    // The aux-loss-free rule over the whole step's load (SPEC §2); the MTP layer's gate too.
    Json maxvio = Json::array();
    for (size_t i = 0; i < load.size(); ++i) {
      if (load[i].empty()) continue;
      const int64_t layer = static_cast<int64_t>(i);
      const std::string name =
          "model.layers." + std::to_string(layer) + ".mlp.gate.e_score_correction_bias";
      if (cfg.gamma > 0 && ps.has(name) && !ps.get(name).absent)  // another stage's: its rank's
        update_balance_bias(ps.get(name).f32, load[i].data(), static_cast<int64_t>(load[i].size()),
                            cfg.gamma);
      maxvio.push_back(max_violation(load[i].data(), static_cast<int64_t>(load[i].size())));
    }
    const double secs = t.seconds();
    if (step == first_step && lead) {
      const double act = static_cast<double>(peak_rss_bytes() - rss_before_step);
      std::fprintf(stderr,
                   "memory: activations and scratch of a %lld-token micro-batch %.0f MB (%.1f KB "
                   "per token); peak RSS %.0f MB\n",
                   static_cast<long long>(cfg.batch * cfg.seq_len), act / 1e6,
                   act / 1e3 / static_cast<double>(cfg.batch * cfg.seq_len),
                   static_cast<double>(peak_rss_bytes()) / 1e6);
    }
    line["loss"] = total.total;
    line["ce"] = total.ce;
    line["mtp_loss"] = total.mtp;
    line["balance_loss"] = total.balance;
    if (cfg.loss.aux_alpha > 0) line["aux_loss"] = total.aux;
    line["lr"] = lr;
    line["grad_norm"] = norm;
    line["tokens_per_s"] = static_cast<double>(tokens_per_step) / secs;
    line["maxvio"] = maxvio;
    const bool last = step == cfg.steps;
    bool stopping =
        (stop && stop->load()) || (cfg.time_limit_s > 0 && run_timer.seconds() >= cfg.time_limit_s);
    if (group) {  // any rank's Ctrl-C or time limit stops them all after the same step
      int64_t flag = stopping ? 1 : 0;
      group->sum(std::span<int64_t>(&flag, 1));
      stopping = flag > 0;
    }
    // Under expert parallelism every rank validates (the MoE layers' all-to-all needs its group),
    // in a pipeline every rank its stages.
    if ((lead || ep || runner) &&
        ((cfg.val_every > 0 && step % cfg.val_every == 0) || last || stopping))
      line["val_loss"] = num(validate_loss());
    if (lead) append_line(metrics, line.dump());
    const double eta = secs * static_cast<double>(cfg.steps - step);
    char suffix[160];
    std::snprintf(suffix, sizeof suffix, "loss %.4f | %s tok/s | ETA %.0fs", total.ce,
                  human(static_cast<double>(tokens_per_step) / secs).c_str(), eta);
    bar.set_suffix(suffix);
    bar.set(static_cast<uint64_t>(step));
    if ((cfg.ckpt_every > 0 && step % cfg.ckpt_every == 0) || last || stopping)
      last_ckpt = checkpoint(step);
    if (stopping) break;
  }
  bar.finish();
  if (lead)
    std::fprintf(stderr, "train: peak RSS %.0f MB\n", static_cast<double>(peak_rss_bytes()) / 1e6);
  return step;
}

}  // namespace dsv3

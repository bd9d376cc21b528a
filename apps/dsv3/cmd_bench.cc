// dsv3 bench: prompt processing (pp) and generation (tg) speed, as llama-bench measures them.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "apps/dsv3/commands.h"
#include "apps/dsv3/inference.h"
#include "base/error.h"
#include "base/json.h"
#include "base/rng.h"
#include "base/strings.h"
#include "base/timer.h"
#include "kernels/machine_peaks.h"
#include "model/activations.h"
#include "model/batch.h"
#include "model/param_table.h"
#include "runtime/generate.h"
#include "runtime/kv_cache.h"
#include "runtime/sampler.h"
#include "runtime/speculative_mtp.h"

namespace dsv3::cli {
namespace {

const char kUsage[] =
    "usage: dsv3 bench -m DIR [-p 512] [-n 128] [-b 1[,4,16]] [-r 5] [-t THREADS] [--memory]\n"
    "                  [--json] [--speculative mtp [--draft N] [--temp T]]\n"
    "       dsv3 bench --memory [-t THREADS] [--json]\n\n"
    "Measures the model in DIR as llama-bench does, on random token ids from an empty cache:\n"
    "  pp<P>  prompt processing: P tokens prefilled (in chunks of 256, as dsv3 generate does),\n"
    "         logits of the last position only;\n"
    "  tg<N>  text generation: N forward passes of one token each, with logits; with -b B,\n"
    "         B sequences decode together (one batched forward of B rows per step, each row\n"
    "         on its own cache), t/s counting every sequence's tokens, and per sequence;\n"
    "  tg<N>+mtp<D>  with --speculative mtp: N tokens generated from a 16-token random prompt\n"
    "         (greedy, or sampled at --temp T), the MTP module drafting D tokens per step\n"
    "         and the model verifying them in one pass (runtime/speculative_mtp.h); the\n"
    "         table adds the acceptance rate and the tokens per verification pass.\n"
    "Each test runs R times after one untimed warm-up; the table shows tokens/s as mean ± sample\n"
    "standard deviation, with the model's size (bytes of weights), parameters and threads.\n\n"
    "With --memory it first measures the machine's roofline (a few seconds): read bandwidth\n"
    "from memory on 1 and THREADS threads (a buffer of 4x the last-level cache, at least\n"
    "1 GiB) and the peak rate of FP32 FMA, BF16 dot products, AMX BF16 tiles, INT8 VNNI and\n"
    "AMX INT8 tiles (register-only loops, THREADS threads). Each test then also shows the\n"
    "fraction of the roofline it reached: tg, bytes of active weights read per token (routed\n"
    "experts k of E, no embedding lookup) x tokens/s per sequence / bandwidth on THREADS\n"
    "threads; pp, matmul FLOPs per prompt token (2 x active matrix parameters, the LM head once\n"
    "per prompt) x tokens/s / the peak of the path the model's weight dtype takes (BF16:\n"
    "AMX tiles where present, else BF16 dot products; F32: FP32 FMA). Without -m only the\n"
    "roofline is printed.\n\n"
    "  -m, --model DIR      Hugging Face model folder\n"
    "  -p, --n-prompt P     prompt tokens (0 skips pp; default 512)\n"
    "  -n, --n-gen N        generated tokens (0 skips tg; default 128)\n"
    "  -b, --batch B,...    sequences decoded together in tg, one test per value (default 1)\n"
    "  -r, --repetitions R  runs of each test (default 5)\n"
    "  -t, --threads N      worker threads (default: physical cores)\n"
    "  --speculative mtp    also run tg<N>+mtp<D> (DeepSeek-V3 models with an MTP module)\n"
    "  --draft D            drafts per step, 1 .. 16 (default 1)\n"
    "  --temp T             temperature of the speculative test (default 0: greedy)\n"
    "  --memory             measure the roofline and print the fractions (see above)\n"
    "  --memory-mib M       the bandwidth probe's buffer in MiB (default: 4x the last-level\n"
    "                       cache, 1024 .. 4096); smaller than the caches it measures them\n"
    "  --json               one JSON document on stdout instead of the table (schema:\n"
    "                       docs/BENCH_JSON.md)\n";

struct TestResult {
  std::string name;
  int64_t n_prompt = 0, n_gen = 0, n_batch = 1;
  std::vector<double> seconds;
  int64_t draft = 0;      // tg+mtp: drafts per step
  SpeculativeStats spec;  // tg+mtp: summed over the timed runs

  int64_t tokens() const { return (n_prompt + n_gen) * n_batch; }
  std::vector<double> rates() const {
    std::vector<double> r;
    for (double s : seconds) r.push_back(tokens() / s);
    return r;
  }
};

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}

// Sample standard deviation (n - 1), 0 for a single sample, as llama-bench.
double stddev(const std::vector<double>& v) {
  if (v.size() < 2) return 0;
  double m = mean(v), s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size() - 1));
}

std::vector<int32_t> random_ids(int64_t n, int64_t vocab, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> ids(n);
  for (auto& id : ids) id = static_cast<int32_t>(rng.below(static_cast<uint64_t>(vocab)));
  return ids;
}

// Seconds for one pp run: ids prefilled into an empty cache.
double run_pp(InferenceModel& m, const std::vector<int32_t>& ids, std::vector<float>& logits) {
  KvCache cache(m.model().cache_layout(), DType::F32);
  Timer t;
  prefill_chunked(m.model(), cache, ids, logits.data());
  return t.seconds();
}

// Seconds for one tg run: B sequences from empty caches, each step one batch of their next ids.
double run_tg(InferenceModel& m, const std::vector<std::vector<int32_t>>& ids,
              std::vector<float>& logits) {
  const auto B = static_cast<int64_t>(ids.size());
  std::vector<KvCache> caches(B, KvCache(m.model().cache_layout(), DType::F32));
  logits.resize(B * m.config().vocab_size);
  ForwardActs acts;
  Batch batch;
  Timer t;
  for (size_t step = 0; step < ids[0].size(); ++step) {
    batch.clear();
    for (int64_t b = 0; b < B; ++b) batch.add(&caches[b], {&ids[b][step], 1}, LogitsRows::Last);
    m.model().forward(batch, acts, logits.data());
  }
  return t.seconds();
}

// Seconds for one tg+mtp run: a random prompt prefilled (untimed), then n tokens generated by
// speculative steps, as a server slot would drive them.
double run_tg_mtp(InferenceModel& m, int64_t n, int64_t draft, double temp, uint64_t seed,
                  SpeculativeStats& stats) {
  Model& model = m.model();
  const int64_t vocab = m.config().vocab_size;
  KvCache cache(model.cache_layout(), DType::F32);
  MtpSpeculator spec(model, draft, DType::F32, vocab, seed);
  SamplingParams sp;
  sp.temperature = temp;
  sp.seed = seed;
  Sampler sampler(sp);
  const std::vector<int32_t> prompt = random_ids(16, vocab, seed);
  std::vector<float> logits(vocab), hidden(prompt.size() * m.config().hidden_size);
  prefill_chunked(model, cache, prompt, logits.data(), nullptr, hidden.data());
  spec.observe(hidden.data(), prompt);
  sampler.add_context(prompt);
  int32_t last = sampler.sample(logits);
  sampler.accept(last);
  int64_t made = 1;
  const SpeculativeStats before = spec.stats();
  Timer t;
  while (made < n + 1)  // n tokens after the first, as tg<N> makes n
    made += spec.step(cache, last, sampler, n + 1 - made, [&](int32_t id) {
      last = id;
      return true;
    });
  const double s = t.seconds();
  stats += spec.stats().since(before);
  return s;
}

std::vector<std::vector<int32_t>> random_batch(int64_t B, int64_t n, int64_t vocab, uint64_t seed) {
  std::vector<std::vector<int32_t>> ids;
  for (int64_t b = 0; b < B; ++b) ids.push_back(random_ids(n, vocab, seed * 1000 + b));
  return ids;
}

// The roofline's numerators for one model (the help text): what a token costs it.
struct TokenCost {
  double decode_bytes = 0;   // weight bytes one decode step reads per sequence
  double prefill_flops = 0;  // matmul FLOPs per prompt token, LM head apart
  double head_flops = 0;     // the LM head's, computed once per prompt (the last position)
  DType dtype = DType::F32;  // the storage dtype of most matrix bytes: which peak prefill meets
};

TokenCost token_cost(const InferenceModel& m) {
  const ModelConfig& c = m.config();
  TokenCost t;
  std::map<DType, double> by_dtype;
  for (const ParamSpec& p : param_table(c)) {
    if (p.group != ParamGroup::Main) continue;
    const WeightView& v = m.weights().get(p.name);
    const auto n = static_cast<double>(v.numel());
    const auto bytes = static_cast<double>(v.stored_bytes());  // block formats: with scales
    const bool embed = p.name == "model.embed_tokens.weight";
    const bool head = p.name == "lm_head.weight" || (embed && c.tie_word_embeddings);
    if (embed && !head) continue;  // a lookup reads one row
    const double share = p.expert >= 0 ? static_cast<double>(c.num_experts_per_tok) /
                                             static_cast<double>(c.n_routed_experts)
                                       : 1.0;
    t.decode_bytes += bytes * share;
    if (v.shape.size() != 2) continue;
    (head ? t.head_flops : t.prefill_flops) += 2 * n * share;
    by_dtype[v.quant ? DType::I8 : v.dtype] += bytes * share;  // I8: every integer block format
  }
  double most = -1;
  for (const auto& [d, b] : by_dtype)
    if (b > most) most = b, t.dtype = d;
  return t;
}

// The peak prefill's matmuls are held to, GFLOP/s: FP32 weights run FP32 FMAs; 16-bit and FP8
// weights against the machine's BF16 peak (what the 70 % target means by "peak"); the
// integer block formats (I8 here) against its INT8 peak, AMX tiles where present.
double prefill_peak(const MachinePeaks& p, DType d) {
  if (d == DType::I8) return std::max(p.int8_vnni, p.amx_int8);
  return d == DType::F32 ? p.f32_fma : p.bf16_peak();
}

const char* prefill_peak_name(const MachinePeaks& p, DType d) {
  if (d == DType::I8) return p.amx_int8 > p.int8_vnni ? "amx-int8" : "avx512-vnni";
  return d == DType::F32 ? "avx512-f32" : nullptr;
}

// Fraction of the roofline one test reached (0 when not measured).
double roofline_fraction(const TestResult& r, const TokenCost& cost, const MachinePeaks& p) {
  const double rate = mean(r.rates()) / static_cast<double>(r.n_batch);  // per sequence
  if (r.n_gen > 0) return p.read_gbs_n > 0 ? cost.decode_bytes * rate / (p.read_gbs_n * 1e9) : 0;
  const double flops =
      cost.prefill_flops + cost.head_flops / static_cast<double>(std::max<int64_t>(1, r.n_prompt));
  const double peak = prefill_peak(p, cost.dtype);
  return peak > 0 ? flops * rate / (peak * 1e9) : 0;
}

Json roofline_json(const MachinePeaks& p) {
  Json j = Json::object();
  j["threads"] = p.threads;
  j["buffer_bytes"] = static_cast<int64_t>(p.buffer_bytes);
  j["read_gbs_1"] = p.read_gbs_1;
  j["read_gbs_n"] = p.read_gbs_n;
  j["f32_fma_gflops"] = p.f32_fma;
  j["bf16_dot_gflops"] = p.bf16_dot;
  j["amx_bf16_gflops"] = p.amx_bf16;
  j["int8_vnni_gops"] = p.int8_vnni;
  j["amx_int8_gops"] = p.amx_int8;
  j["bf16_path"] = p.bf16_path();
  return j;
}

void print_roofline(const MachinePeaks& p) {
  std::printf(
      "roofline (%d threads): read %.1f GB/s (1 thread %.1f; %s buffer) | FP32 FMA %.0f GFLOP/s | "
      "BF16 dot %.0f | AMX BF16 %.0f | INT8 VNNI %.0f GOP/s | AMX INT8 %.0f\n",
      p.threads, p.read_gbs_n, p.read_gbs_1, human_bytes(p.buffer_bytes).c_str(), p.f32_fma,
      p.bf16_dot, p.amx_bf16, p.int8_vnni, p.amx_int8);
}

Json to_json(const InferenceModel& m, int threads, int64_t reps,
             const std::vector<TestResult>& results, const MachinePeaks* peaks) {
  Json doc = Json::object();
  doc["schema"] = "dsv3-bench/1";
  Json model = Json::object();
  model["path"] = m.dir();
  model["model_type"] = m.config().model_type;
  model["size_bytes"] = static_cast<int64_t>(m.weight_bytes());
  model["n_params"] = static_cast<int64_t>(m.parameters());  // parameter_summary's figure
  model["n_params_mtp"] = static_cast<int64_t>(m.mtp_parameters());
  model["n_layers"] = m.config().num_hidden_layers;
  model["vocab_size"] = m.config().vocab_size;
  doc["model"] = std::move(model);
  doc["n_threads"] = threads;
  doc["repetitions"] = reps;
  doc["kernels"] = m.kernels().name;
  const TokenCost cost = token_cost(m);
  if (peaks != nullptr) {
    doc["roofline"] = roofline_json(*peaks);
    doc["decode_bytes_per_token"] = cost.decode_bytes;
    doc["prefill_flops_per_token"] = cost.prefill_flops;
    doc["head_flops"] = cost.head_flops;
  }
  Json tests = Json::array();
  for (const auto& r : results) {
    Json t = Json::object();
    t["test"] = r.name;
    t["n_prompt"] = r.n_prompt;
    t["n_gen"] = r.n_gen;
    t["n_batch"] = r.n_batch;
    Json secs = Json::array(), rates = Json::array();
    for (double s : r.seconds) secs.push_back(s);
    for (double x : r.rates()) rates.push_back(x);
    t["samples_s"] = std::move(secs);
    t["samples_ts"] = std::move(rates);
    t["avg_ts"] = mean(r.rates());
    t["stddev_ts"] = stddev(r.rates());
    t["avg_ts_per_seq"] = mean(r.rates()) / static_cast<double>(r.n_batch);
    if (r.draft > 0) {
      Json sp = Json::object();
      sp["method"] = "mtp";
      sp["draft"] = r.draft;
      sp["steps"] = r.spec.steps;
      sp["drafted"] = r.spec.drafted;
      sp["accepted"] = r.spec.accepted;
      sp["acceptance_rate"] = r.spec.acceptance_rate();
      sp["tokens_per_step"] = r.spec.tokens_per_step();
      sp["draft_s"] = r.spec.draft_s;
      sp["verify_s"] = r.spec.verify_s;
      t["speculative"] = std::move(sp);
    }
    if (peaks != nullptr) t["roofline_fraction"] = roofline_fraction(r, cost, *peaks);
    tests.push_back(std::move(t));
  }
  doc["results"] = std::move(tests);
  doc["load_seconds"] = m.load_seconds();
  doc["peak_rss_bytes"] = static_cast<int64_t>(peak_rss_bytes());
  return doc;
}

void print_table(const InferenceModel& m, int threads, const std::vector<TestResult>& results,
                 const MachinePeaks* peaks) {
  const TokenCost cost = token_cost(m);
  if (peaks != nullptr) print_roofline(*peaks);
  std::printf(
      "| model | size | params | kernels | threads | test | batch | t/s | t/s per seq |%s\n",
      peaks != nullptr ? " roofline |" : "");
  std::printf("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |%s\n",
              peaks != nullptr ? " ---: |" : "");
  for (const auto& r : results) {
    auto rates = r.rates();
    std::printf("| %s | %s | %s | %s | %d | %s | %lld | %.2f ± %.2f | %.2f |",
                m.config().model_type.c_str(), human_bytes(m.weight_bytes()).c_str(),
                format_params(m.parameters()).c_str(), m.kernels().name, threads, r.name.c_str(),
                static_cast<long long>(r.n_batch), mean(rates), stddev(rates),
                mean(rates) / static_cast<double>(r.n_batch));
    if (peaks != nullptr) {
      if (r.n_gen > 0)
        std::printf(" %.1f%% of %.1f GB/s (%s/token) |", 100 * roofline_fraction(r, cost, *peaks),
                    peaks->read_gbs_n,
                    human_bytes(static_cast<uint64_t>(cost.decode_bytes)).c_str());
      else
        std::printf(" %.1f%% of %.0f GFLOP/s (%s) |", 100 * roofline_fraction(r, cost, *peaks),
                    prefill_peak(*peaks, cost.dtype),
                    prefill_peak_name(*peaks, cost.dtype) ? prefill_peak_name(*peaks, cost.dtype)
                                                          : peaks->bf16_path().c_str());
    }
    std::printf("\n");
  }
  for (const auto& r : results)
    if (r.draft > 0)
      std::printf(
          "\n%s: %.1f%% of %lld drafts accepted, %.2f tokens per verification pass; per "
          "step %.2f ms drafting (MTP), %.2f ms verifying\n",
          r.name.c_str(), 100.0 * r.spec.acceptance_rate(), static_cast<long long>(r.spec.drafted),
          r.spec.tokens_per_step(), 1e3 * r.spec.draft_s / static_cast<double>(r.spec.steps),
          1e3 * r.spec.verify_s / static_cast<double>(r.spec.steps));
}

}  // namespace

int cmd_bench(Args& a) {
  if (a.help()) {
    std::printf("%s%s", kUsage, kFp8GemmHelp);
    return 0;
  }
  const bool memory = a.flag({"--memory"});
  const int64_t memory_mib = a.int_or({"--memory-mib"}, 0);
  DSV3_CHECK(memory_mib >= 0 && memory_mib <= 65536,
             "bench: --memory-mib must be within 1 .. 65536", "or leave it out for the default");
  const uint64_t probe_bytes = static_cast<uint64_t>(memory_mib) << 20;
  const std::optional<std::string> model_dir = a.get({"-m", "--model"});
  if (memory && !model_dir) {
    const bool json_only = a.flag({"--json"});
    ThreadPool pool(threads_arg(a));
    a.finish();
    const MachinePeaks peaks = measure_machine_peaks(pool, probe_bytes);
    if (json_only) {
      Json doc = Json::object();
      doc["schema"] = "dsv3-roofline/1";
      doc["roofline"] = roofline_json(peaks);
      std::printf("%s\n", doc.dump(2).c_str());
    } else {
      print_roofline(peaks);
    }
    return 0;
  }
  const std::string dir = a.require({"-m", "--model"}, "model folder");
  const int64_t n_prompt = a.int_or({"-p", "--n-prompt"}, 512);
  const int64_t n_gen = a.int_or({"-n", "--n-gen"}, 128);
  const int64_t reps = a.int_or({"-r", "--repetitions"}, 5);
  std::vector<int64_t> batches;
  for (const std::string& b : split(a.get({"-b", "--batch"}).value_or("1"), ',')) {
    const int64_t v = parse_int(b, "--batch");
    DSV3_CHECK(v >= 1 && v <= 4096, "bench: --batch values must be within 1 .. 4096, not " + b);
    batches.push_back(v);
  }
  const bool json = a.flag({"--json"});
  const int64_t draft = speculative_flags(a);
  const double temp = a.get_double({"--temp"}).value_or(0.0);
  const int threads = threads_arg(a);
  const bool fp8_native = fp8_gemm_arg(a);
  a.finish();
  DSV3_CHECK(n_prompt >= 0 && n_gen >= 0, "bench: -p and -n must be >= 0");
  DSV3_CHECK(n_prompt + n_gen > 0, "bench: nothing to measure", "give -p or -n above 0");
  DSV3_CHECK(reps >= 1 && reps <= 1000, "bench: -r must be within 1 .. 1000");
  DSV3_CHECK(std::isfinite(temp) && temp >= 0, "bench: --temp must be >= 0 (0: greedy)");
  DSV3_CHECK(draft == 0 || n_gen > 1, "bench: --speculative needs -n above 1");

  InferenceModel m(dir, threads, /*with_tokenizer=*/false, fp8_native);
  const int64_t ctx = m.config().max_position_embeddings;
  DSV3_CHECK(n_prompt <= ctx && n_gen <= ctx,
             "bench: -p " + std::to_string(n_prompt) + " / -n " + std::to_string(n_gen) +
                 " exceed the model's context of " + std::to_string(ctx));
  const int64_t vocab = m.config().vocab_size;
  std::vector<float> logits(vocab);
  std::optional<MachinePeaks> peaks;
  if (memory) peaks = measure_machine_peaks(m.pool(), probe_bytes);
  std::vector<TestResult> results;
  if (n_prompt > 0) {
    TestResult r{"pp" + std::to_string(n_prompt), n_prompt, 0, 1, {}, 0, {}};
    run_pp(m, random_ids(std::min<int64_t>(n_prompt, 32), vocab, 0), logits);  // warm-up
    for (int64_t i = 0; i < reps; ++i)
      r.seconds.push_back(run_pp(m, random_ids(n_prompt, vocab, i + 1), logits));
    results.push_back(std::move(r));
  }
  for (int64_t B : n_gen > 0 ? batches : std::vector<int64_t>{}) {
    TestResult r{"tg" + std::to_string(n_gen), 0, n_gen, B, {}, 0, {}};
    run_tg(m, random_batch(B, 1, vocab, 0), logits);  // warm-up
    for (int64_t i = 0; i < reps; ++i)
      r.seconds.push_back(run_tg(m, random_batch(B, n_gen, vocab, 1000 + i), logits));
    results.push_back(std::move(r));
  }
  if (draft > 0) {
    DSV3_CHECK(n_gen + 17 <= ctx, "bench: the speculative test needs -n + 17 <= the context");
    TestResult r{
        "tg" + std::to_string(n_gen) + "+mtp" + std::to_string(draft), 0, n_gen, 1, {}, draft, {}};
    SpeculativeStats warm;
    run_tg_mtp(m, 4, draft, temp, 0, warm);  // warm-up (and the MTP check, before timing)
    for (int64_t i = 0; i < reps; ++i)
      r.seconds.push_back(run_tg_mtp(m, n_gen, draft, temp, 1000 + i, r.spec));
    results.push_back(std::move(r));
  }
  if (json)
    std::printf("%s\n",
                to_json(m, threads, reps, results, peaks ? &*peaks : nullptr).dump(2).c_str());
  else
    print_table(m, threads, results, peaks ? &*peaks : nullptr);
  return 0;
}

}  // namespace dsv3::cli

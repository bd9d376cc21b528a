// dsv3 bench: prompt processing (pp) and generation (tg) speed, as llama-bench measures them.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "apps/dsv3/commands.h"
#include "apps/dsv3/inference.h"
#include "base/error.h"
#include "base/json.h"
#include "base/rng.h"
#include "base/strings.h"
#include "base/timer.h"
#include "model/activations.h"
#include "model/batch.h"
#include "model/param_table.h"
#include "runtime/generate.h"
#include "runtime/kv_cache.h"

namespace dsv3::cli {
namespace {

const char kUsage[] =
    "usage: dsv3 bench -m DIR [-p 512] [-n 128] [-b 1[,4,16]] [-r 5] [-t THREADS] [--json]\n\n"
    "Measures the model in DIR as llama-bench does, on random token ids from an empty cache:\n"
    "  pp<P>  prompt processing: P tokens prefilled (in chunks of 256, as dsv3 generate does),\n"
    "         logits of the last position only;\n"
    "  tg<N>  text generation: N forward passes of one token each, with logits; with -b B,\n"
    "         B sequences decode together (one batched forward of B rows per step, each row\n"
    "         on its own cache), t/s counting every sequence's tokens, and per sequence.\n"
    "Each test runs R times after one untimed warm-up; the table shows tokens/s as mean ± sample\n"
    "standard deviation, with the model's size (bytes of weights), parameters and threads.\n\n"
    "  -m, --model DIR      Hugging Face model folder\n"
    "  -p, --n-prompt P     prompt tokens (0 skips pp; default 512)\n"
    "  -n, --n-gen N        generated tokens (0 skips tg; default 128)\n"
    "  -b, --batch B,...    sequences decoded together in tg, one test per value (default 1)\n"
    "  -r, --repetitions R  runs of each test (default 5)\n"
    "  -t, --threads N      worker threads (default: physical cores)\n"
    "  --json               one JSON document on stdout instead of the table (schema:\n"
    "                       docs/BENCH_JSON.md)\n";

struct TestResult {
  std::string name;
  int64_t n_prompt = 0, n_gen = 0, n_batch = 1;
  std::vector<double> seconds;

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

std::vector<std::vector<int32_t>> random_batch(int64_t B, int64_t n, int64_t vocab, uint64_t seed) {
  std::vector<std::vector<int32_t>> ids;
  for (int64_t b = 0; b < B; ++b) ids.push_back(random_ids(n, vocab, seed * 1000 + b));
  return ids;
}

Json to_json(const InferenceModel& m, int threads, int64_t reps,
             const std::vector<TestResult>& results) {
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
    tests.push_back(std::move(t));
  }
  doc["results"] = std::move(tests);
  doc["load_seconds"] = m.load_seconds();
  doc["peak_rss_bytes"] = static_cast<int64_t>(peak_rss_bytes());
  return doc;
}

void print_table(const InferenceModel& m, int threads, const std::vector<TestResult>& results) {
  std::printf("| model | size | params | kernels | threads | test | batch | t/s | t/s per seq |\n");
  std::printf("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |\n");
  for (const auto& r : results) {
    auto rates = r.rates();
    std::printf("| %s | %s | %s | %s | %d | %s | %lld | %.2f ± %.2f | %.2f |\n",
                m.config().model_type.c_str(), human_bytes(m.weight_bytes()).c_str(),
                format_params(m.parameters()).c_str(), m.kernels().name, threads, r.name.c_str(),
                static_cast<long long>(r.n_batch), mean(rates), stddev(rates),
                mean(rates) / static_cast<double>(r.n_batch));
  }
}

}  // namespace

int cmd_bench(Args& a) {
  if (a.help()) {
    std::printf("%s%s", kUsage, kFp8GemmHelp);
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
  const int threads = threads_arg(a);
  const bool fp8_native = fp8_gemm_arg(a);
  a.finish();
  DSV3_CHECK(n_prompt >= 0 && n_gen >= 0, "bench: -p and -n must be >= 0");
  DSV3_CHECK(n_prompt + n_gen > 0, "bench: nothing to measure", "give -p or -n above 0");
  DSV3_CHECK(reps >= 1 && reps <= 1000, "bench: -r must be within 1 .. 1000");

  InferenceModel m(dir, threads, /*with_tokenizer=*/false, fp8_native);
  const int64_t ctx = m.config().max_position_embeddings;
  DSV3_CHECK(n_prompt <= ctx && n_gen <= ctx,
             "bench: -p " + std::to_string(n_prompt) + " / -n " + std::to_string(n_gen) +
                 " exceed the model's context of " + std::to_string(ctx));
  const int64_t vocab = m.config().vocab_size;
  std::vector<float> logits(vocab);
  std::vector<TestResult> results;
  if (n_prompt > 0) {
    TestResult r{"pp" + std::to_string(n_prompt), n_prompt, 0, 1, {}};
    run_pp(m, random_ids(std::min<int64_t>(n_prompt, 32), vocab, 0), logits);  // warm-up
    for (int64_t i = 0; i < reps; ++i)
      r.seconds.push_back(run_pp(m, random_ids(n_prompt, vocab, i + 1), logits));
    results.push_back(std::move(r));
  }
  for (int64_t B : n_gen > 0 ? batches : std::vector<int64_t>{}) {
    TestResult r{"tg" + std::to_string(n_gen), 0, n_gen, B, {}};
    run_tg(m, random_batch(B, 1, vocab, 0), logits);  // warm-up
    for (int64_t i = 0; i < reps; ++i)
      r.seconds.push_back(run_tg(m, random_batch(B, n_gen, vocab, 1000 + i), logits));
    results.push_back(std::move(r));
  }
  if (json)
    std::printf("%s\n", to_json(m, threads, reps, results).dump(2).c_str());
  else
    print_table(m, threads, results);
  return 0;
}

}  // namespace dsv3::cli

// dsv3 logits: run token ids through a model and write every position's logits (issue 3 contract).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "apps/dsv3/commands.h"
#include "apps/dsv3/inference.h"
#include "apps/dsv3/npy.h"
#include "apps/dsv3/output_folder.h"
#include "base/error.h"
#include "base/file.h"
#include "base/strings.h"
#include "base/thread_pool.h"
#include "kernels/best_kernels.h"
#include "model/model.h"
#include "model/weights.h"
#include "runtime/kv_cache.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::cli {

namespace {

const char kUsage[] =
    "usage: dsv3 logits -m DIR (--ids 0,5,17 | --text TEXT) [--out FILE.npy] [--decode] [--mtp]\n"
    "                   [--naive] [--cache-dtype f32|bf16] [-t THREADS]\n\n"
    "Runs the tokens through the model in DIR and writes float32 logits of every position,\n"
    "shape [n_tokens, vocab], as a NumPy .npy file (a summary on stdout without --out).\n\n"
    "  -m, --model DIR     Hugging Face model folder (config.json + *.safetensors)\n"
    "  --ids LIST          token ids separated by commas and/or spaces (as tokenize prints)\n"
    "  --text TEXT         text, tokenised with the model's tokenizer (BOS added when it asks\n"
    "                      for one, as tokenize and generate do); the ids go to stderr\n"
    "  --out FILE.npy      where to write the logits; never one of the model's own files. An\n"
    "                      existing file is replaced only once every output is written (a link\n"
    "                      is followed, a FIFO or device written through)\n"
    "  --decode            one token at a time through the cache instead of one prefill\n"
    "  --mtp               also the MTP module's logits (DeepSeek with MTP layers), for positions\n"
    "                      0 .. n-2 (row i predicts token i+2), shape [n_tokens - 1, vocab],\n"
    "                      written to FILE.mtp.npy\n"
    "  --naive             MLA: the naive attention path (per-head K/V) instead of absorbed\n"
    "  --cache-dtype T     storage of the attention cache: f32 (default) or bf16\n"
    "  -t, --threads N     worker threads (default: physical cores)\n";

// Runs `run(begin, n)` over [0, total) in one call, or one position at a time with `decode`.
template <typename F>
void in_steps(int64_t total, bool decode, F run) {
  if (!decode) return run(0, total);
  for (int64_t i = 0; i < total; ++i) run(i, 1);
}

void summarize(const char* what, const std::vector<float>& logits, int64_t n, int64_t V) {
  std::printf("%s: shape [%lld, %lld]\n", what, static_cast<long long>(n),
              static_cast<long long>(V));
  for (int64_t i = 0; i < n; ++i) {
    const float* r = logits.data() + i * V;
    int64_t best = 0;
    for (int64_t v = 1; v < V; ++v)
      if (r[v] > r[best]) best = v;
    std::printf("  position %lld: argmax %lld (%.6g); first values", static_cast<long long>(i),
                static_cast<long long>(best), r[best]);
    for (int64_t v = 0; v < std::min<int64_t>(V, 4); ++v) std::printf(" %.6g", r[v]);
    std::printf("\n");
  }
}

}  // namespace

int cmd_logits(Args& a) {
  if (a.help()) {
    std::printf("%s%s", kUsage, kFp8GemmHelp);
    return 0;
  }
  const std::string dir = a.require({"-m", "--model"}, "model folder");
  const auto id_list = a.get({"--ids"});
  const auto text = a.get({"--text"});
  const auto out = a.get({"--out"});
  const bool decode = a.flag({"--decode"}), mtp = a.flag({"--mtp"}), naive = a.flag({"--naive"});
  const std::string cache_dtype = a.get_or({"--cache-dtype"}, "f32");
  const int threads = threads_arg(a);
  const bool fp8_native = fp8_gemm_arg(a);
  a.finish();
  DSV3_CHECK(cache_dtype == "f32" || cache_dtype == "bf16",
             "logits: --cache-dtype must be f32 or bf16, not '" + cache_dtype + "'");
  DSV3_CHECK(id_list.has_value() != text.has_value(),
             "logits: give exactly one of --ids and --text", "see dsv3 logits --help");
  std::vector<int32_t> ids;
  if (id_list) ids = parse_id_list(*id_list, "logits: --ids");

  ModelWeights weights = ModelWeights::load(dir);
  if (text) {
    ids = Tokenizer::load(dir).encode(*text, /*add_bos=*/true);
    DSV3_CHECK(!ids.empty(), "logits: --text gives no tokens", "give some text");
    print_ids("ids", ids);
  }
  // The outputs are checked against every file read so far (weights, config, tokenizer) before
  // the computation, not after it.
  std::string mtp_path;
  if (out) {
    check_output_file(*out, "--out");
    mtp_path = (ends_with(*out, ".npy") ? out->substr(0, out->size() - 4) : *out) + ".mtp.npy";
    if (mtp) check_output_file(mtp_path, "--out");
  }
  ThreadPool pool(threads);
  ComputeContext ctx{best_kernels(), pool};
  ctx.fp8_native_gemm = fp8_native;
  auto model = make_model(weights, ctx);
  if (naive) model->set_attention_path(AttentionPath::Naive);
  DSV3_CHECK(!mtp || model->has_mtp(), "logits: " + dir + " has no MTP module",
             "--mtp needs a DeepSeek model with num_nextn_predict_layers > 0");
  const DType cdt = cache_dtype == "bf16" ? DType::BF16 : DType::F32;
  const int64_t n = static_cast<int64_t>(ids.size());
  const int64_t V = weights.config().vocab_size, d = weights.config().hidden_size;

  KvCache cache(model->cache_layout(), cdt);
  std::vector<float> logits(n * V), hidden(mtp ? n * d : 0);
  in_steps(n, decode, [&](int64_t i, int64_t m) {
    model->forward(ids.data() + i, m, cache, logits.data() + i * V,
                   mtp ? hidden.data() + i * d : nullptr);
  });
  std::vector<float> mtp_logits;
  if (mtp) {
    KvCache mtp_cache(model->mtp_cache_layout(), cdt);
    mtp_logits.resize((n - 1) * V);
    in_steps(n - 1, decode, [&](int64_t i, int64_t m) {
      model->forward_mtp(hidden.data() + i * d, ids.data() + i + 1, m, mtp_cache,
                         mtp_logits.data() + i * V);
    });
  }

  if (out) {
    StagedFiles files;  // both written before either replaces an old file
    write_npy_f32(*out, logits.data(), {n, V}, &files);
    if (mtp) write_npy_f32(mtp_path, mtp_logits.data(), {n - 1, V}, &files);
    files.commit();
  } else {
    summarize("logits", logits, n, V);
    if (mtp) summarize("mtp logits", mtp_logits, n - 1, V);
  }
  std::fprintf(stderr, "cache: %s in %s for %lld positions\n", human_bytes(cache.bytes()).c_str(),
               cache_dtype.c_str(), static_cast<long long>(cache.length()));
  return 0;
}

}  // namespace dsv3::cli

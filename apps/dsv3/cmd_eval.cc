// dsv3 eval: a model's mean cross-entropy and perplexity on held-out tokens (train/evaluate.h).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

#include "apps/dsv3/commands.h"
#include "apps/dsv3/inference.h"
#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "base/progress.h"
#include "train/data.h"
#include "train/evaluate.h"
#include "train/prepare.h"

namespace dsv3::cli {
namespace {

const char kUsage[] =
    R"(usage: dsv3 eval -m MODEL_DIR (--data DATA_DIR | --file TEXT) [options]

Scores a model on held-out text: the mean next-token cross-entropy (nats per token) and the
perplexity exp(loss). The tokens are cut into windows of seq_len + 1 tokens: window i holds
tokens [i * seq_len, i * seq_len + seq_len + 1), its first seq_len tokens are the input and its
last seq_len the targets, so every token after the first is predicted once, with up to seq_len
tokens of context. Tokens after the last whole window are not scored (the count is printed).

  -m, --model DIR     Hugging Face model folder
  --data DATA_DIR     a data folder from dsv3 data prepare (its val split); its tokenizer must
                      be the model's (checked when the model folder has a tokenizer.json)
  --split NAME        with --data: val (default) or train
  --file TEXT         a text file, tokenised with the model's tokenizer as dsv3 data prepare
                      does (documents end with a line holding only U+001E, each followed by EOS)
  --doc-sep KIND      with --file: record (default), blank or line (see dsv3 data --help)
  --seq-len N         tokens of context per window (default: 512, at most the model's
                      max_position_embeddings; less when the text is shorter)
  --max-windows N     score only the first N windows (default: all)
  --batch N           windows per forward pass (default: as many as keep the logits near
                      256 MiB, at most 64)
  --json              print the result as one JSON object
  -t, --threads N     worker threads (default: physical cores)
)";

}  // namespace

int cmd_eval(Args& a) {
  if (a.help()) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  const std::string dir = a.require({"-m", "--model"}, "model folder");
  const auto data_dir = a.get({"--data"});
  const auto file = a.get({"--file"});
  const std::string split = a.get_or({"--split"}, "val");
  const DocSeparator sep =
      parse_doc_separator(a.get_or({"--doc-sep"}, "record"), "eval: --doc-sep");
  const auto seq_len_arg = a.get_int({"--seq-len"});
  const int64_t max_windows = a.int_or({"--max-windows"}, -1);
  const auto batch_arg = a.get_int({"--batch"});
  const bool json = a.flag({"--json"});
  const int threads = threads_arg(a);
  a.finish();
  DSV3_CHECK(data_dir.has_value() != file.has_value(),
             "eval: give exactly one of --data DATA_DIR and --file TEXT");
  DSV3_CHECK(split == "val" || split == "train",
             "eval: --split must be val or train, not '" + split + "'");
  DSV3_CHECK(!seq_len_arg || *seq_len_arg >= 1, "eval: --seq-len must be at least 1");
  DSV3_CHECK(max_windows == -1 || max_windows >= 1, "eval: --max-windows must be at least 1");
  DSV3_CHECK(!batch_arg || *batch_arg >= 1, "eval: --batch must be at least 1");

  InferenceModel m(dir, threads, /*with_tokenizer=*/false);
  const ModelConfig& cfg = m.config();
  const int64_t V = cfg.vocab_size, max_pos = cfg.max_position_embeddings;
  DSV3_CHECK(!seq_len_arg || *seq_len_arg <= max_pos,
             "eval: --seq-len " + std::to_string(*seq_len_arg) + " is longer than the model's " +
                 "context (max_position_embeddings " + std::to_string(max_pos) + ")");

  // The tokens: a data folder's split, or the text tokenised here.
  std::unique_ptr<TokenDataset> data;
  std::vector<uint32_t> text_tokens;
  TokenStream text_stream;
  const TokenStream* stream = nullptr;
  if (data_dir) {
    data = std::make_unique<TokenDataset>(*data_dir, V, ProgressBar::enabled());
    if (file_exists(path_join(dir, "tokenizer.json")))
      data->check_tokenizer(dir);
    else
      std::fprintf(stderr, "note: %s has no tokenizer.json; the data's tokenizer is not checked\n",
                   dir.c_str());
    stream = split == "val" ? &data->val() : &data->train();
    DSV3_CHECK(stream->size() > 0, "eval: the " + split + " split of " + *data_dir + " is empty",
               "prepare the data with --valid FILE or a larger --val-fraction");
  } else {
    DSV3_CHECK(split == "val", "eval: --split goes with --data");
    DSV3_CHECK(file_exists(path_join(dir, "tokenizer.json")),
               "eval: " + dir + " has no tokenizer.json to tokenise --file with",
               "tokenise the text with dsv3 data prepare and pass --data");
    ParallelEncoder enc(dir, m.pool());
    text_tokens = tokenize_text(enc, read_file(*file), sep);
    text_stream.append(text_tokens);
    stream = &text_stream;
  }

  // Default context: 512 or the model's, shortened to the text when it holds less.
  int64_t T = seq_len_arg.value_or(std::min<int64_t>(512, max_pos));
  if (!seq_len_arg && stream->size() >= 2 && stream->size() - 1 < T) {
    T = stream->size() - 1;
    std::fprintf(stderr, "note: only %lld tokens: one window of %lld\n",
                 static_cast<long long>(stream->size()), static_cast<long long>(T));
  }
  const ValWindows windows(*stream, T, max_windows);
  const int64_t batch =
      batch_arg.value_or(std::clamp<int64_t>((int64_t{256} << 20) / (4 * T * V), 1, 64));
  const EvalResult r =
      evaluate(m.model(), m.kernels(), m.pool(), windows, batch, ProgressBar::enabled());

  const std::string source = data_dir ? *data_dir : *file;
  if (json) {
    Json j = Json::object();
    j["model"] = dir;
    j[data_dir ? "data" : "file"] = source;
    if (data_dir) j["split"] = split;
    j["seq_len"] = T;
    j["windows"] = r.windows;
    j["tokens"] = r.tokens;
    j["split_tokens"] = stream->size();
    j["loss"] = r.loss;
    j["perplexity"] = r.perplexity();
    j["seconds"] = r.seconds;
    std::printf("%s\n", j.dump().c_str());
  } else {
    const std::string what = data_dir ? source + " (" + split + ")" : source;
    std::printf("eval: %s on %s: %lld windows of %lld tokens, %lld predictions (of %lld tokens)\n",
                dir.c_str(), what.c_str(), static_cast<long long>(r.windows),
                static_cast<long long>(T), static_cast<long long>(r.tokens),
                static_cast<long long>(stream->size()));
    std::printf("loss %.5f nats/token, perplexity %.3f (%.4f bits/token)\n", r.loss, r.perplexity(),
                r.loss / std::log(2.0));
    std::fprintf(stderr, "eval: %.2f s, %.0f tokens/s\n", r.seconds,
                 r.seconds > 0 ? r.tokens / r.seconds : 0.0);
  }
  return 0;
}

}  // namespace dsv3::cli

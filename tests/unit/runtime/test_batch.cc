// The batched forward (model/batch.h): a batch of 1..8 sequences of random lengths, some continuing
// cached prefixes, some cache-less (training rows), prefill and decode rows mixed, gives each
// sequence exactly the logits, hidden states and cache rows it gets alone. Every op computes a row
// from that row alone (matmuls sum each output in a fixed order whatever the number of rows,
// attention runs per sequence with the same shapes), so equality is bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "base/error.h"
#include "base/thread_pool.h"
#include "kernels/best_kernels.h"
#include "model/activations.h"
#include "model/batch.h"
#include "model/model.h"
#include "model/presets.h"
#include "model/weights.h"
#include "runtime/kv_cache.h"

namespace dsv3 {
namespace {

ModelConfig mla_config() {
  ModelConfig c = preset_config("tiny");  // MLA + MoE with groups, shared expert, dense layer, MTP
  c.vocab_size = 512;
  return c;
}

ModelConfig gqa_config() {
  return load_config(std::string(DSV3_SOURCE_DIR) + "/tests/ref/configs/qwen2.json");
}

// What one sequence of the batch is.
struct SeqCase {
  std::vector<int32_t> prefix;  // cached before the batch (empty: a fresh cache)
  std::vector<int32_t> ids;     // the sequence's rows in the batch
  bool cached = true;           // false: a cache-less row (prefix empty)
  LogitsRows logits = LogitsRows::All;
};

std::vector<SeqCase> random_cases(std::mt19937& rng, int64_t vocab) {
  std::uniform_int_distribution<int> n_seqs(1, 8), len(1, 12), pre(0, 20), id(0, vocab - 1),
      coin(0, 3);
  std::vector<SeqCase> cases(n_seqs(rng));
  for (SeqCase& s : cases) {
    const int kind = coin(rng);
    s.cached = kind != 0;
    if (s.cached && kind != 1)
      for (int i = pre(rng); i > 0; --i) s.prefix.push_back(id(rng));
    // A quarter decode rows (one token after a prefix), the rest prompt chunks.
    for (int i = kind == 3 ? 1 : len(rng); i > 0; --i) s.ids.push_back(id(rng));
    s.logits = coin(rng) == 0 ? LogitsRows::Last : LogitsRows::All;
  }
  return cases;
}

void check_batch_equals_alone(const ModelConfig& c, const Kernels& kernels, AttentionPath path,
                              DType cache_dtype, uint64_t seed) {
  ThreadPool pool(2);
  const ModelWeights w = ModelWeights::random(c, 3, DType::BF16);
  auto model = make_model(w, ComputeContext{kernels, pool});
  model->set_attention_path(path);
  const int64_t V = c.vocab_size, d = c.hidden_size;
  std::mt19937 rng(static_cast<uint32_t>(seed));
  for (int trial = 0; trial < 6; ++trial) {
    const std::vector<SeqCase> cases = random_cases(rng, V);
    std::vector<KvCache> caches, alone_caches;
    for (const SeqCase& s : cases) {
      caches.emplace_back(model->cache_layout(), cache_dtype);
      if (!s.prefix.empty())
        model->forward(s.prefix.data(), static_cast<int64_t>(s.prefix.size()), caches.back(),
                       nullptr);
      alone_caches.push_back(caches.back());
    }
    Batch b;
    for (size_t i = 0; i < cases.size(); ++i)
      b.add(cases[i].cached ? &caches[i] : nullptr, cases[i].ids, cases[i].logits);
    std::vector<float> logits(b.logit_rows().size() * V), hidden(b.rows() * d);
    ForwardActs acts;
    model->forward(b, acts, logits.data(), hidden.data());

    size_t logit_row = 0;
    for (size_t i = 0; i < cases.size(); ++i) {
      const SeqCase& s = cases[i];
      const auto T = static_cast<int64_t>(s.ids.size());
      // Alone: the same prefix cache, or for a cache-less row (positions from 0, its own rows as
      // keys, unrounded) a fresh float32 cache.
      KvCache fresh(model->cache_layout(), DType::F32);
      KvCache& cache = s.cached ? alone_caches[i] : fresh;
      std::vector<float> want(T * V), want_hidden(T * d);
      model->forward(s.ids.data(), T, cache, want.data(), want_hidden.data());
      const BatchSeq& bs = b.seqs()[i];
      SCOPED_TRACE("trial " + std::to_string(trial) + ", sequence " + std::to_string(i) + " of " +
                   std::to_string(cases.size()) + ", prefix " + std::to_string(s.prefix.size()) +
                   ", rows " + std::to_string(T) + (s.cached ? "" : ", cache-less"));
      EXPECT_EQ(
          0, std::memcmp(hidden.data() + bs.begin * d, want_hidden.data(), T * d * sizeof(float)));
      const int64_t first = s.logits == LogitsRows::Last ? T - 1 : 0;
      for (int64_t t = first; t < T; ++t, ++logit_row)
        EXPECT_EQ(
            0, std::memcmp(logits.data() + logit_row * V, want.data() + t * V, V * sizeof(float)))
            << "row " << t;
      if (!s.cached) continue;
      // The batch left the sequence's cache as the lone run did.
      ASSERT_EQ(caches[i].length(), cache.length());
      std::vector<float> s1, s2;
      for (int64_t l = 0; l < caches[i].n_layers(); ++l) {
        const float* r1 = caches[i].rows_f32(l, cache.length(), s1);
        const float* r2 = cache.rows_f32(l, cache.length(), s2);
        EXPECT_EQ(0, std::memcmp(r1, r2, cache.length() * cache.row_elems() * sizeof(float)));
      }
    }
    EXPECT_EQ(logit_row, b.logit_rows().size());
  }
}

TEST(Batch, MlaBatchEqualsEachSequenceAlone) {
  check_batch_equals_alone(mla_config(), ref_kernels(), AttentionPath::Absorbed, DType::F32, 1);
  check_batch_equals_alone(mla_config(), ref_kernels(), AttentionPath::Naive, DType::BF16, 2);
}

TEST(Batch, MlaBatchEqualsEachSequenceAloneBestKernels) {
  check_batch_equals_alone(mla_config(), best_kernels(), AttentionPath::Absorbed, DType::BF16, 3);
  check_batch_equals_alone(mla_config(), best_kernels(), AttentionPath::Naive, DType::F32, 4);
}

TEST(Batch, GqaBatchEqualsEachSequenceAlone) {
  check_batch_equals_alone(gqa_config(), ref_kernels(), AttentionPath::Absorbed, DType::F32, 5);
  check_batch_equals_alone(gqa_config(), best_kernels(), AttentionPath::Absorbed, DType::BF16, 6);
}

TEST(Batch, ListedLogitRows) {
  ThreadPool pool(1);
  const ModelConfig c = mla_config();
  const ModelWeights w = ModelWeights::random(c, 4, DType::F32);
  auto model = make_model(w, ComputeContext{ref_kernels(), pool});
  const std::vector<int32_t> ids = {5, 9, 200, 7, 3};
  KvCache c1(model->cache_layout(), DType::F32), c2 = c1;
  std::vector<float> all(ids.size() * c.vocab_size);
  model->forward(ids.data(), 5, c1, all.data());
  Batch b;
  const std::vector<int64_t> rows = {1, 3};
  b.add(&c2, ids, rows);
  EXPECT_EQ(b.logit_rows(), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(b.last_logit_index(0), -1);
  std::vector<float> listed(2 * c.vocab_size);
  ForwardActs acts;
  model->forward(b, acts, listed.data());
  for (int i = 0; i < 2; ++i)
    EXPECT_EQ(0, std::memcmp(listed.data() + i * c.vocab_size, all.data() + rows[i] * c.vocab_size,
                             c.vocab_size * sizeof(float)));
}

TEST(Batch, ExpertLoadCountsEveryRoutedSlot) {
  ThreadPool pool(1);
  const ModelConfig c = mla_config();
  const ModelWeights w = ModelWeights::random(c, 4, DType::F32);
  auto model = make_model(w, ComputeContext{ref_kernels(), pool});
  Batch b;
  b.add(nullptr, std::vector<int32_t>{1, 2, 3, 4}, LogitsRows::None);
  b.add(nullptr, std::vector<int32_t>{7, 8, 9}, LogitsRows::None);
  ForwardActs acts;
  acts.keep_layers = true;
  model->forward(b, acts, nullptr);
  ASSERT_EQ(static_cast<int64_t>(acts.expert_load.size()), c.num_hidden_layers);
  ASSERT_EQ(static_cast<int64_t>(acts.layers.size()), c.num_hidden_layers);
  ASSERT_EQ(static_cast<int64_t>(acts.resid.size()), c.num_hidden_layers + 1);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    if (!c.is_moe_layer(l)) {
      EXPECT_TRUE(acts.expert_load[l].empty());
      continue;
    }
    int64_t total = 0;
    for (int64_t n : acts.expert_load[l]) total += n;
    EXPECT_EQ(total, 7 * c.num_experts_per_tok) << "layer " << l;
  }
}

TEST(Batch, AttentionLseIsTheSameOnBothMlaPaths) {
  // Both paths score the same q·k (SPEC §1.5), so each row's log-sum-exp, kept for the backward
  // pass, agrees to float32 rounding of dot products of d_n + d_r terms (~1e-6 relative).
  ThreadPool pool(1);
  const ModelConfig c = mla_config();
  const ModelWeights w = ModelWeights::random(c, 4, DType::F32);
  auto model = make_model(w, ComputeContext{ref_kernels(), pool});
  std::vector<std::vector<float>> lse;
  for (AttentionPath path : {AttentionPath::Naive, AttentionPath::Absorbed}) {
    model->set_attention_path(path);
    Batch b;
    b.add(nullptr, std::vector<int32_t>{1, 2, 3, 4, 5}, LogitsRows::None);
    b.add(nullptr, std::vector<int32_t>{9, 8}, LogitsRows::None);
    ForwardActs acts;
    acts.keep_layers = true;
    model->forward(b, acts, nullptr);
    lse.push_back(acts.layers[1].mla.lse);
  }
  ASSERT_EQ(lse[0].size(), static_cast<size_t>(7 * c.num_attention_heads));
  for (size_t i = 0; i < lse[0].size(); ++i) {
    ASSERT_TRUE(std::isfinite(lse[0][i]));
    EXPECT_NEAR(lse[0][i], lse[1][i], 1e-5 * (1 + std::fabs(lse[0][i]))) << i;
  }
  // Row 0 of each sequence sees one key: its lse is that single scaled score, not 0 or garbage;
  // the first row of the second sequence equals none of the first's (it is its own sequence).
  EXPECT_NE(lse[0][0], lse[0][5 * c.num_attention_heads]);
}

TEST(Batch, Errors) {
  ThreadPool pool(1);
  const ModelConfig c = mla_config();
  const ModelWeights w = ModelWeights::random(c, 4, DType::F32);
  auto model = make_model(w, ComputeContext{ref_kernels(), pool});
  KvCache cache(model->cache_layout(), DType::F32);
  Batch b;
  b.add(&cache, std::vector<int32_t>{1, 2}, LogitsRows::Last);
  EXPECT_THROW(b.add(&cache, std::vector<int32_t>{3}, LogitsRows::Last), Error);
  EXPECT_THROW(b.add(nullptr, std::vector<int32_t>{}, LogitsRows::Last), Error);
  EXPECT_THROW(b.add(nullptr, std::vector<int32_t>{1, 2}, std::vector<int64_t>{1, 0}), Error);
  // A bad id in a later sequence: the whole batch is refused and no cache changes.
  b.add(nullptr, std::vector<int32_t>{1, static_cast<int32_t>(c.vocab_size)}, LogitsRows::Last);
  ForwardActs acts;
  std::vector<float> logits(2 * c.vocab_size);
  EXPECT_THROW(model->forward(b, acts, logits.data()), Error);
  EXPECT_EQ(cache.length(), 0);
  // A cache that moved on after its sequence was added.
  Batch b2;
  b2.add(&cache, std::vector<int32_t>{1}, LogitsRows::Last);
  model->forward(b2, acts, logits.data());
  EXPECT_THROW(model->forward(b2, acts, logits.data()), Error);
  EXPECT_EQ(cache.length(), 1);
}

}  // namespace
}  // namespace dsv3

// Forward-pass invariants on random tiny models (the logits themselves are checked against the
// float64 PyTorch reference by tests/ref/check_logits.py): naive == absorbed MLA, prefill ==
// token-by-token decode, truncate-then-redo == a fresh run, chunked long prompts, MTP, errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <utility>
#include <vector>

#include "base/error.h"
#include "base/thread_pool.h"
#include "model/batch.h"
#include "model/mla.h"
#include "model/model.h"
#include "model/param_store.h"
#include "model/presets.h"
#include "model/weights.h"
#include "model/yarn_rope.h"
#include "runtime/kv_cache.h"

namespace dsv3 {
namespace {

double rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num = std::max(num, std::fabs(double(a[i]) - b[i]));
    den = std::max(den, std::fabs(double(b[i])));
  }
  return num / den;
}

// preset "tiny" (q_lora, 4 groups keep 2, shared expert, dense first layer, YaRN, MTP) with a
// smaller vocabulary to keep the test fast.
ModelConfig tiny(bool q_lora = true) {
  ModelConfig c = preset_config("tiny");
  c.vocab_size = 512;
  if (!q_lora) c.q_lora_rank = 0;
  return c;
}

struct Fixture {
  explicit Fixture(const ModelConfig& c, uint64_t seed = 5)
      : pool(2),
        weights(ModelWeights::random(c, seed, DType::F32)),
        model(make_model(weights, ComputeContext{ref_kernels(), pool})) {}
  KvCache cache(DType dt = DType::F32) const { return KvCache(model->cache_layout(), dt); }
  std::vector<float> prefill(const std::vector<int32_t>& ids, KvCache& c, float* hidden = nullptr) {
    std::vector<float> out(ids.size() * weights.config().vocab_size);
    model->forward(ids.data(), ids.size(), c, out.data(), hidden);
    return out;
  }
  std::vector<float> decode(const std::vector<int32_t>& ids, KvCache& c) {
    const int64_t V = weights.config().vocab_size;
    std::vector<float> out(ids.size() * V);
    for (size_t i = 0; i < ids.size(); ++i) model->forward(&ids[i], 1, c, out.data() + i * V);
    return out;
  }
  ThreadPool pool;
  ModelWeights weights;
  std::unique_ptr<Model> model;
};

const std::vector<int32_t> kIds = {1, 7, 300, 42, 42, 511, 0, 9, 128, 77, 3};

TEST(Forward, NaiveEqualsAbsorbed) {
  for (bool q_lora : {true, false}) {
    Fixture f(tiny(q_lora));
    KvCache c1 = f.cache(), c2 = f.cache();
    auto absorbed = f.prefill(kIds, c1);
    f.model->set_attention_path(AttentionPath::Naive);
    auto naive = f.prefill(kIds, c2);
    // SPEC §1.5: the two are the same sums in another order; in float32 with dot products of at
    // most a few hundred terms they agree to ~1e-7 relative.
    const double rel = rel_diff(naive, absorbed);
    std::printf("logits naive vs absorbed (q_lora %d): %.3g\n", q_lora, rel);
    EXPECT_LE(rel, 1e-6) << "q_lora " << q_lora;
    // Decoding through the same cache with the other path continues identically.
    auto more = f.decode({5, 6}, c2);
    f.model->set_attention_path(AttentionPath::Absorbed);
    auto more_abs = f.decode({5, 6}, c1);
    EXPECT_LE(rel_diff(more, more_abs), 1e-6);
  }
}

TEST(Forward, MlaNaiveEqualsAbsorbedPerLayer) {
  // One MLA layer, both paths over the same latent cache: 5 prompt rows, then 2 more.
  const ModelConfig c = tiny();
  ModelWeights w = ModelWeights::random(c, 9, DType::F32);
  ThreadPool pool(2);
  const ComputeContext ctx{ref_kernels(), pool};
  const ParamStore params(w);
  const Mla mla(c, params, "model.layers.1.self_attn.", 0);
  const RopeParams rope = rope_params(c);
  const int64_t d = c.hidden_size, half = rope.dim / 2;
  KvCache cache({1, c.kv_cache_elems_per_token_layer()}, DType::F32);
  MlaActs acts;
  for (int64_t T : {5, 2}) {
    std::vector<float> x(T * d), cos(T * half), sin(T * half), naive(T * d), absorbed(T * d);
    for (int64_t i = 0; i < T * d; ++i) x[i] = static_cast<float>(std::sin(0.37 * i + T));
    rope_tables(rope, cache.length(), T, cos.data(), sin.data());
    Batch b;
    b.add(&cache, std::vector<int32_t>(T, 0), LogitsRows::None);
    mla.forward(ctx, AttentionPath::Naive, x.data(), b, cos.data(), sin.data(), acts, naive.data());
    mla.forward(ctx, AttentionPath::Absorbed, x.data(), b, cos.data(), sin.data(), acts,
                absorbed.data());
    cache.commit(T);
    const double rel = rel_diff(naive, absorbed);
    std::printf("MLA naive vs absorbed, %lld rows: max|diff|/max|out| = %.3g\n",
                static_cast<long long>(T), rel);
    // SPEC §1.5: the same sums in another order; float32 rounding only (~1e-7).
    EXPECT_LE(rel, 1e-6);
  }
}

TEST(Forward, PrefillEqualsTokenByTokenDecode) {
  Fixture f(tiny());
  KvCache c1 = f.cache(), c2 = f.cache();
  auto pre = f.prefill(kIds, c1);
  auto dec = f.decode(kIds, c2);
  // Every row is computed by the same operations in the same order: equal up to nothing.
  EXPECT_LE(rel_diff(dec, pre), 1e-6);
  EXPECT_EQ(c1.length(), static_cast<int64_t>(kIds.size()));
  EXPECT_EQ(c2.length(), c1.length());
}

TEST(Forward, TruncateThenRedoEqualsFreshRunAndCopiesAreIndependent) {
  Fixture f(tiny());
  KvCache c = f.cache();
  f.prefill({1, 2, 3, 4, 5, 6, 7, 8}, c);
  KvCache fork = c;
  c.truncate(5);
  auto redo = f.prefill({40, 41, 42}, c);
  KvCache fresh_cache = f.cache();
  auto fresh = f.prefill({1, 2, 3, 4, 5, 40, 41, 42}, fresh_cache);
  const int64_t V = 512;
  std::vector<float> fresh_tail(fresh.end() - 3 * V, fresh.end());
  EXPECT_LE(rel_diff(redo, fresh_tail), 1e-6);
  // The fork still continues from 8 positions.
  auto cont = f.prefill({9}, fork);
  KvCache full_cache = f.cache();
  auto full = f.prefill({1, 2, 3, 4, 5, 6, 7, 8, 9}, full_cache);
  EXPECT_LE(rel_diff(cont, std::vector<float>(full.end() - V, full.end())), 1e-6);
}

TEST(Forward, MtpPrefillEqualsDecode) {
  Fixture f(tiny());
  ASSERT_TRUE(f.model->has_mtp());
  const int64_t d = f.weights.config().hidden_size, V = 512, n = kIds.size();
  std::vector<float> hidden(n * d);
  KvCache c = f.cache();
  f.prefill(kIds, c, hidden.data());
  KvCache m1(f.model->mtp_cache_layout(), DType::F32), m2 = m1;
  EXPECT_EQ(m1.n_layers(), 1);
  std::vector<float> pre((n - 1) * V), dec((n - 1) * V);
  f.model->forward_mtp(hidden.data(), kIds.data() + 1, n - 1, m1, pre.data());
  for (int64_t i = 0; i + 1 < n; ++i)
    f.model->forward_mtp(hidden.data() + i * d, kIds.data() + i + 1, 1, m2, dec.data() + i * V);
  EXPECT_LE(rel_diff(dec, pre), 1e-6);
}

TEST(Forward, LongPromptRunsInChunksLikeDecode) {
  ModelConfig c = tiny();
  c.num_hidden_layers = 2;
  c.n_routed_experts = 4;
  c.n_group = 2;
  c.topk_group = 1;
  c.num_experts_per_tok = 2;
  c.num_nextn_predict_layers = 0;
  c.vocab_size = 64;
  Fixture f(c);
  std::vector<int32_t> ids(300);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 37) % 64);
  KvCache c1 = f.cache(), c2 = f.cache();
  auto pre = f.prefill(ids, c1);  // 300 > one 256-token chunk
  auto dec = f.decode(ids, c2);
  EXPECT_LE(rel_diff(dec, pre), 1e-6);
}

TEST(Forward, LastRowLogitsEqualTheLastRowOfAllRows) {
  // kIds fits one chunk; 300 tokens span two (the last row is in the second).
  ModelConfig small = tiny();
  small.num_hidden_layers = 2;
  small.num_nextn_predict_layers = 0;
  small.vocab_size = 64;
  std::vector<int32_t> long_ids(300);
  for (size_t i = 0; i < long_ids.size(); ++i) long_ids[i] = static_cast<int32_t>((i * 37) % 64);
  for (const auto& [c, ids] : {std::pair{tiny(), kIds}, std::pair{small, long_ids}}) {
    Fixture f(c);
    const int64_t V = c.vocab_size, d = c.hidden_size, T = static_cast<int64_t>(ids.size());
    KvCache c1 = f.cache(), c2 = f.cache();
    std::vector<float> h1(T * d), h2(T * d);
    auto all = f.prefill(ids, c1, h1.data());
    std::vector<float> last(V, NAN);
    f.model->forward(ids.data(), T, c2, last.data(), h2.data(), LogitsRows::Last);
    // The same kernels on the same row: equal to the bit, not merely close.
    EXPECT_EQ(last, std::vector<float>(all.end() - V, all.end())) << "T = " << T;
    EXPECT_EQ(h2, h1) << "T = " << T;  // hidden stays [T, d]
    EXPECT_EQ(c2.length(), c1.length());
    // Decoding on from either cache gives the same logits.
    EXPECT_EQ(f.decode({5}, c2), f.decode({5}, c1));
  }
}

TEST(Forward, Bf16CacheIsCloseAndHalfTheBytes) {
  Fixture f(tiny());
  KvCache c32 = f.cache(), c16 = f.cache(DType::BF16);
  auto a = f.prefill(kIds, c32);
  auto b = f.prefill(kIds, c16);
  EXPECT_EQ(c16.bytes() * 2, c32.bytes());
  EXPECT_EQ(c32.bytes(), 4u * 4 * kIds.size() * (64 + 16));  // layers x T x (d_c + d_r) x 4
  // bf16 keeps 8 bits of mantissa (relative 2^-9) on the cached latents.
  EXPECT_LE(rel_diff(b, a), 2e-2);
}

TEST(Forward, BadInputsAreErrorsAndLeaveTheCacheAlone) {
  Fixture f(tiny());
  KvCache c = f.cache();
  f.prefill({1, 2}, c);
  std::vector<int32_t> bad = {3, 512};
  std::vector<float> out(2 * 512);
  EXPECT_THROW(f.model->forward(bad.data(), 2, c, out.data()), Error);
  bad = {3, -1};
  EXPECT_THROW(f.model->forward(bad.data(), 2, c, out.data()), Error);
  EXPECT_EQ(c.length(), 2);
  KvCache wrong({3, 80}, DType::F32);
  EXPECT_THROW(f.model->forward(bad.data(), 1, wrong, out.data()), Error);
  // The cache still continues exactly.
  KvCache fresh = f.cache();
  auto ref = f.prefill({1, 2, 3}, fresh);
  auto cont = f.prefill({3}, c);
  EXPECT_LE(rel_diff(cont, std::vector<float>(ref.end() - 512, ref.end())), 1e-6);
}

}  // namespace
}  // namespace dsv3

// MTP speculative decoding (runtime/speculative_mtp.h). The reference for every test is what
// decoding without speculation does, computed independently of the speculative code:
//  - the acceptance rule against a known p and q: the output histogram must be p (chi-square),
//    and two deliberately wrong rules must fail the same test (it can fail);
//  - end to end on a random tiny model with MTP and an 8-token vocabulary: the joint distribution
//    of two speculatively generated tokens against the product of the main model's conditionals
//    from plain forward passes and the sampler (penalties, temperature, top-p included);
//  - greedy: the same tokens, stop reasons and cache as Generator without speculation, over many
//    prompts, N = 1, 2, 3, with penalties.
#include "runtime/speculative_mtp.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/thread_pool.h"
#include "kernels/best_kernels.h"
#include "model/activations.h"
#include "model/batch.h"
#include "model/presets.h"
#include "model/weights.h"
#include "runtime/generate.h"

namespace dsv3 {
namespace {

// Pearson's chi-square of counts against probabilities, cells with an expected count under 5
// pooled into one (the usual validity condition). Returns the statistic and its degrees of
// freedom. A count where the probability is 0 makes it infinite.
struct ChiSquare {
  double stat = 0;
  int df = 0;
};
ChiSquare chi_square(const std::vector<int64_t>& counts, const std::vector<double>& probs) {
  int64_t n = 0;
  for (int64_t c : counts) n += c;
  ChiSquare r;
  double pooled_obs = 0, pooled_exp = 0;
  int cells = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    const double e = probs[i] * static_cast<double>(n);
    if (e == 0 && counts[i] > 0) return {INFINITY, 1};
    if (e < 5) {
      pooled_obs += static_cast<double>(counts[i]);
      pooled_exp += e;
      continue;
    }
    r.stat += (counts[i] - e) * (counts[i] - e) / e;
    ++cells;
  }
  if (pooled_exp > 0) {
    r.stat += (pooled_obs - pooled_exp) * (pooled_obs - pooled_exp) / pooled_exp;
    ++cells;
  }
  r.df = cells - 1;
  return r;
}

// The chi-square quantile with upper tail 1e-6 (z = 4.753), by Wilson and Hilferty's cube-root
// normal approximation (accurate to a few percent for df >= 3, far inside the margins below).
// The seeds are fixed, so a pass is deterministic; 1e-6 keeps a change of seeds from failing a
// correct rule by chance.
double chi_square_limit(int df) {
  const double k = df, z = 4.753, a = 2.0 / (9.0 * k);
  return k * std::pow(1.0 - a + z * std::sqrt(a), 3.0);
}

const std::vector<double> kP = {0.30, 0.05, 0.25, 0.10, 0.20, 0.10};
const std::vector<double> kQ = {0.10, 0.30, 0.05, 0.25, 0.10, 0.20};

// The token each of n trials outputs when a draft from q is judged by `rule`.
template <typename Rule>
std::vector<int64_t> histogram(int64_t n, Rule rule) {
  Rng draft_rng(1), judge_rng(2);
  std::vector<int64_t> counts(kP.size(), 0);
  for (int64_t i = 0; i < n; ++i) {
    const int32_t d = draw_token(kQ, 1.0, draft_rng);
    ++counts[rule(d, judge_rng)];
  }
  return counts;
}

TEST(SpeculativeRule, OutputIsDistributedAsTheMainModel) {
  int64_t accepted = 0;
  const int64_t n = 200000;
  auto counts = histogram(n, [&](int32_t d, Rng& rng) {
    const DraftVerdict v = judge_draft(kP, kQ, d, rng);
    accepted += v.accepted;
    return v.token;
  });
  const ChiSquare c = chi_square(counts, kP);
  EXPECT_EQ(c.df, 5);
  EXPECT_LT(c.stat, chi_square_limit(c.df));
  // The acceptance rate is sum_i min(p_i, q_i) = 0.50; 5 binomial standard errors (0.0011 each).
  EXPECT_NEAR(static_cast<double>(accepted) / n, 0.50, 5 * std::sqrt(0.25 / n));
}

TEST(SpeculativeRule, WrongRulesFailTheSameTest) {
  const int64_t n = 200000;
  // Keeping every draft outputs q.
  auto always = histogram(n, [](int32_t d, Rng&) { return d; });
  EXPECT_GT(chi_square(always, kP).stat, 100 * chi_square_limit(5));
  // The right test, but a rejection resampled from p instead of max(0, p - q): too few of the
  // tokens q under-proposes.
  auto from_p = histogram(n, [](int32_t d, Rng& rng) {
    if (rng.uniform() * kQ[d] < kP[d]) return d;
    return draw_token(kP, 1.0, rng);
  });
  EXPECT_GT(chi_square(from_p, kP).stat, 10 * chi_square_limit(5));
}

TEST(SpeculativeRule, GreedyAcceptsExactlyTheArgmaxWithoutRandomness) {
  const std::vector<double> p = {0, 0, 1, 0}, q_same = {0, 0, 1, 0}, q_other = {0, 1, 0, 0};
  Rng rng(7);
  const Rng::State before = rng.state();
  DraftVerdict v = judge_draft(p, q_same, 2, rng);
  EXPECT_TRUE(v.accepted);
  EXPECT_EQ(v.token, 2);
  v = judge_draft(p, q_other, 1, rng);
  EXPECT_FALSE(v.accepted);
  EXPECT_EQ(v.token, 2);
  EXPECT_EQ(rng.state(), before);
  // A draft the draft distribution cannot produce is a caller's bug, named.
  EXPECT_THROW(judge_draft(p, q_other, 2, rng), Error);
}

// A tiny DeepSeek-V3 with an MTP module and random weights.
ModelConfig tiny_config(int64_t vocab, int64_t context) {
  ModelConfig c = preset_config("tiny");
  c.vocab_size = vocab;
  c.num_hidden_layers = 2;
  c.max_position_embeddings = context;
  return c;
}

struct TinyModel {
  TinyModel(int64_t vocab, int64_t context)
      : pool(1),
        weights(ModelWeights::random(tiny_config(vocab, context), 11, DType::F32)),
        model(make_model(weights, ComputeContext{best_kernels(), pool})) {}
  ThreadPool pool;
  ModelWeights weights;
  std::unique_ptr<Model> model;
};

TEST(SpeculativeMtp, SampledTokensHaveTheMainModelsJointDistribution) {
  constexpr int64_t V = 8;
  TinyModel t(V, 64);
  Model& m = *t.model;
  ASSERT_TRUE(m.has_mtp());
  SamplingParams sp;
  sp.temperature = 0.08;  // random weights give logits of a few tenths: sharpen them
  sp.top_p = 0.97;
  sp.repetition_penalty = 1.5;
  sp.frequency_penalty = 0.4;
  const std::vector<int32_t> prompt = {1, 2, 3, 4, 5};
  const int32_t last = 6;  // the token sampled after the prompt

  // Reference: P(x1, x2) = p(x1 | prompt, last) p(x2 | prompt, last, x1) from plain forwards.
  auto main_logits = [&](std::vector<int32_t> ids) {
    KvCache c(m.cache_layout(), DType::F32);
    std::vector<float> logits(V);
    m.forward(ids.data(), static_cast<int64_t>(ids.size()), c, logits.data(), nullptr,
              LogitsRows::Last);
    return logits;
  };
  auto context = prompt;
  context.push_back(last);
  Sampler ref(sp);
  ref.add_context(prompt);
  ref.accept(last);
  const std::vector<double> p1 = ref.distribution(main_logits(context));
  std::vector<double> joint(V * V, 0.0);
  for (int32_t x1 = 0; x1 < V; ++x1) {
    if (p1[x1] == 0) continue;
    Sampler after = ref;
    after.accept(x1);
    auto ids = context;
    ids.push_back(x1);
    const std::vector<double> p2 = after.distribution(main_logits(ids));
    for (int32_t x2 = 0; x2 < V; ++x2) joint[x1 * V + x2] = p1[x1] * p2[x2];
  }

  // Speculative: the same prefix, fresh draft and sampler seeds per trial, N = 2.
  KvCache base(m.cache_layout(), DType::F32);
  std::vector<float> hidden(prompt.size() * m.config().hidden_size), logits(V);
  m.forward(prompt.data(), static_cast<int64_t>(prompt.size()), base, logits.data(), hidden.data(),
            LogitsRows::Last);
  const int64_t trials = 2000;
  std::vector<int64_t> counts(V * V, 0);
  SpeculativeStats stats;
  for (int64_t s = 0; s < trials; ++s) {
    KvCache cache = base;
    MtpSpeculator spec(m, 2, DType::F32, V, 1000 + s);
    spec.observe(hidden.data(), prompt);
    SamplingParams seeded = sp;
    seeded.seed = s;
    Sampler sampler(seeded);
    sampler.add_context(prompt);
    sampler.accept(last);
    std::vector<int32_t> out;
    int32_t cur = last;
    while (out.size() < 2)
      spec.step(cache, cur, sampler, 2 - static_cast<int64_t>(out.size()), [&](int32_t id) {
        out.push_back(id);
        cur = id;
        return true;
      });
    ++counts[out[0] * V + out[1]];
    stats += spec.stats();
  }
  const ChiSquare c = chi_square(counts, joint);
  EXPECT_LT(c.stat, chi_square_limit(c.df)) << "df " << c.df;
  // The drafts must be rejected sometimes and accepted sometimes, or the rule is not exercised.
  EXPECT_GT(stats.acceptance_rate(), 0.05);
  EXPECT_LT(stats.acceptance_rate(), 0.95);
}

const Tokenizer& tokenizer() {
  static Tokenizer tok =
      Tokenizer::load(std::string(DSV3_SOURCE_DIR) + "/assets/tokenizers/dsv3-en-4k");
  return tok;
}

// Greedy generation of `prompt` with and without speculation must agree token for token, in
// the reason it stopped, and in what the cache holds after.
void expect_same_greedy(Model& m, const std::vector<int32_t>& prompt, int64_t n_draft,
                        const SamplingParams& sp, const StopConditions& stop,
                        SpeculativeStats& stats) {
  Generator plain(m, tokenizer()), fast(m, tokenizer());
  fast.enable_speculation(n_draft, 5);
  Sampler s1(sp), s2(sp);
  const GenerationResult a = plain.generate(prompt, s1, stop, nullptr);
  const GenerationResult b = fast.generate(prompt, s2, stop, nullptr);
  EXPECT_EQ(a.tokens, b.tokens) << "N = " << n_draft;
  EXPECT_EQ(a.text, b.text);
  EXPECT_EQ(a.reason, b.reason);
  EXPECT_EQ(a.decode_tokens, b.decode_tokens);
  EXPECT_EQ(plain.cached_ids(), fast.cached_ids());
  EXPECT_EQ(plain.cache().length(), fast.cache().length());
  stats += b.speculative;
}

TEST(SpeculativeMtp, GreedyIsIdenticalToPlainDecodingOnManyPrompts) {
  TinyModel t(4096, 48);
  SamplingParams sp;
  sp.temperature = 0;
  sp.repetition_penalty = 1.3;
  sp.frequency_penalty = 0.2;
  StopConditions stop;
  stop.max_new_tokens = 20;
  Rng rng(3);
  SpeculativeStats stats;
  for (int i = 0; i < 12; ++i) {
    std::vector<int32_t> prompt(3 + i % 5);
    for (auto& id : prompt) id = static_cast<int32_t>(rng.below(4000));
    expect_same_greedy(*t.model, prompt, 1 + i % 3, sp, stop, stats);
  }
  EXPECT_GT(stats.steps, 0);
  // A full context mid-step (prompt 30 + 20 tokens > 48) and a stop string.
  std::vector<int32_t> long_prompt(30, 7);
  expect_same_greedy(*t.model, long_prompt, 3, sp, stop, stats);
  StopConditions at_token = stop;
  at_token.stop_strings = {"e"};
  expect_same_greedy(*t.model, {5, 6, 7}, 2, sp, at_token, stats);
}

// Later turns, a truncated cache and an empty prompt (chat sessions do all three): the MTP
// module's cache and hidden states follow the main cache.
TEST(SpeculativeMtp, GreedyStaysIdenticalAcrossTurnsAndTruncation) {
  TinyModel t(4096, 96);
  SamplingParams sp;
  sp.temperature = 0;
  StopConditions stop;
  stop.max_new_tokens = 12;
  Generator plain(*t.model, tokenizer()), fast(*t.model, tokenizer());
  fast.enable_speculation(2, 5);
  Sampler s1(sp), s2(sp);
  auto both = [&](const std::vector<int32_t>& prompt) {
    const GenerationResult a = plain.generate(prompt, s1, stop, nullptr);
    const GenerationResult b = fast.generate(prompt, s2, stop, nullptr);
    EXPECT_EQ(a.tokens, b.tokens);
    EXPECT_EQ(plain.cached_ids(), fast.cached_ids());
  };
  both({11, 12, 13, 14});
  both({15, 16});
  plain.truncate(5);
  fast.truncate(5);
  both({17, 18, 19});
  both({});                                            // the last cached token is fed again
  EXPECT_THROW(fast.enable_speculation(1, 0), Error);  // only before the first generation
}

// A server's scheduler verifies several sequences in one forward: draft() for each, one Batch,
// accept() for each. Greedy, the tokens are those of step() one sequence at a time.
TEST(SpeculativeMtp, SequencesVerifiedInOneBatchMatchOneAtATime) {
  TinyModel t(4096, 64);
  Model& m = *t.model;
  const int64_t V = m.config().vocab_size, d = m.config().hidden_size, want = 12;
  SamplingParams sp;
  sp.temperature = 0;
  struct Seq {
    KvCache cache;
    MtpSpeculator spec;
    Sampler sampler;
    int32_t last = -1;
    std::vector<int32_t> out;
  };
  auto start = [&](const std::vector<int32_t>& prompt, int64_t n_draft) {
    Seq s{KvCache(m.cache_layout(), DType::F32),
          MtpSpeculator(m, n_draft, DType::F32, V, 1),
          Sampler(sp),
          -1,
          {}};
    std::vector<float> logits(V), hidden(prompt.size() * d);
    m.forward(prompt.data(), static_cast<int64_t>(prompt.size()), s.cache, logits.data(),
              hidden.data(), LogitsRows::Last);
    s.spec.observe(hidden.data(), prompt);
    s.last = s.sampler.sample(logits);
    s.sampler.accept(s.last);
    return s;
  };
  std::vector<Seq> one{start({3, 4, 5}, 1), start({9, 8, 7, 6}, 3)};
  std::vector<Seq> batched{start({3, 4, 5}, 1), start({9, 8, 7, 6}, 3)};
  for (Seq& s : one)
    while (static_cast<int64_t>(s.out.size()) < want)
      s.spec.step(s.cache, s.last, s.sampler, want - static_cast<int64_t>(s.out.size()),
                  [&](int32_t id) {
                    s.out.push_back(id);
                    s.last = id;
                    return true;
                  });
  ForwardActs acts;
  std::vector<float> logits, hidden;
  while (static_cast<int64_t>(batched[0].out.size()) < want ||
         static_cast<int64_t>(batched[1].out.size()) < want) {
    Batch b;
    std::vector<Seq*> in;
    for (Seq& s : batched) {
      const int64_t left = want - static_cast<int64_t>(s.out.size());
      if (left <= 0) continue;
      b.add(&s.cache, s.spec.draft(s.cache, s.last, s.sampler, left), LogitsRows::All);
      in.push_back(&s);
    }
    logits.resize(b.rows() * V);
    hidden.resize(b.rows() * d);
    m.forward(b, acts, logits.data(), hidden.data());
    for (size_t i = 0; i < in.size(); ++i) {
      Seq& s = *in[i];
      const int64_t r0 = b.seqs()[i].begin;
      s.spec.accept(s.cache, logits.data() + r0 * V, hidden.data() + r0 * d, s.sampler,
                    [&](int32_t id) {
                      s.out.push_back(id);
                      s.last = id;
                      return true;
                    });
    }
  }
  for (size_t i = 0; i < one.size(); ++i) {
    EXPECT_EQ(one[i].out, batched[i].out);
    EXPECT_EQ(one[i].cache.length(), batched[i].cache.length());
  }
}

TEST(SpeculativeMtp, AModelWithoutMtpIsANamedError) {
  ModelConfig c = tiny_config(64, 32);
  c.num_nextn_predict_layers = 0;
  ThreadPool pool(1);
  ModelWeights w = ModelWeights::random(c, 1, DType::F32);
  auto m = make_model(w, ComputeContext{best_kernels(), pool});
  try {
    MtpSpeculator spec(*m, 1, DType::F32, 64, 0);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no MTP module"), std::string::npos);
  }
}

}  // namespace
}  // namespace dsv3

// BatchScheduler (continuous batching, runtime/batch_scheduler.h) against the one-sequence
// Generator, which shares none of its batching: greedy tokens are identical whether a sequence runs
// alone or among others, its prompt prefilled in chunks beside their decode rows, in a reused slot
// or a fresh one, with MTP speculation or without. Also: cancellation frees the slot, the queue
// bound, prefix reuse, bad requests.
#include "runtime/batch_scheduler.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/error.h"
#include "base/file.h"
#include "base/thread_pool.h"
#include "kernels/best_kernels.h"
#include "model/presets.h"
#include "model/weights.h"
#include "unit/runtime/test_tokenizer_util.h"

namespace dsv3 {
namespace {

constexpr int64_t kContext = 128;
constexpr auto kWait = std::chrono::seconds(60);

const Tokenizer& tokenizer() {
  static Tokenizer tok = test::train_test_tokenizer(
      "test_batch_scheduler_tokenizer", "many sequences decode together in one forward pass");
  return tok;
}

// The model the server runs: the best kernels of this machine (their GEMMs are row-independent).
// With `mtp`, it has an MTP module (for --speculative mtp).
struct Model2 {
  static ModelConfig config(bool mtp) {
    ModelConfig c = preset_config("tiny");
    c.vocab_size = 320;
    c.num_hidden_layers = 2;
    c.num_nextn_predict_layers = mtp ? 1 : 0;
    c.max_position_embeddings = kContext;
    return c;
  }
  explicit Model2(bool mtp = false)
      : pool(2),
        weights(ModelWeights::random(config(mtp), 5, DType::F32)),
        model(make_model(weights, ComputeContext{best_kernels(), pool})) {}
  ThreadPool pool;
  ModelWeights weights;
  std::unique_ptr<Model> model;
};

// Prompt i: i * 7 + 3 tokens of varied ids.
std::vector<int32_t> prompt(int i) {
  std::vector<int32_t> ids;
  for (int k = 0; k < i * 7 + 3; ++k) ids.push_back(static_cast<int32_t>((k * 31 + i * 17) % 290));
  return ids;
}

SequenceRequest greedy(std::vector<int32_t> ids, int64_t n) {
  SequenceRequest r;
  r.prompt = std::move(ids);
  r.sampling.temperature = 0;
  r.stop.max_new_tokens = n;
  return r;
}

// The reference: the request's tokens from the one-sequence Generator, speculative with `draft`
// drafts (its drafts seeded as the scheduler seeds them) when draft > 0.
GenerationResult reference(Model& m, const SequenceRequest& r, int64_t draft = 0) {
  Generator gen(m, tokenizer());
  if (draft > 0) gen.enable_speculation(draft, r.sampling.seed ^ kDraftSeedStream);
  Sampler s(r.sampling);
  return gen.generate(r.prompt, s, r.stop, nullptr);
}
std::vector<int32_t> alone(Model& m, const SequenceRequest& r, int64_t draft = 0) {
  return reference(m, r, draft).tokens;
}

struct Outcome {
  std::vector<int32_t> tokens;
  SequenceEvent end;
};

Outcome drain(SequenceStream& s) {
  Outcome o;
  for (SequenceEvent e;;) {
    if (!s.next(e, kWait)) ADD_FAILURE() << "no event in 60 s";
    if (e.kind == SequenceEvent::Kind::End) {
      o.end = e;
      return o;
    }
    o.tokens.push_back(e.id);
  }
}

TEST(BatchScheduler, BatchedEqualsAlone) {
  Model2 m;
  std::vector<std::vector<int32_t>> want;
  for (int i = 0; i < 6; ++i) want.push_back(alone(*m.model, greedy(prompt(i), 12)));
  // 3 slots for 6 sequences, 8 rows a step: prompts of up to 38 tokens go in chunks beside the
  // decode rows, the last three wait in the queue and then take slots that others used.
  SchedulerOptions opt;
  opt.slots = 3;
  opt.max_batch_rows = 8;
  opt.max_queue = 6;
  opt.context = kContext;
  for (int round = 0; round < 2; ++round) {  // round 1 also reuses the cached prefixes
    BatchScheduler sched(*m.model, tokenizer(), opt);
    std::vector<std::shared_ptr<SequenceStream>> streams;
    for (int i = 0; i < 6; ++i) {
      auto sub = sched.submit(greedy(prompt(round ? 5 - i : i), 12));
      ASSERT_EQ(sub.admission, BatchScheduler::Admission::Queued);
      streams.push_back(sub.stream);
    }
    for (int i = 0; i < 6; ++i) {
      Outcome o = drain(*streams[i]);
      EXPECT_EQ(o.tokens, want[round ? 5 - i : i]) << "round " << round << " sequence " << i;
      EXPECT_EQ(o.end.reason, StopReason::MaxTokens);
      EXPECT_EQ(o.end.completion_tokens, 12);
    }
    EXPECT_GT(sched.stats().steps, 12);
  }
}

// Speculation changes how many tokens a step makes, never which: every slot's last token and
// drafts are verified in the step's one forward pass beside the others' rows and prompt chunks,
// and the greedy tokens are the plain Generator's, at 1 and 2 drafts, in fresh slots and in
// reused ones (the MTP state truncated with the cache). A random MTP module's drafts are rarely
// accepted, so most steps roll the caches back: the path that must be exact.
TEST(BatchScheduler, SpeculativeGreedyEqualsPlainDecoding) {
  Model2 m(/*mtp=*/true);
  ASSERT_TRUE(m.model->has_mtp());
  std::vector<std::vector<int32_t>> want;
  for (int i = 0; i < 5; ++i) want.push_back(alone(*m.model, greedy(prompt(i), 14)));
  for (int64_t draft : {1, 2}) {
    SchedulerOptions opt;
    opt.slots = 3;
    opt.max_batch_rows = 3 * (draft + 1) + 2;  // room for prompt chunks beside the verifications
    opt.max_queue = 5;
    opt.context = kContext;
    opt.draft = draft;
    BatchScheduler sched(*m.model, tokenizer(), opt);
    for (int round = 0; round < 2; ++round) {  // round 1 reuses the cached prefixes
      std::vector<std::shared_ptr<SequenceStream>> streams;
      for (int i = 0; i < 5; ++i) {
        auto sub = sched.submit(greedy(prompt(round ? 4 - i : i), 14));
        ASSERT_EQ(sub.admission, BatchScheduler::Admission::Queued);
        streams.push_back(sub.stream);
      }
      for (int i = 0; i < 5; ++i) {
        Outcome o = drain(*streams[i]);
        const int k = round ? 4 - i : i;
        EXPECT_EQ(o.tokens, want[k]) << "draft " << draft << " round " << round << " seq " << k;
        EXPECT_EQ(o.end.completion_tokens, 14);
        // Each step drafts up to `draft`, fewer only where max_tokens leaves less room.
        EXPECT_GE(o.end.drafted, 13 / (draft + 1));
        EXPECT_LE(o.end.accepted_drafts, o.end.drafted);
      }
    }
    ASSERT_TRUE(sched.wait_idle(kWait));
    const SpeculativeStats sp = sched.stats().speculative;
    EXPECT_EQ(sp.emitted, 10 * 13);  // every token but the first of each comes from a step
    EXPECT_GE(sp.steps, 10 * 13 / (draft + 1));
  }
}

// Sampled, where drafts are often accepted (a high temperature flattens p and q alike): the
// scheduler draws exactly what a speculative Generator with the same seeds draws, so the
// acceptance, the bonus token and the per-request draft seed run as in Generator, whose output
// distribution test_speculative checks.
TEST(BatchScheduler, SpeculativeSamplingMatchesTheSpeculativeGenerator) {
  Model2 m(/*mtp=*/true);
  auto request = [](int i) {
    SequenceRequest r;
    r.prompt = prompt(i);
    r.sampling.temperature = 3;
    r.sampling.seed = 100 + i;
    r.stop.max_new_tokens = 16;
    return r;
  };
  std::vector<std::vector<int32_t>> want;
  for (int i = 0; i < 4; ++i) want.push_back(alone(*m.model, request(i), /*draft=*/2));
  SchedulerOptions opt;
  opt.slots = 2;
  opt.max_batch_rows = 8;
  opt.context = kContext;
  opt.draft = 2;
  BatchScheduler sched(*m.model, tokenizer(), opt);
  std::vector<std::shared_ptr<SequenceStream>> streams;
  for (int i = 0; i < 4; ++i) streams.push_back(sched.submit(request(i)).stream);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(drain(*streams[i]).tokens, want[i]) << "sequence " << i;
  ASSERT_TRUE(sched.wait_idle(kWait));
  const SpeculativeStats sp = sched.stats().speculative;
  EXPECT_GT(sp.acceptance_rate(), 0.2) << "the acceptance path must be exercised";
  EXPECT_GT(sp.tokens_per_step(), 1.2);
}

// A step ends at the first token that ends the sequence, whatever drafts follow it: stop strings
// and EOS ids end a speculative sequence where the Generator ends it, with the same text. Greedy
// against plain decoding; sampled at temperature 3 (drafts often accepted, so a stop often falls
// before accepted drafts) against the speculative Generator with the same seeds.
TEST(BatchScheduler, SpeculativeSequencesStopWhereTheGeneratorStops) {
  Model2 m(/*mtp=*/true);
  constexpr int64_t kDraft = 3;
  std::vector<SequenceRequest> reqs;
  std::vector<GenerationResult> want;  // first: the model's pool runs one forward at a time
  for (int i = 0; i < 3; ++i) {
    for (const bool sampled : {false, true}) {
      SequenceRequest base = greedy(prompt(i), 14);
      if (sampled) {
        base.sampling.temperature = 3;
        base.sampling.seed = 7 + i;
      }
      const int64_t ref_draft = sampled ? kDraft : 0;
      const std::vector<int32_t> w = alone(*m.model, base, ref_draft);
      SequenceRequest by_string = base, by_eos = base;
      by_string.stop.stop_strings = {tokenizer().decode(std::span(w).subspan(6, 2), true)};
      by_eos.stop.eos_ids = {w[5]};
      for (const SequenceRequest& r : {by_string, by_eos}) {
        if (!r.stop.stop_strings.empty() && r.stop.stop_strings[0].empty()) continue;
        reqs.push_back(r);
        want.push_back(reference(*m.model, r, ref_draft));
      }
    }
  }
  SchedulerOptions opt;
  opt.slots = 3;
  opt.max_batch_rows = 12;
  opt.max_queue = static_cast<int32_t>(reqs.size());
  opt.context = kContext;
  opt.draft = kDraft;
  BatchScheduler sched(*m.model, tokenizer(), opt);
  std::vector<std::shared_ptr<SequenceStream>> streams;
  for (const auto& r : reqs) streams.push_back(sched.submit(r).stream);
  for (size_t i = 0; i < reqs.size(); ++i) {
    std::string text;
    std::vector<int32_t> tokens;
    for (SequenceEvent e; streams[i]->next(e, kWait);) {
      text += e.text;
      if (e.kind == SequenceEvent::Kind::End) {
        EXPECT_EQ(e.reason, want[i].reason) << "request " << i;
        break;
      }
      tokens.push_back(e.id);
    }
    EXPECT_EQ(tokens, want[i].tokens) << "request " << i;
    EXPECT_EQ(text, want[i].text) << "request " << i;
    EXPECT_LT(tokens.size(), 14u) << "request " << i << " stopped early";
  }
}

TEST(BatchScheduler, SpeculationNeedsAnMtpModuleAndRoomForTheDrafts) {
  Model2 plain;
  SchedulerOptions opt;
  opt.context = kContext;
  opt.draft = 1;
  EXPECT_THROW(BatchScheduler(*plain.model, tokenizer(), opt), Error);
  Model2 mtp(/*mtp=*/true);
  opt.slots = 4;
  opt.max_batch_rows = 7;  // 4 slots need 8 rows at one draft
  EXPECT_THROW(BatchScheduler(*mtp.model, tokenizer(), opt), Error);
  opt.max_batch_rows = 8;
  opt.draft = 17;
  EXPECT_THROW(BatchScheduler(*mtp.model, tokenizer(), opt), Error);
}

TEST(BatchScheduler, APromptSharingAPrefixReusesTheSlotsCache) {
  Model2 m;
  SchedulerOptions opt;
  opt.slots = 2;
  opt.context = kContext;
  BatchScheduler sched(*m.model, tokenizer(), opt);
  Outcome first = drain(*sched.submit(greedy(prompt(3), 5)).stream);
  std::vector<int32_t> longer = prompt(3);
  longer.insert(longer.end(), first.tokens.begin(), first.tokens.end());  // a follow-up turn
  Outcome second = drain(*sched.submit(greedy(longer, 5)).stream);
  // The prompt and the fed replies' tokens (all but the last) were cached.
  EXPECT_EQ(second.end.cached_tokens, static_cast<int64_t>(prompt(3).size() + 4));
  Outcome again = drain(*sched.submit(greedy(prompt(3), 5)).stream);
  EXPECT_EQ(again.tokens, first.tokens);
  EXPECT_EQ(again.end.cached_tokens, static_cast<int64_t>(prompt(3).size()) - 1);
}

TEST(BatchScheduler, CancellingFreesTheSlotAtOnce) {
  Model2 m;
  SchedulerOptions opt;
  opt.slots = 1;
  opt.context = kContext;
  BatchScheduler sched(*m.model, tokenizer(), opt);
  auto long_one = sched.submit(greedy(prompt(1), 1000)).stream;
  SequenceEvent e;
  ASSERT_TRUE(long_one->next(e, kWait));
  long_one->cancel();
  Outcome rest = drain(*long_one);
  EXPECT_EQ(rest.end.reason, StopReason::Interrupted);
  EXPECT_LT(rest.end.completion_tokens, kContext - 10);
  Outcome next = drain(*sched.submit(greedy(prompt(2), 3)).stream);
  EXPECT_EQ(next.tokens.size(), 3u);
  EXPECT_TRUE(sched.wait_idle(kWait));
  EXPECT_EQ(sched.stats().busy_slots, 0);
}

TEST(BatchScheduler, CancelAllEndsWhatRunsAndWaitsButNotWhatComesLater) {
  Model2 m;
  SchedulerOptions opt;
  opt.slots = 1;
  opt.max_queue = 2;
  opt.context = kContext;
  BatchScheduler sched(*m.model, tokenizer(), opt);
  auto running = sched.submit(greedy(prompt(1), 1000)).stream;
  auto queued = sched.submit(greedy(prompt(2), 1000)).stream;
  SequenceEvent e;
  ASSERT_TRUE(running->next(e, kWait));
  sched.cancel_all();
  EXPECT_EQ(drain(*running).end.reason, StopReason::Interrupted);
  EXPECT_EQ(drain(*queued).end.reason, StopReason::Interrupted);
  Outcome later = drain(*sched.submit(greedy(prompt(1), 4)).stream);
  EXPECT_EQ(later.end.reason, StopReason::MaxTokens);
  EXPECT_EQ(later.tokens.size(), 4u);
}

TEST(BatchScheduler, TheQueueIsBoundedAndShutDownRefuses) {
  Model2 m;
  SchedulerOptions opt;
  opt.slots = 1;
  opt.max_queue = 1;
  opt.context = kContext;
  BatchScheduler sched(*m.model, tokenizer(), opt);
  int refused = 0;
  std::vector<std::shared_ptr<SequenceStream>> held;
  for (int i = 0; i < 3; ++i) {
    auto sub = sched.submit(greedy(prompt(1), 100));
    if (sub.admission == BatchScheduler::Admission::QueueFull) ++refused;
    if (sub.stream) held.push_back(sub.stream);
  }
  EXPECT_GE(refused, 1);
  sched.shut_down();
  EXPECT_EQ(sched.submit(greedy(prompt(1), 1)).admission, BatchScheduler::Admission::ShuttingDown);
  for (auto& s : held) EXPECT_EQ(drain(*s).end.reason, StopReason::MaxTokens);  // drained
  EXPECT_TRUE(sched.wait_idle(kWait));
}

TEST(BatchScheduler, RequestsThatCannotRunAreErrors) {
  Model2 m;
  SchedulerOptions opt;
  opt.context = 16;
  BatchScheduler sched(*m.model, tokenizer(), opt);
  EXPECT_THROW(sched.submit(greedy({}, 1)), Error);
  EXPECT_THROW(sched.submit(greedy({1, 320}, 1)), Error);
  std::vector<int32_t> sixteen(16, 5);
  EXPECT_THROW(sched.submit(greedy(sixteen, 1)), Error);
  SequenceRequest r = greedy({1, 2}, 1);
  r.top_logprobs = 21;
  EXPECT_THROW(sched.submit(r), Error);
}

}  // namespace
}  // namespace dsv3

// Continuous batching for a server (llama.cpp's server shape, ARCHITECTURE habit 14): one engine
// thread owns the model, the slots and their caches; other threads submit sequences and read what
// they produce through a SequenceStream. Each engine step runs ONE forward pass (model/batch.h)
// holding, for every decoding slot, the rows of its next step (its last token; with speculation,
// that token and its MTP drafts, each row with logits: runtime/speculative_mtp.h), then chunks of
// the prompts still being prefilled, up to a row budget, so that a long prompt does not stall the
// others. A finished or cancelled sequence frees its slot at once; the slot keeps its cache, and a
// new prompt sharing a prefix with it reuses those positions (KvCache::truncate to the shared
// prefix). No HTTP and no JSON here: apps/server maps requests and responses.
//
// Batched = alone: the inference GEMMs are row-independent (model.h, Precision::Inference) and
// attention runs per sequence over its own cache, so a sequence's logits, and its greedy tokens,
// do not depend on what else is in the batch.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "model/model.h"
#include "runtime/generate.h"
#include "runtime/kv_cache.h"
#include "runtime/sampler.h"
#include "runtime/speculative_mtp.h"
#include "tokenizer/tokenizer.h"

namespace dsv3 {

// Most log-probabilities a token reports beside its own (OpenAI's top_logprobs limit).
constexpr int32_t kMaxTopLogprobs = 20;

struct SequenceRequest {
  std::vector<int32_t> prompt;  // the whole prompt; cached prefixes are found by the scheduler
  SamplingParams sampling;
  StopConditions stop;        // max_new_tokens is capped by what the context leaves
  int32_t top_logprobs = -1;  // -1: none; 0 .. kMaxTopLogprobs: the token's and the n likeliest
};

struct TokenLogprob {
  int32_t id = 0;
  float logprob = 0;  // log-softmax of the model's logits (before penalties and temperature)
};

// What a sequence produces, in order: one Token event per sampled token (the EOS that ends it
// included), then one End event.
struct SequenceEvent {
  enum class Kind { Token, End } kind = Kind::Token;
  int32_t id = -1;
  // Text released now: whole UTF-8 characters, special tokens left out, cut before a stop
  // string. On End: the tail held back until then.
  std::string text;
  TokenLogprob chosen;            // when top_logprobs >= 0
  std::vector<TokenLogprob> top;  // the top_logprobs likeliest, most likely first
  // End only.
  StopReason reason = StopReason::MaxTokens;
  int64_t prompt_tokens = 0, cached_tokens = 0, completion_tokens = 0;
  // With speculation: the drafts proposed for this sequence and those the model accepted.
  int64_t drafted = 0, accepted_drafts = 0;
  std::string error;  // non-empty: the sequence failed (the model threw)
};

// The reading end of one submitted sequence. The engine pushes; one reader pops.
class SequenceStream {
 public:
  // The next event, waiting at most `timeout`; false when none came.
  bool next(SequenceEvent& e, std::chrono::milliseconds timeout);
  // Asks the engine to end the sequence (StopReason::Interrupted) and free its slot at its next
  // step. Safe from any thread, any number of times.
  void cancel() { cancelled_.store(true, std::memory_order_relaxed); }
  bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }

 private:
  friend class BatchScheduler;
  void push(SequenceEvent e);

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<SequenceEvent> events_;
  std::atomic<bool> cancelled_{false};
};

struct SchedulerOptions {
  int32_t slots = 4;             // sequences decoded together
  int64_t context = 4096;        // positions per slot: prompt + completion
  int64_t max_batch_rows = 512;  // rows of one step: decode rows first, then prompt chunks
  int32_t max_queue = 16;        // sequences waiting for a slot; more are refused
  DType cache_dtype = DType::F32;
  // Speculative decoding with the model's MTP module: drafts per step of each decoding slot
  // (1 .. 16), 0 for none. Every slot then needs draft + 1 rows a step (max_batch_rows).
  int64_t draft = 0;
};

struct SchedulerStats {
  int64_t requests = 0;           // sequences admitted to a slot
  int64_t prompt_tokens = 0;      // prompt tokens run through the model (reused ones left out)
  int64_t cached_tokens = 0;      // prompt tokens reused from a slot's cache
  int64_t completion_tokens = 0;  // tokens sampled
  int64_t steps = 0;              // forward passes
  int64_t queued = 0, busy_slots = 0, slots = 0;
  double busy_seconds = 0;       // time spent in steps
  SpeculativeStats speculative;  // every slot's, since the start (zero without speculation)
};

struct ForwardActs;  // model/activations.h

class BatchScheduler {
 public:
  // The model and tokenizer must outlive the scheduler. Starts the engine thread.
  BatchScheduler(Model& model, const Tokenizer& tok, SchedulerOptions opt);
  ~BatchScheduler();  // cancels what runs and joins the engine thread
  BatchScheduler(const BatchScheduler&) = delete;
  BatchScheduler& operator=(const BatchScheduler&) = delete;

  enum class Admission { Queued, QueueFull, ShuttingDown };
  struct Submitted {
    Admission admission = Admission::Queued;
    std::shared_ptr<SequenceStream> stream;  // set when Queued
  };
  // Throws Error (with a hint) for a request that can never run: an empty prompt, ids outside
  // the vocabulary, a prompt that does not leave one position of the context, bad sampling
  // values. Otherwise queues it unless the queue is full or the scheduler is shutting down.
  Submitted submit(SequenceRequest req);

  // Stops admitting new sequences (submit answers ShuttingDown); what is queued or running goes
  // on. wait_idle() returns true once nothing is, false at the deadline.
  void shut_down();
  bool wait_idle(std::chrono::milliseconds timeout);
  // Cancels every sequence queued or running now (they end as StopReason::Interrupted).
  void cancel_all();

  SchedulerStats stats() const;
  const SchedulerOptions& options() const { return opt_; }

 private:
  struct Slot;
  void run();
  void admit();  // queued sequences into free slots (engine thread)
  bool step();   // one forward pass; false when there was nothing to run
  void sample_slot(Slot& s, float* logits);
  // A token the slot's sampler has accepted, drawn from the logits `row`: its event, then the
  // end of the sequence if it ends it (false), else true. `pos`: the token's position.
  bool emit(Slot& s, int32_t id, std::span<const float> row, int64_t pos);
  void verify_slot(Slot& s, float* logits, const float* hidden);  // speculative: accept()
  void finish(Slot& s, StopReason reason, const std::string& error = {});

  Model& model_;
  const Tokenizer& tok_;
  SchedulerOptions opt_;
  int64_t vocab_ = 0;
  std::vector<std::unique_ptr<Slot>> slots_;  // and their streams: the engine thread's alone
  std::unique_ptr<ForwardActs> acts_;

  mutable std::mutex mu_;  // queue_, accepting_, stop_, stats_
  std::condition_variable cv_;
  struct Queued {
    SequenceRequest req;
    std::shared_ptr<SequenceStream> stream;
  };
  std::deque<Queued> queue_;
  bool accepting_ = true, stop_ = false, cancel_all_ = false;
  SchedulerStats stats_;
  uint64_t tick_ = 0;  // admission order, for the least recently used free slot
  std::thread engine_;
};

}  // namespace dsv3

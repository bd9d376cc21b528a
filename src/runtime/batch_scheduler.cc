#include "runtime/batch_scheduler.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "base/error.h"
#include "base/timer.h"
#include "model/activations.h"
#include "model/batch.h"
#include "runtime/stream_text.h"

namespace dsv3 {

bool SequenceStream::next(SequenceEvent& e, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return !events_.empty(); })) return false;
  e = std::move(events_.front());
  events_.pop_front();
  return true;
}

void SequenceStream::push(SequenceEvent e) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(std::move(e));
  }
  cv_.notify_all();
}

// One slot: a cache that outlives the sequences using it (for prefix reuse) and, while busy, the
// sequence's sampler, text filters and progress.
struct BatchScheduler::Slot {
  Slot(CacheLayout layout, DType dtype) : cache(layout, dtype) {}
  KvCache cache;
  std::vector<int32_t> cached;  // the ids whose positions the cache holds
  uint64_t last_used = 0;

  std::shared_ptr<SequenceStream> stream;  // null: free
  SequenceRequest req;
  std::optional<Sampler> sampler;
  std::optional<StreamDecoder> decoder;
  std::optional<StopStringFilter> stops;
  size_t next_prompt = 0;  // the first prompt token not in the cache yet
  // The rows this step runs for the slot and which get logits: None (a prompt chunk that is not
  // the last), Last (sample the next token), All (a speculative step: the last token and its
  // drafts, which MtpSpeculator::accept keeps while the logits agree).
  std::vector<int32_t> feed;
  // With speculation: the slot's MTP cache and hidden states, kept beside `cache` (same
  // positions) for prefix reuse, and its counts when the sequence started.
  std::unique_ptr<MtpSpeculator> spec;
  SpeculativeStats spec_start;
  LogitsRows logits = LogitsRows::None;
  int64_t batch_seq = -1;  // its sequence in this step's batch, -1 when not in it
  int64_t reused = 0, generated = 0, max_new = 0;
};

BatchScheduler::BatchScheduler(Model& model, const Tokenizer& tok, SchedulerOptions opt)
    : model_(model),
      tok_(tok),
      opt_(opt),
      vocab_(model.config().vocab_size),
      acts_(std::make_unique<ForwardActs>()) {
  DSV3_CHECK(opt_.slots >= 1 && opt_.slots <= 1024,
             "serve: --slots must be in 1 .. 1024, not " + std::to_string(opt_.slots));
  DSV3_CHECK(opt_.context >= 2 && opt_.context <= model.config().max_position_embeddings,
             "serve: the context per slot must be in 2 .. " +
                 std::to_string(model.config().max_position_embeddings) +
                 " (the model's max_position_embeddings), not " + std::to_string(opt_.context),
             "set --ctx lower");
  DSV3_CHECK(opt_.max_batch_rows >= opt_.slots,
             "serve: the rows of a step (" + std::to_string(opt_.max_batch_rows) +
                 ") must hold one decode row per slot (" + std::to_string(opt_.slots) + ")");
  DSV3_CHECK(opt_.max_queue >= 1, "serve: the queue must hold at least one request");
  DSV3_CHECK(opt_.draft >= 0 && opt_.draft <= 16,
             "serve: --draft must be in 1 .. 16, not " + std::to_string(opt_.draft));
  DSV3_CHECK(opt_.max_batch_rows >= opt_.slots * (opt_.draft + 1),
             "serve: the rows of a step (" + std::to_string(opt_.max_batch_rows) +
                 ") must hold the last token and the " + std::to_string(opt_.draft) +
                 " drafts of every slot (" + std::to_string(opt_.slots * (opt_.draft + 1)) + ")",
             "raise --batch-rows or lower --slots or --draft");
  for (int32_t i = 0; i < opt_.slots; ++i) {
    slots_.push_back(std::make_unique<Slot>(model.cache_layout(), opt_.cache_dtype));
    if (opt_.draft > 0)  // Error at start-up for a model without MTP
      slots_.back()->spec = std::make_unique<MtpSpeculator>(model, opt_.draft, opt_.cache_dtype,
                                                            tok.vocab_size(), /*draft_seed=*/0);
  }
  stats_.slots = opt_.slots;
  engine_ = std::thread([this] { run(); });
}

BatchScheduler::~BatchScheduler() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    accepting_ = false;
  }
  cv_.notify_all();
  engine_.join();
}

BatchScheduler::Submitted BatchScheduler::submit(SequenceRequest req) {
  const int64_t n = static_cast<int64_t>(req.prompt.size());
  DSV3_CHECK(n > 0, "the prompt is empty", "give at least one token of prompt");
  for (int32_t id : req.prompt)
    DSV3_CHECK(id >= 0 && id < vocab_, "token id " + std::to_string(id) +
                                           " is outside the vocabulary (0 .. " +
                                           std::to_string(vocab_ - 1) + ")");
  DSV3_CHECK(n < opt_.context,
             "the prompt has " + std::to_string(n) + " tokens but the context of a slot is " +
                 std::to_string(opt_.context) + " (--ctx): it must leave room for one token",
             "shorten the messages");
  DSV3_CHECK(req.top_logprobs >= -1 && req.top_logprobs <= kMaxTopLogprobs,
             "top_logprobs must be in 0 .. " + std::to_string(kMaxTopLogprobs));
  req.sampling.validate();
  Submitted out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!accepting_) {
      out.admission = Admission::ShuttingDown;
      return out;
    }
    if (static_cast<int32_t>(queue_.size()) >= opt_.max_queue) {
      out.admission = Admission::QueueFull;
      return out;
    }
    out.stream = std::make_shared<SequenceStream>();
    queue_.push_back({std::move(req), out.stream});
    stats_.queued = static_cast<int64_t>(queue_.size());
  }
  cv_.notify_all();
  return out;
}

void BatchScheduler::shut_down() {
  std::lock_guard<std::mutex> lock(mu_);
  accepting_ = false;
}

bool BatchScheduler::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return queue_.empty() && stats_.busy_slots == 0; });
}

void BatchScheduler::cancel_all() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& q : queue_) q.stream->cancel();
    cancel_all_ = true;
  }
  cv_.notify_all();
}

SchedulerStats BatchScheduler::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void BatchScheduler::run() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty() || stats_.busy_slots > 0; });
      if (stop_) break;
    }
    admit();
    Timer t;
    const bool ran = step();
    std::lock_guard<std::mutex> lock(mu_);
    if (ran) {
      stats_.busy_seconds += t.seconds();
      ++stats_.steps;
    }
    int64_t busy = 0;
    for (auto& s : slots_) busy += s->stream != nullptr;
    stats_.busy_slots = busy;
    cv_.notify_all();  // wait_idle
  }
  // Stopping: whatever still runs or waits ends as interrupted.
  for (auto& s : slots_)
    if (s->stream) finish(*s, StopReason::Interrupted);
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& q : queue_) {
    SequenceEvent e;
    e.kind = SequenceEvent::Kind::End;
    e.reason = StopReason::Interrupted;
    q.stream->push(std::move(e));
  }
  queue_.clear();
}

namespace {

size_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

}  // namespace

void BatchScheduler::admit() {
  std::unique_lock<std::mutex> lock(mu_);
  if (cancel_all_) {  // what runs now; sequences admitted below are not concerned
    for (auto& s : slots_)
      if (s->stream) s->stream->cancel();
    cancel_all_ = false;
  }
  while (!queue_.empty()) {
    Queued q = std::move(queue_.front());
    if (q.stream->cancelled()) {  // gone before it started
      queue_.pop_front();
      SequenceEvent e;
      e.kind = SequenceEvent::Kind::End;
      e.reason = StopReason::Interrupted;
      q.stream->push(std::move(e));
      continue;
    }
    // The free slot sharing the longest prefix with the prompt, else the least recently used.
    Slot* best = nullptr;
    size_t best_prefix = 0;
    for (auto& s : slots_) {
      if (s->stream) continue;
      const size_t p = common_prefix(s->cached, q.req.prompt);
      if (!best || p > best_prefix || (p == best_prefix && s->last_used < best->last_used)) {
        best = s.get();
        best_prefix = p;
      }
    }
    if (!best) {
      queue_.front() = std::move(q);
      break;
    }
    queue_.pop_front();
    Slot& s = *best;
    // At least the last prompt token runs again: its logits give the first sampled token.
    const size_t keep = std::min(best_prefix, q.req.prompt.size() - 1);
    s.cache.truncate(static_cast<int64_t>(keep));
    s.cached.resize(keep);
    if (s.spec) {
      s.spec->truncate(static_cast<int64_t>(keep));
      s.spec->seed_drafts(q.req.sampling.seed ^ kDraftSeedStream);
      s.spec_start = s.spec->stats();
    }
    s.req = std::move(q.req);
    s.sampler.emplace(s.req.sampling);
    s.sampler->add_context(s.req.prompt);
    s.decoder.emplace(tok_, /*skip_special=*/true);
    s.stops.emplace(s.req.stop.stop_strings);
    s.next_prompt = keep;
    s.feed.clear();
    s.reused = static_cast<int64_t>(keep);
    s.generated = 0;
    s.max_new = std::min<int64_t>(s.req.stop.max_new_tokens,
                                  opt_.context - static_cast<int64_t>(s.req.prompt.size()));
    s.last_used = ++tick_;
    s.stream = q.stream;
    ++stats_.requests;
    stats_.cached_tokens += s.reused;
    ++stats_.busy_slots;
  }
  stats_.queued = static_cast<int64_t>(queue_.size());
}

bool BatchScheduler::step() {
  for (auto& s : slots_)
    if (s->stream && s->stream->cancelled()) finish(*s, StopReason::Interrupted);

  // Decode rows first (each running sequence advances every step), then prompt chunks in
  // admission order up to the row budget.
  Batch batch;
  int64_t rows_left = opt_.max_batch_rows;
  std::vector<Slot*> order;
  for (auto& s : slots_)
    if (s->stream) order.push_back(s.get());
  std::sort(order.begin(), order.end(), [](const Slot* a, const Slot* b) {
    const bool da = a->next_prompt == a->req.prompt.size(),
               db = b->next_prompt == b->req.prompt.size();
    return da != db ? da : a->last_used < b->last_used;
  });
  for (Slot* s : order) {
    s->batch_seq = -1;
    if (s->next_prompt < s->req.prompt.size()) {  // prefilling
      const int64_t left = static_cast<int64_t>(s->req.prompt.size() - s->next_prompt);
      const int64_t n = std::min({left, rows_left, kPrefillChunk});
      if (n <= 0) continue;
      s->feed.assign(s->req.prompt.begin() + static_cast<int64_t>(s->next_prompt),
                     s->req.prompt.begin() + static_cast<int64_t>(s->next_prompt) + n);
      s->logits = n == left ? LogitsRows::Last : LogitsRows::None;
    } else {
      // s->feed holds the token sampled last step; a speculative step adds its drafts (the
      // constructor made room for them in the row budget).
      if (s->feed.empty()) continue;
      if (s->spec) {
        const int32_t last = s->feed[0];
        const std::span<const int32_t> rows =
            s->spec->draft(s->cache, last, *s->sampler, s->max_new - s->generated);
        s->feed.assign(rows.begin(), rows.end());
        s->logits = LogitsRows::All;
      } else {
        s->logits = LogitsRows::Last;
      }
      if (static_cast<int64_t>(s->feed.size()) > rows_left) continue;
    }
    s->batch_seq = batch.add(&s->cache, s->feed, s->logits);
    rows_left -= static_cast<int64_t>(s->feed.size());
  }
  if (batch.rows() == 0) return false;

  std::vector<float> logits(batch.logit_rows().size() * static_cast<size_t>(vocab_));
  // The speculators keep the main model's hidden state of every position they see.
  std::vector<float> hidden(opt_.draft > 0 ? batch.rows() * model_.config().hidden_size : 0);
  try {
    model_.forward(batch, *acts_, logits.data(), hidden.empty() ? nullptr : hidden.data());
  } catch (const Error& e) {
    // Requests are checked at submit, so this is a fault of the model itself: the caches are
    // unchanged (Model::forward), and the sequences in the batch end with the message.
    for (Slot* s : order)
      if (s->batch_seq >= 0) finish(*s, StopReason::Interrupted, e.what());
    return true;
  }
  int64_t prompt_rows = 0;
  for (Slot* s : order) {
    if (s->batch_seq < 0) continue;
    const float* seq_hidden = hidden.empty() ? nullptr
                                             : hidden.data() + batch.seqs()[s->batch_seq].begin *
                                                                   model_.config().hidden_size;
    if (s->logits == LogitsRows::All) {
      const int64_t first =
          batch.last_logit_index(s->batch_seq) - static_cast<int64_t>(s->feed.size()) + 1;
      verify_slot(*s, logits.data() + first * vocab_, seq_hidden);
      continue;
    }
    if (s->spec) s->spec->observe(seq_hidden, s->feed);
    s->cached.insert(s->cached.end(), s->feed.begin(), s->feed.end());
    if (s->next_prompt < s->req.prompt.size()) {
      s->next_prompt += s->feed.size();
      prompt_rows += static_cast<int64_t>(s->feed.size());
    }
    s->feed.clear();
    if (s->logits != LogitsRows::None)
      sample_slot(*s, logits.data() + batch.last_logit_index(s->batch_seq) * vocab_);
  }
  std::lock_guard<std::mutex> lock(mu_);
  stats_.prompt_tokens += prompt_rows;
  if (opt_.draft > 0) {
    stats_.speculative = {};
    for (auto& s : slots_) stats_.speculative += s->spec->stats();
  }
  return true;
}

void BatchScheduler::verify_slot(Slot& s, float* logits, const float* hidden) {
  // Token j of the step comes from row j (the rows are last, draft 1 .. n) at position L + 1 + j.
  const int64_t L = static_cast<int64_t>(s.cached.size());
  const int32_t last = s.feed[0];  // finish() clears feed
  std::vector<int32_t> out;
  bool ended = false;
  s.spec->accept(s.cache, logits, hidden, *s.sampler, [&](int32_t id) {
    const int64_t j = static_cast<int64_t>(out.size());
    out.push_back(id);
    const std::span<const float> row(logits + j * vocab_, static_cast<size_t>(vocab_));
    ended = !emit(s, id, row, L + 1 + j);
    return !ended;
  });
  // The cache holds the last token and every emitted one but the final one (the next feed).
  s.cached.push_back(last);
  s.cached.insert(s.cached.end(), out.begin(), out.end() - 1);
  s.feed.clear();
  if (!ended) s.feed.assign(1, out.back());
}

void BatchScheduler::sample_slot(Slot& s, float* row) {
  std::span<float> z(row, static_cast<size_t>(vocab_));
  // Rows past the tokenizer's vocabulary are the embedding's padding: no text, never sampled.
  for (int64_t v = std::max<int64_t>(tok_.vocab_size(), 0); v < vocab_; ++v) z[v] = -INFINITY;
  const int32_t id = s.sampler->sample(z);
  s.sampler->accept(id);
  if (emit(s, id, z, static_cast<int64_t>(s.cached.size()))) s.feed.assign(1, id);
}

bool BatchScheduler::emit(Slot& s, int32_t id, std::span<const float> z, int64_t pos) {
  ++s.generated;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.completion_tokens;
  }
  SequenceEvent e;
  e.id = id;
  if (s.req.top_logprobs >= 0) {
    double mx = -INFINITY, sum = 0;
    for (float v : z) mx = std::max(mx, static_cast<double>(v));
    for (float v : z) sum += std::exp(static_cast<double>(v) - mx);
    const double lse = mx + std::log(sum);
    auto lp = [&](int32_t t) { return static_cast<float>(static_cast<double>(z[t]) - lse); };
    e.chosen = {id, lp(id)};
    std::vector<int32_t> ids(static_cast<size_t>(vocab_));
    for (int32_t t = 0; t < vocab_; ++t) ids[t] = t;
    const size_t k = std::min<size_t>(static_cast<size_t>(s.req.top_logprobs), ids.size());
    std::partial_sort(ids.begin(), ids.begin() + static_cast<int64_t>(k), ids.end(),
                      [&](int32_t a, int32_t b) { return z[a] > z[b] || (z[a] == z[b] && a < b); });
    for (size_t i = 0; i < k; ++i) e.top.push_back({ids[i], lp(ids[i])});
  }
  const auto& eos = s.req.stop.eos_ids;
  std::optional<StopReason> end;
  if (std::find(eos.begin(), eos.end(), id) != eos.end()) {
    end = StopReason::Eos;
  } else {
    e.text = s.stops->push(s.decoder->push(id));
    if (s.stops->stopped())
      end = StopReason::StopString;
    else if (s.generated >= s.max_new)
      end = StopReason::MaxTokens;
    else if (pos >= opt_.context)
      end = StopReason::ContextFull;
  }
  s.stream->push(std::move(e));
  if (end) finish(s, *end);
  return !end;
}

void BatchScheduler::finish(Slot& s, StopReason reason, const std::string& error) {
  SequenceEvent e;
  e.kind = SequenceEvent::Kind::End;
  e.reason = reason;
  e.error = error;
  if (!s.stops->stopped() && error.empty()) {
    e.text = s.stops->push(s.decoder->flush());
    if (!s.stops->stopped()) e.text += s.stops->flush();
    if (s.stops->stopped()) e.reason = StopReason::StopString;
  }
  e.prompt_tokens = static_cast<int64_t>(s.req.prompt.size());
  e.cached_tokens = s.reused;
  e.completion_tokens = s.generated;
  if (s.spec) {  // complete: accept() counts a step's drafts before it emits their tokens
    const SpeculativeStats sp = s.spec->stats().since(s.spec_start);
    e.drafted = sp.drafted;
    e.accepted_drafts = sp.accepted;
  }
  // A prompt cut short leaves its cached ids consistent: only what ran is in `cached`.
  s.feed.clear();
  s.sampler.reset();
  s.decoder.reset();
  s.stops.reset();
  std::shared_ptr<SequenceStream> stream = std::move(s.stream);
  s.stream.reset();
  stream->push(std::move(e));
}

}  // namespace dsv3

// dsv3 serve: an OpenAI-compatible HTTP server with continuous batching and a chat page
// (docs/SERVER.md). The model work is runtime/batch_scheduler's engine thread; apps/server holds
// the HTTP side. SIGTERM or Ctrl-C drains: new requests get 503, running ones finish (or are
// cancelled after --drain-timeout), and the process exits 0.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "apps/dsv3/commands.h"
#include "apps/dsv3/inference.h"
#include "apps/server/http_server.h"
#include "base/error.h"
#include "runtime/batch_scheduler.h"
#include "runtime/generation_config.h"

namespace dsv3::cli {
namespace {

const char kUsage[] =
    "usage: dsv3 serve -m DIR [--host H] [--port N] [--slots N] [--ctx N] [--api-key KEY]\n"
    "                  [--queue N] [--max-body BYTES] [--batch-rows N]\n"
    "                  [--speculative mtp [--draft N]] [-t N]\n\n"
    "Serves the model in DIR over HTTP: the OpenAI API (POST /v1/chat/completions,\n"
    "POST /v1/completions, GET /v1/models), GET /health, GET /metrics (Prometheus) and a chat\n"
    "page at /. Up to --slots requests are decoded together, one forward pass per step; more wait\n"
    "in a queue of --queue, and beyond that get 429. Sampling defaults come from the folder's\n"
    "generation_config.json; each request may override them. See docs/SERVER.md.\n\n"
    "  -m, --model DIR      Hugging Face model folder with a tokenizer (and a chat template for\n"
    "                       /v1/chat/completions)\n"
    "  --host H             address to listen on (default 127.0.0.1; 0.0.0.0 for every one)\n"
    "  --port N             port (default 8080; 0 picks a free one, printed at start)\n"
    "  --slots N            sequences decoded together (default 4)\n"
    "  --ctx N              positions per slot, prompt + reply (default: the model's context, at\n"
    "                       most 4096); max_tokens is capped by what the prompt leaves\n"
    "  --api-key KEY        require 'Authorization: Bearer KEY' on /v1/* and /metrics (default:\n"
    "                       $DSV3_API_KEY, else no key)\n"
    "  --queue N            requests waiting for a slot before 429 (default 16)\n"
    "  --max-body BYTES     largest request body; larger ones get 413 (default 1048576)\n"
    "  --batch-rows N       rows of one forward step: a decode row per running sequence, then\n"
    "                       chunks of waiting prompts (default 512)\n"
    "  --read-timeout S     close the connection of a client that sends nothing for S seconds\n"
    "                       while its request is incomplete (default 10)\n"
    "  --drain-timeout S    on SIGTERM, seconds to let running requests finish before they are\n"
    "                       cancelled (default 30)\n"
    "  --alias NAME         the model's name in /v1/models and responses (default: the folder's)\n"
    "  --cache-dtype T      attention cache storage: f32 (default) or bf16 (half the memory)\n"
    "  --speculative mtp    speculative decoding: the model's MTP module drafts tokens and each\n"
    "                       step verifies every slot's drafts in its one forward pass; output as\n"
    "                       without (greedy: the same tokens). Refused for a model without MTP\n"
    "  --draft N            drafts per slot and step, 1 .. 16 (default 1, the depth MTP is\n"
    "                       trained for); --batch-rows must hold (N + 1) rows per slot\n"
    "  -t, --threads N      worker threads of the model (default: physical cores)\n";

std::string folder_name(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  const size_t slash = dir.rfind('/');
  return slash == std::string::npos ? dir : dir.substr(slash + 1);
}

}  // namespace

int cmd_serve(Args& a) {
  if (a.help()) {
    std::printf("%s", kUsage);
    return 0;
  }
  const std::string dir = a.require({"-m", "--model"}, "model folder");
  server::HttpOptions http;
  http.host = a.get_or({"--host"}, "127.0.0.1");
  const int64_t port = a.int_or({"--port"}, 8080);
  DSV3_CHECK(port >= 0 && port <= 65535,
             "--port must be in 0 .. 65535, not " + std::to_string(port));
  http.port = static_cast<int>(port);
  const char* env_key = std::getenv("DSV3_API_KEY");
  http.api_key = a.get_or({"--api-key"}, env_key ? env_key : "");
  const int64_t max_body = a.int_or({"--max-body"}, 1 << 20);
  DSV3_CHECK(max_body >= 1024, "--max-body must be at least 1024 bytes");
  http.max_body_bytes = static_cast<size_t>(max_body);
  const int64_t read_timeout = a.int_or({"--read-timeout"}, 10);
  DSV3_CHECK(read_timeout >= 1 && read_timeout <= 3600,
             "--read-timeout must be in 1 .. 3600 seconds");
  http.read_timeout_s = static_cast<int>(read_timeout);
  SchedulerOptions so;
  const int64_t slots = a.int_or({"--slots"}, 4);
  DSV3_CHECK(slots >= 1 && slots <= 1024, "--slots must be in 1 .. 1024");
  so.slots = static_cast<int32_t>(slots);
  const int64_t ctx = a.int_or({"--ctx"}, 0);
  const int64_t queue = a.int_or({"--queue"}, 16);
  DSV3_CHECK(queue >= 1 && queue <= 100000, "--queue must be in 1 .. 100000");
  so.max_queue = static_cast<int32_t>(queue);
  so.max_batch_rows = a.int_or({"--batch-rows"}, 512);
  const double drain_s = a.double_or({"--drain-timeout"}, 30);
  DSV3_CHECK(drain_s >= 0, "--drain-timeout cannot be negative");
  const std::string alias = a.get_or({"--alias"}, folder_name(dir));
  so.cache_dtype = cache_dtype_arg(a);
  so.draft = speculative_flags(a);
  const int threads = threads_arg(a);
  a.finish();

  // SIGTERM and SIGINT are blocked in every thread (threads inherit the mask) and taken by
  // sigwait below; a client that closes its socket must not kill the process by SIGPIPE.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  if (http.api_key.empty() && http.host != "127.0.0.1" && http.host != "localhost" &&
      http.host != "::1")
    std::fprintf(stderr,
                 "warning: listening on %s without --api-key: anyone who reaches it can use it\n",
                 http.host.c_str());
  const GenerationDefaults defaults = load_generation_defaults(dir);
  InferenceModel m(dir, threads, /*with_tokenizer=*/true);
  const int64_t max_pos = m.config().max_position_embeddings;
  so.context = ctx > 0 ? ctx : std::min<int64_t>(max_pos, 4096);
  DSV3_CHECK(so.context <= max_pos, "--ctx " + std::to_string(so.context) +
                                        " is over the model's context of " +
                                        std::to_string(max_pos) + " positions");
  if (m.tokenizer().chat_template().empty())
    std::fprintf(stderr,
                 "warning: %s has no chat template: /v1/chat/completions will answer 400; "
                 "/v1/completions works\n",
                 dir.c_str());
  BatchScheduler sched(m.model(), m.tokenizer(), so);
  server::HttpServer srv(
      sched, server::ApiModel{alias, m.tokenizer(), m.config(), defaults, so.context}, http);
  const int bound = srv.bind();
  std::printf(
      "dsv3 serve: listening on http://%s:%d (%d slots of %lld positions, queue %d%s)\n",
      http.host.c_str(), bound, so.slots, static_cast<long long>(so.context), so.max_queue,
      so.draft > 0 ? (", speculative mtp, " + std::to_string(so.draft) + " drafts").c_str() : "");
  std::fflush(stdout);

  std::atomic<bool> served{false};
  std::thread watcher([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    std::fprintf(stderr, "dsv3 serve: %s: draining (up to %.0f s)\n",
                 sig == SIGTERM ? "SIGTERM" : "SIGINT", drain_s);
    srv.draining();
    sched.shut_down();
    const auto drain = std::chrono::milliseconds(static_cast<int64_t>(drain_s * 1000));
    if (!sched.wait_idle(drain)) {
      std::fprintf(stderr, "dsv3 serve: cancelling the requests still running\n");
      sched.cancel_all();
      sched.wait_idle(std::chrono::seconds(10));
    }
    // A stop() that comes before serve() has started listening does nothing: repeat it.
    while (!served) {
      srv.stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  const bool ok = srv.serve();  // returns after srv.stop()
  served = true;
  if (!ok) pthread_kill(watcher.native_handle(), SIGTERM);
  watcher.join();
  DSV3_CHECK(ok, "serve: the HTTP server stopped on an error");
  const SchedulerStats st = sched.stats();
  std::fprintf(stderr, "dsv3 serve: stopped after %lld requests, %lld tokens generated\n",
               static_cast<long long>(st.requests), static_cast<long long>(st.completion_tokens));
  const SpeculativeStats& sp = st.speculative;
  if (sp.steps > 0)
    std::fprintf(
        stderr,
        "dsv3 serve: speculative (mtp): %lld of %lld drafts accepted (%.1f%%), %.2f tokens "
        "per step\n",
        static_cast<long long>(sp.accepted), static_cast<long long>(sp.drafted),
        100.0 * sp.acceptance_rate(), sp.tokens_per_step());
  return 0;
}

}  // namespace dsv3::cli

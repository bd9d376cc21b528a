#include "apps/server/metrics.h"

#include <cstdio>

namespace dsv3::server {
namespace {

void metric(std::string& out, const char* name, const char* type, const char* help, double v) {
  char value[64];
  std::snprintf(value, sizeof value, "%.17g", v);
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" +
         name + " " + value + "\n";
}

}  // namespace

std::string metrics_text(const SchedulerStats& s, int64_t http_errors) {
  std::string out;
  auto d = [](int64_t x) { return static_cast<double>(x); };
  metric(out, "dsv3_requests_total", "counter", "Sequences admitted to a slot.", d(s.requests));
  metric(out, "dsv3_prompt_tokens_total", "counter", "Prompt tokens run through the model.",
         d(s.prompt_tokens));
  metric(out, "dsv3_prompt_tokens_cached_total", "counter",
         "Prompt tokens reused from a slot's cache.", d(s.cached_tokens));
  metric(out, "dsv3_completion_tokens_total", "counter", "Tokens generated.",
         d(s.completion_tokens));
  metric(out, "dsv3_steps_total", "counter", "Forward passes of the engine.", d(s.steps));
  metric(out, "dsv3_busy_seconds_total", "counter", "Seconds the engine spent in forward steps.",
         s.busy_seconds);
  metric(out, "dsv3_http_errors_total", "counter", "Responses with a status of 400 or more.",
         d(http_errors));
  metric(out, "dsv3_queue_length", "gauge", "Requests waiting for a slot.", d(s.queued));
  metric(out, "dsv3_slots_busy", "gauge", "Slots decoding or prefilling a sequence.",
         d(s.busy_slots));
  metric(out, "dsv3_slots", "gauge", "Slots (--slots).", d(s.slots));
  metric(out, "dsv3_tokens_per_second", "gauge",
         "Generated tokens per second of engine time since the start.",
         s.busy_seconds > 0 ? d(s.completion_tokens) / s.busy_seconds : 0.0);
  // --speculative mtp (zero without it).
  const SpeculativeStats& sp = s.speculative;
  metric(out, "dsv3_speculative_steps_total", "counter",
         "Speculative verification steps (a slot's last token and drafts in one pass).",
         d(sp.steps));
  metric(out, "dsv3_speculative_drafts_total", "counter",
         "Draft tokens proposed by the MTP module.", d(sp.drafted));
  metric(out, "dsv3_speculative_drafts_accepted_total", "counter",
         "Draft tokens the main model accepted.", d(sp.accepted));
  metric(out, "dsv3_speculative_tokens_total", "counter",
         "Tokens the speculative steps produced (accepted drafts plus one per step at most).",
         d(sp.emitted));
  metric(out, "dsv3_speculative_acceptance_rate", "gauge",
         "Accepted drafts over proposed ones since the start.", sp.acceptance_rate());
  metric(out, "dsv3_speculative_tokens_per_step", "gauge",
         "Mean tokens one speculative step produced since the start.", sp.tokens_per_step());
  return out;
}

}  // namespace dsv3::server

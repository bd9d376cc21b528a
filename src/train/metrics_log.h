// A training run's metrics.jsonl: one JSON object per line, written by the trainer after each step
// (and with val_loss after each evaluation), read back by `dsv3 plot`. Keys: step (required), loss,
// ce, mtp_loss, balance_loss, lr, grad_norm, tokens_per_s, val_loss (numbers) and maxvio (an array,
// one MaxVio per MoE layer, SPEC §2); all but step optional per line, unknown keys ignored (later
// trainers may log more), null taken as absent.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dsv3 {

struct MetricsRow {
  int64_t step = 0;
  std::optional<double> loss, ce, mtp_loss, balance_loss, lr, grad_norm, tokens_per_s, val_loss;
  std::vector<double> maxvio;  // per MoE layer; empty when not logged
};

struct MetricsLog {
  std::vector<MetricsRow> rows;  // file order
  // The last line had no newline and did not parse: a run still writing it. It is left out.
  bool dropped_partial_line = false;
};

// Throws Error naming `source` and the 1-based line for a line that is not a JSON object, lacks an
// integer step >= 0, or has a field of the wrong type. Blank lines are skipped.
MetricsLog parse_metrics(std::string_view text, const std::string& source);
MetricsLog read_metrics(const std::string& path);

}  // namespace dsv3

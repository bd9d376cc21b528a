// Reading metrics.jsonl, line by line, with errors that name the file and the line.
#include "train/metrics_log.h"

#include "base/error.h"
#include "base/file.h"
#include "base/json.h"

namespace dsv3 {
namespace {

MetricsRow parse_row(std::string_view line, const std::string& where) {
  const Json j = Json::parse(line, where);
  DSV3_CHECK(j.is_object(), where + ": expected a JSON object");
  MetricsRow r;
  const Json* step = j.find("step");
  DSV3_CHECK(step && step->is_number(), where + ": no step");
  r.step = step->as_int(where + ": step");
  DSV3_CHECK(r.step >= 0, where + ": step " + std::to_string(r.step) + " is negative");
  auto number = [&](const char* key, std::optional<double>& out) {
    const Json* v = j.find(key);
    if (!v || v->is_null()) return;
    DSV3_CHECK(v->is_number(), where + ": " + key + " must be a number");
    out = v->as_double();
  };
  number("loss", r.loss);
  number("ce", r.ce);
  number("mtp_loss", r.mtp_loss);
  number("balance_loss", r.balance_loss);
  number("lr", r.lr);
  number("grad_norm", r.grad_norm);
  number("tokens_per_s", r.tokens_per_s);
  number("val_loss", r.val_loss);
  if (const Json* v = j.find("maxvio"); v && !v->is_null()) {
    DSV3_CHECK(v->is_array(), where + ": maxvio must be an array of numbers (one per MoE layer)");
    for (const Json& x : v->as_array()) {
      DSV3_CHECK(x.is_number(), where + ": maxvio must be an array of numbers (one per MoE layer)");
      r.maxvio.push_back(x.as_double());
    }
  }
  return r;
}

}  // namespace

MetricsLog parse_metrics(std::string_view text, const std::string& source) {
  MetricsLog log;
  size_t pos = 0;
  int64_t line_no = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    const bool last_unterminated = end == std::string_view::npos;
    if (last_unterminated) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    const std::string where = source + ":" + std::to_string(line_no);
    try {
      log.rows.push_back(parse_row(line, where));
    } catch (const Error&) {
      // The trainer appends whole lines; a last line without its newline is being written now.
      if (!last_unterminated) throw;
      log.dropped_partial_line = true;
    }
  }
  return log;
}

MetricsLog read_metrics(const std::string& path) {
  return parse_metrics(read_file(path), path);
}

}  // namespace dsv3

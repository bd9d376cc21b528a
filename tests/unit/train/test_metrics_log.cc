// metrics.jsonl as dsv3 plot reads it: optional fields, nulls, unknown keys, blank and CRLF lines,
// an unfinished last line, and errors that name the file and the line.
#include "train/metrics_log.h"

#include <gtest/gtest.h>

#include <string>

#include "base/error.h"

namespace dsv3 {
namespace {

TEST(MetricsLog, ReadsWhatTheTrainerWrites) {
  const MetricsLog log = parse_metrics(
      "{\"step\": 1, \"loss\": 9.5, \"lr\": 1e-5, \"grad_norm\": 3, \"tokens_per_s\": 100, "
      "\"maxvio\": [0.5, 1.5], \"mtp_loss\": 9.9, \"balance_loss\": 1e-4, \"new_key\": [1]}\n"
      "\n"
      "{\"step\": 1, \"val_loss\": 9.7, \"loss\": null}\r\n"
      "{\"step\": 2, \"loss\": 9}\n",
      "m.jsonl");
  ASSERT_EQ(log.rows.size(), 3u);
  EXPECT_FALSE(log.dropped_partial_line);
  const MetricsRow& a = log.rows[0];
  EXPECT_EQ(a.step, 1);
  EXPECT_EQ(*a.loss, 9.5);
  EXPECT_EQ(*a.lr, 1e-5);
  EXPECT_EQ(*a.grad_norm, 3.0);
  EXPECT_EQ(*a.tokens_per_s, 100.0);
  EXPECT_EQ(*a.mtp_loss, 9.9);
  EXPECT_EQ(*a.balance_loss, 1e-4);
  EXPECT_EQ(a.maxvio, (std::vector<double>{0.5, 1.5}));
  EXPECT_FALSE(a.val_loss);
  EXPECT_FALSE(log.rows[1].loss);  // null: absent
  EXPECT_EQ(*log.rows[1].val_loss, 9.7);
  EXPECT_EQ(*log.rows[2].loss, 9.0);
  EXPECT_TRUE(log.rows[2].maxvio.empty());
}

TEST(MetricsLog, LeavesOutAnUnfinishedLastLine) {
  MetricsLog log = parse_metrics("{\"step\": 1, \"loss\": 2}\n{\"step\": 2, \"lo", "m");
  EXPECT_EQ(log.rows.size(), 1u);
  EXPECT_TRUE(log.dropped_partial_line);
  // A complete last line without its newline is kept.
  log = parse_metrics("{\"step\": 1, \"loss\": 2}\n{\"step\": 2}", "m");
  EXPECT_EQ(log.rows.size(), 2u);
  EXPECT_FALSE(log.dropped_partial_line);
}

void expect_error(const std::string& text, const std::string& needle) {
  try {
    parse_metrics(text, "run/metrics.jsonl");
    ADD_FAILURE() << "no error for: " << text;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(MetricsLog, NamesFileAndLine) {
  const std::string ok = "{\"step\": 1}\n";
  expect_error(ok + "{\"step\": 2, \"loss\": \"x\"}\n",
               "run/metrics.jsonl:2: loss must be a number");
  expect_error(ok + ok + "[1, 2]\n", "run/metrics.jsonl:3: expected a JSON object");
  expect_error("{\"loss\": 1}\n", "run/metrics.jsonl:1: no step");
  expect_error("{\"step\": -4}\n", "step -4 is negative");
  expect_error("{\"step\": 1.5}\n", "run/metrics.jsonl:1: step");
  expect_error("{\"step\": 1, \"maxvio\": 0.3}\n", "maxvio must be an array");
  expect_error("{\"step\": 1, \"maxvio\": [0.3, \"a\"]}\n", "maxvio must be an array");
  expect_error("{\"step\": 1}\nnot json\n", "run/metrics.jsonl:2: JSON error");
  expect_error("{\"step\": 1, \"step\": 2}\n", "run/metrics.jsonl:1");  // duplicate key
}

}  // namespace
}  // namespace dsv3

// GET /metrics: the scheduler's counters in Prometheus' text format (version 0.0.4).
#pragma once
#include <cstdint>
#include <string>

#include "runtime/batch_scheduler.h"

namespace dsv3::server {

// http_errors: responses with a status >= 400.
std::string metrics_text(const SchedulerStats& s, int64_t http_errors);

}  // namespace dsv3::server

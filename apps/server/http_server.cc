#include "apps/server/http_server.h"

#include <httplib.h>

#include <chrono>
#include <cstdio>
#include <ctime>

#include "apps/server/metrics.h"
#include "apps/server/web_page.h"
#include "base/error.h"
#include "base/strings.h"

namespace dsv3::server {
namespace {

using httplib::DataSink;
using httplib::Request;
using httplib::Response;
using Handled = httplib::Server::HandlerResponse;

void send_error(Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(error_json(e), "application/json");
}

ApiError error(int status, std::string message, std::string type, std::string code = {}) {
  ApiError e;
  e.status = status;
  e.message = std::move(message);
  e.type = std::move(type);
  e.code = std::move(code);
  return e;
}

int64_t now_s() {
  return static_cast<int64_t>(std::time(nullptr));
}

// Time a streaming handler waits for the next event before it writes an SSE comment: writing is
// how a client that went away is noticed (the write fails), also while its request is queued.
constexpr auto kHeartbeat = std::chrono::milliseconds(500);

// One generation request, shared by its handler and its stream's content provider.
struct Job {
  ApiRequest req;
  std::shared_ptr<SequenceStream> stream;
  std::optional<ResponseBuilder> out;
};

}  // namespace

class HttpServer::Impl {
 public:
  Impl(BatchScheduler& sched, ApiModel model, HttpOptions opt, std::atomic<bool>& draining)
      : sched_(sched), model_(std::move(model)), opt_(std::move(opt)), draining_(draining) {
    const int threads =
        opt_.threads > 0 ? opt_.threads : sched.options().slots + sched.options().max_queue + 8;
    svr.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    svr.set_payload_max_length(opt_.max_body_bytes);
    svr.set_read_timeout(opt_.read_timeout_s, 0);
    svr.set_pre_routing_handler(
        [this](const Request& req, Response& res) { return authorize(req, res); });
    svr.set_error_handler(httplib::Server::HandlerWithResponse(
        [this](const Request& req, Response& res) { return fill_error(req, res); }));
    svr.set_exception_handler([](const Request&, Response& res, std::exception_ptr ep) {
      std::string what = "unknown";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      send_error(res, error(500, "internal error: " + what, "server_error"));
    });
    svr.Get("/", [](const Request&, Response& res) {
      res.set_content(kWebPage, "text/html; charset=utf-8");
    });
    svr.Get("/health", [this](const Request&, Response& res) {
      const bool up = !draining_;
      res.status = up ? 200 : 503;
      res.set_content(up ? R"({"status":"ok"})" : R"({"status":"shutting down"})",
                      "application/json");
    });
    svr.Get("/metrics", [this](const Request&, Response& res) {
      res.set_content(metrics_text(sched_.stats(), http_errors_.load()),
                      "text/plain; version=0.0.4");
    });
    svr.Get("/v1/models", [this](const Request&, Response& res) {
      res.set_content(models_json(model_, started_), "application/json");
    });
    svr.Post("/v1/chat/completions",
             [this](const Request& req, Response& res) { generate(req, res, Endpoint::Chat); });
    svr.Post("/v1/completions", [this](const Request& req, Response& res) {
      generate(req, res, Endpoint::Completion);
    });
  }

  httplib::Server svr;

  int bind() {
    int port = opt_.port;
    bool ok = false;
    if (port == 0) {
      port = svr.bind_to_any_port(opt_.host);
      ok = port > 0;
    } else {
      ok = svr.bind_to_port(opt_.host, port);
    }
    DSV3_CHECK(ok, "serve: cannot listen on " + opt_.host + ":" + std::to_string(opt_.port),
               "is another server on that port? give another --port (0 picks a free one) or "
               "--host");
    return port;
  }

 private:
  // With --api-key every route but the page and /health needs the key (default deny), compared
  // in constant time (RELIABILITY §2).
  Handled authorize(const Request& req, Response& res) {
    if (opt_.api_key.empty() || req.path == "/" || req.path == "/health") return Handled::Unhandled;
    const std::string want = "Bearer " + opt_.api_key;
    const std::string got = req.get_header_value("Authorization");
    unsigned char diff = got.size() != want.size();
    for (size_t i = 0; i < want.size(); ++i)
      diff |= static_cast<unsigned char>(want[i] ^ (i < got.size() ? got[i] : 0));
    if (diff == 0) return Handled::Unhandled;
    send_error(res, error(401,
                          "invalid or missing API key: send the header "
                          "'Authorization: Bearer KEY' with the key given to --api-key",
                          "invalid_request_error", "invalid_api_key"));
    return Handled::Handled;
  }

  // Errors httplib makes itself (413, 404, 400 for a malformed request line) get OpenAI's shape.
  Handled fill_error(const Request& req, Response& res) {
    ++http_errors_;
    if (!res.body.empty()) return Handled::Unhandled;  // ours already
    std::string msg;
    if (res.status == 413)
      msg = "the request body is over the limit of " + std::to_string(opt_.max_body_bytes) +
            " bytes (--max-body)";
    else if (res.status == 404)
      msg = "no endpoint " + req.method + " " + req.path + ": see GET /v1/models, POST " +
            "/v1/chat/completions, POST /v1/completions, GET /health, GET /metrics";
    else if (res.status == 400)
      msg = "the HTTP request is malformed or its body did not arrive within " +
            std::to_string(opt_.read_timeout_s) + " s (--read-timeout)";
    else
      msg = "HTTP " + std::to_string(res.status);
    send_error(
        res, error(res.status, msg, res.status >= 500 ? "server_error" : "invalid_request_error"));
    return Handled::Handled;
  }

  void generate(const Request& http, Response& res, Endpoint ep) {
    auto job = std::make_shared<Job>();
    try {
      const Json body = parse_body(http.body);
      job->req = ep == Endpoint::Chat ? parse_chat_request(body, model_)
                                      : parse_completion_request(body, model_);
    } catch (const ApiError& e) {
      return send_error(res, e);
    } catch (const Error& e) {  // the tokenizer or the template on odd input
      return send_error(res, error(400, e.what(), "invalid_request_error"));
    }
    BatchScheduler::Submitted sub;
    try {
      sub = sched_.submit(job->req.seq);
    } catch (const Error& e) {
      return send_error(res, error(400, e.what(), "invalid_request_error"));
    }
    if (sub.admission == BatchScheduler::Admission::QueueFull) {
      res.set_header("Retry-After", "1");
      return send_error(res,
                        error(429,
                              "the server is busy: " + std::to_string(sched_.options().max_queue) +
                                  " requests are already waiting for a slot (--queue); retry later",
                              "rate_limit_error", "queue_full"));
    }
    if (sub.admission == BatchScheduler::Admission::ShuttingDown) {
      res.set_header("Retry-After", "5");
      return send_error(res,
                        error(503, "the server is shutting down", "server_error", "shutting_down"));
    }
    job->stream = sub.stream;
    const char* prefix = ep == Endpoint::Chat ? "chatcmpl-" : "cmpl-";
    job->out.emplace(job->req, model_, prefix + std::to_string(next_id_++), now_s());
    if (!job->req.stream) return respond_whole(*job, res);
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [job](size_t, DataSink& sink) {
          const std::string start = job->out->stream_start();
          if (!start.empty() && !sink.write(start.data(), start.size())) return false;
          for (SequenceEvent e;;) {
            if (!job->stream->next(e, kHeartbeat)) {
              if (!sink.write(": waiting\n\n", 11)) return false;
              continue;
            }
            const std::string rec = job->out->stream_records(e);
            if (!rec.empty() && !sink.write(rec.data(), rec.size())) return false;
            if (e.kind == SequenceEvent::Kind::End) {
              sink.done();
              return true;
            }
          }
        },
        // Not a success: the client went away (a write failed): the slot is freed.
        [job](bool success) {
          if (!success) job->stream->cancel();
        });
  }

  static void respond_whole(Job& job, Response& res) {
    for (SequenceEvent e;;) {
      if (!job.stream->next(e, std::chrono::seconds(1))) continue;
      job.out->add(e);
      if (e.kind == SequenceEvent::Kind::End) break;
    }
    if (job.out->failure()) return send_error(res, *job.out->failure());
    res.set_content(job.out->body(), "application/json");
  }

  BatchScheduler& sched_;
  ApiModel model_;
  HttpOptions opt_;
  std::atomic<bool>& draining_;
  std::atomic<uint64_t> next_id_{1};
  std::atomic<int64_t> http_errors_{0};
  const int64_t started_ = now_s();
};

HttpServer::HttpServer(BatchScheduler& sched, ApiModel model, HttpOptions opt)
    : impl_(std::make_unique<Impl>(sched, std::move(model), std::move(opt), draining_)) {}

HttpServer::~HttpServer() = default;

int HttpServer::bind() {
  return impl_->bind();
}

bool HttpServer::serve() {
  return impl_->svr.listen_after_bind();
}

void HttpServer::stop() {
  impl_->svr.stop();
}

}  // namespace dsv3::server

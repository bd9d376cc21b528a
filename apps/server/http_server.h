// The HTTP side of dsv3 serve, on Debian's cpp-httplib: routes, the API key, body limits, the
// bounded queue's 429/503 answers, Server-Sent Events and the embedded web page. Its threads only
// parse, queue and stream; the BatchScheduler's engine thread does all the model work. A client
// that goes away mid-stream cancels its sequence, which frees the slot at the engine's next step.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "apps/server/openai_api.h"
#include "runtime/batch_scheduler.h"

namespace dsv3::server {

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                          // 0: any free port (bind() says which)
  std::string api_key;                      // "": no authentication
  size_t max_body_bytes = size_t{1} << 20;  // larger bodies get 413
  int threads = 0;                          // HTTP worker threads; 0: 2 (slots + queue) + 32
  int read_timeout_s = 10;                  // a sender slower than this gets its connection closed
};

class HttpServer {
 public:
  HttpServer(BatchScheduler& sched, ApiModel model, HttpOptions opt);
  ~HttpServer();
  // Binds the listening socket; returns the port. Throws Error (with a hint) when it cannot.
  int bind();
  // Serves until stop(); false when it failed. Returns once the workers have finished their
  // connections.
  bool serve();
  // Stops accepting connections and ends serve(); /health answers 503 from the call of
  // draining() on.
  void draining() { draining_ = true; }
  void stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
  std::atomic<bool> draining_{false};
};

}  // namespace dsv3::server

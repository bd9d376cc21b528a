// The OpenAI API of dsv3 serve (docs/SERVER.md): request bodies checked field by field and turned
// into the scheduler's SequenceRequest; the scheduler's SequenceEvents turned into OpenAI's
// responses, whole or as Server-Sent Events. All of the server's JSON lives here; the engine
// (runtime/batch_scheduler.h) sees token ids only.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/json.h"
#include "model/config.h"
#include "runtime/batch_scheduler.h"
#include "runtime/generation_config.h"
#include "runtime/stream_text.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::server {

// An error as OpenAI reports it: {"error": {"message", "type", "param", "code"}} with an HTTP
// status. Thrown by the parsers below.
struct ApiError {
  int status = 400;
  std::string message;
  std::string param;  // the offending field, "" when none
  std::string type = "invalid_request_error";
  std::string code;
};
std::string error_json(const ApiError& e);

// What the API layer knows of the model served.
struct ApiModel {
  std::string id;  // the name /v1/models reports (the folder's name)
  const Tokenizer& tok;
  const ModelConfig& config;
  GenerationDefaults defaults;
  int64_t context = 0;  // positions per slot (--ctx)
};

enum class Endpoint { Chat, Completion };

struct ApiRequest {
  Endpoint endpoint = Endpoint::Chat;
  SequenceRequest seq;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool logprobs = false;
  bool starts_in_reasoning = false;  // the chat prompt ends inside <think> (R1)
};

// The body as a JSON object: 400 for invalid UTF-8, malformed JSON or another type.
Json parse_body(std::string_view body);
// POST /v1/chat/completions and POST /v1/completions. Throws ApiError.
ApiRequest parse_chat_request(const Json& body, const ApiModel& m);
ApiRequest parse_completion_request(const Json& body, const ApiModel& m);

// GET /v1/models.
std::string models_json(const ApiModel& m, int64_t created);

// One response: fed the sequence's events in order, it gives the SSE records to send (streaming)
// or, after the End event, the whole response body.
class ResponseBuilder {
 public:
  ResponseBuilder(const ApiRequest& req, const ApiModel& m, std::string id, int64_t created);

  // Streaming: the "data: ...\n\n" records this event makes (possibly none); after End they
  // finish with "data: [DONE]\n\n".
  std::string stream_records(const SequenceEvent& e);
  // The first record of a chat stream (the assistant's role), sent before any token.
  std::string stream_start();
  // Non-streaming: takes the event; after End, body() is the response.
  void add(const SequenceEvent& e);
  std::string body() const;
  // Set by an End event with an error: the response is this error instead.
  const std::optional<ApiError>& failure() const { return failure_; }

 private:
  struct Delta {
    std::string content, reasoning;
    Json logprobs;  // this event's entries (chat: objects; completions: parallel lists)
  };
  Delta take(const SequenceEvent& e);
  Json usage() const;
  Json chunk(Json choice) const;
  Json logprob_entry(const SequenceEvent& e) const;
  const char* finish_reason() const;

  const ApiRequest& req_;
  const ApiModel& m_;
  std::string id_;
  int64_t created_;
  std::optional<ReasoningSplitter> splitter_;
  // Accumulated (non-streaming) and the end.
  std::string content_, reasoning_;
  Json logprobs_ = Json::array();
  Json completion_logprobs_;  // {"tokens", "token_logprobs", "top_logprobs", "text_offset"}
  size_t text_offset_ = 0;
  bool ended_ = false, saw_reasoning_ = false;
  SequenceEvent end_;
  std::optional<ApiError> failure_;
};

}  // namespace dsv3::server

// The OpenAI API layer of dsv3 serve (apps/server/openai_api.h) on synthetic scheduler events:
// R1 reasoning split at <think> ... </think> into reasoning_content, whole and in streamed deltas
// (tags split across tokens included); finish reasons and usage; request fields mapped to the
// scheduler's SequenceRequest; OpenAI's error shape. The real model and HTTP: tests/serve/*.mjs.
#include "apps/server/openai_api.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "model/presets.h"

namespace dsv3::server {
namespace {

struct Api {
  Api()
      : tok(Tokenizer::load(std::string(DSV3_SOURCE_DIR) + "/assets/tokenizers/dsv3-en-4k")),
        config(preset_config("tiny")),
        model{"tiny", tok, config, GenerationDefaults{}, 64} {}
  Tokenizer tok;
  ModelConfig config;
  ApiModel model;
};

SequenceEvent token(std::string text) {
  SequenceEvent e;
  e.id = 7;
  e.text = std::move(text);
  return e;
}

SequenceEvent end(StopReason reason, std::string text = {}) {
  SequenceEvent e;
  e.kind = SequenceEvent::Kind::End;
  e.reason = reason;
  e.text = std::move(text);
  e.prompt_tokens = 10;
  e.cached_tokens = 3;
  e.completion_tokens = 4;
  return e;
}

// The streamed deltas of one field, concatenated, and the last finish_reason.
struct Streamed {
  std::string reasoning, content, finish;
  bool done = false;
};
Streamed parse_records(const std::string& sse) {
  Streamed s;
  size_t pos = 0;
  while ((pos = sse.find("data: ", pos)) != std::string::npos) {
    const size_t stop = sse.find("\n\n", pos);
    const std::string data = sse.substr(pos + 6, stop - pos - 6);
    pos = stop;
    if (data == "[DONE]") {
      s.done = true;
      continue;
    }
    const Json j = Json::parse(data);
    for (const Json& c : j.at("choices").as_array()) {
      const Json& d = c.at("delta");
      if (const Json* r = d.find("reasoning_content")) s.reasoning += r->as_string();
      if (const Json* t = d.find("content")) s.content += t->as_string();
      if (!c.at("finish_reason").is_null()) s.finish = c.at("finish_reason").as_string();
    }
  }
  return s;
}

const std::vector<SequenceEvent> kR1Reply = {
    token("Let me"), token(" think</th"), token("ink>The answer"), end(StopReason::Eos, " is 4")};

TEST(OpenAiApi, ReasoningSplitsAtTheThinkTagsWhole) {
  Api api;
  ApiRequest req;
  req.starts_in_reasoning = true;  // R1's template ends with <think>
  ResponseBuilder b(req, api.model, "chatcmpl-1", 5);
  for (const auto& e : kR1Reply) b.add(e);
  const Json r = Json::parse(b.body());
  const Json& msg = r.at("choices").as_array()[0].at("message");
  EXPECT_EQ(msg.at("reasoning_content").as_string(), "Let me think");
  EXPECT_EQ(msg.at("content").as_string(), "The answer is 4");
  EXPECT_EQ(r.at("choices").as_array()[0].at("finish_reason").as_string(), "stop");
  EXPECT_EQ(r.at("object").as_string(), "chat.completion");
  const Json& u = r.at("usage");
  EXPECT_EQ(u.at("prompt_tokens").as_int(), 10);
  EXPECT_EQ(u.at("completion_tokens").as_int(), 4);
  EXPECT_EQ(u.at("total_tokens").as_int(), 14);
  EXPECT_EQ(u.at("prompt_tokens_details").at("cached_tokens").as_int(), 3);
}

// --speculative mtp: the drafts as OpenAI's predicted tokens, only when there were drafts.
TEST(OpenAiApi, UsageCountsTheDraftsWithSpeculation) {
  Api api;
  ApiRequest req;
  ResponseBuilder plain(req, api.model, "chatcmpl-1", 5);
  plain.add(end(StopReason::Eos, "x"));
  EXPECT_EQ(Json::parse(plain.body()).at("usage").find("completion_tokens_details"), nullptr);
  ResponseBuilder spec(req, api.model, "chatcmpl-2", 5);
  SequenceEvent e = end(StopReason::Eos, "x");
  e.drafted = 5;
  e.accepted_drafts = 2;
  spec.add(e);
  const Json r = Json::parse(spec.body());
  const Json& d = r.at("usage").at("completion_tokens_details");
  EXPECT_EQ(d.at("accepted_prediction_tokens").as_int(), 2);
  EXPECT_EQ(d.at("rejected_prediction_tokens").as_int(), 3);
}

TEST(OpenAiApi, ReasoningSplitsAtTheThinkTagsStreamed) {
  Api api;
  ApiRequest req;
  req.stream = true;
  req.include_usage = true;
  req.starts_in_reasoning = true;
  ResponseBuilder b(req, api.model, "chatcmpl-1", 5);
  std::string sse = b.stream_start();
  EXPECT_NE(sse.find("\"role\": \"assistant\""), std::string::npos) << sse;
  for (const auto& e : kR1Reply) sse += b.stream_records(e);
  const Streamed s = parse_records(sse);
  EXPECT_EQ(s.reasoning, "Let me think");
  EXPECT_EQ(s.content, "The answer is 4");
  EXPECT_EQ(s.finish, "stop");
  EXPECT_TRUE(s.done);
  EXPECT_NE(sse.find("\"total_tokens\": 14"), std::string::npos) << sse;  // include_usage
  EXPECT_EQ(sse.substr(sse.size() - 14), "data: [DONE]\n\n");
}

TEST(OpenAiApi, AModelOpeningThinkItselfAndCompletionsLeaveTagsInText) {
  Api api;
  ApiRequest chat;
  ResponseBuilder b(chat, api.model, "chatcmpl-2", 5);
  for (const auto& e : {token("<think>hmm</think>"), token("ok"), end(StopReason::MaxTokens)})
    b.add(e);
  const Json msg = Json::parse(b.body()).at("choices").as_array()[0].at("message");
  EXPECT_EQ(msg.at("reasoning_content").as_string(), "hmm");
  EXPECT_EQ(msg.at("content").as_string(), "ok");

  ApiRequest comp;
  comp.endpoint = Endpoint::Completion;
  ResponseBuilder c(comp, api.model, "cmpl-1", 5);
  for (const auto& e : {token("<think>hmm"), end(StopReason::ContextFull)}) c.add(e);
  const Json r = Json::parse(c.body());
  EXPECT_EQ(r.at("choices").as_array()[0].at("text").as_string(), "<think>hmm");
  EXPECT_EQ(r.at("choices").as_array()[0].at("finish_reason").as_string(), "length");
}

TEST(OpenAiApi, RequestFieldsBecomeTheSequenceRequest) {
  Api api;
  const Json body = Json::parse(
      R"({"messages": [{"role": "developer", "content": "Be brief."},
                       {"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
          "temperature": 0, "max_tokens": 1000, "stop": ["\n\n", "END"], "seed": 42,
          "logprobs": true, "top_logprobs": 2, "frequency_penalty": 0.5, "stream": true,
          "stream_options": {"include_usage": true}, "unknown_field": 1})");
  const ApiRequest r = parse_chat_request(body, api.model);
  EXPECT_TRUE(r.seq.sampling.greedy());
  EXPECT_EQ(r.seq.sampling.seed, 42u);
  EXPECT_EQ(r.seq.sampling.frequency_penalty, 0.5);
  EXPECT_EQ(r.seq.stop.stop_strings, (std::vector<std::string>{"\n\n", "END"}));
  EXPECT_EQ(r.seq.top_logprobs, 2);
  EXPECT_TRUE(r.stream && r.include_usage && r.logprobs);
  EXPECT_TRUE(r.starts_in_reasoning);  // dsv3-en's template opens <think>
  // The template renders BOS, "Be brief." and the user turn; max_tokens is capped by --ctx (64).
  EXPECT_EQ(r.seq.prompt[0], api.tok.bos_id());
  EXPECT_EQ(r.seq.stop.max_new_tokens, 64 - static_cast<int64_t>(r.seq.prompt.size()));
  EXPECT_NE(api.tok.decode(r.seq.prompt).find("Be brief."), std::string::npos);
}

TEST(OpenAiApi, ErrorsNameTheFieldInOpenAisShape) {
  Api api;
  try {
    parse_chat_request(Json::parse(R"({"messages": [{"role": "user", "content": "x"}],
                                       "top_p": 1.5})"),
                       api.model);
    FAIL() << "no error";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.param, "top_p");
    const Json j = Json::parse(error_json(e));
    EXPECT_EQ(j.at("error").at("message").as_string(), "top_p must be in [0, 1], not 1.5");
    EXPECT_EQ(j.at("error").at("type").as_string(), "invalid_request_error");
    EXPECT_EQ(j.at("error").at("param").as_string(), "top_p");
    EXPECT_TRUE(j.at("error").at("code").is_null());
  }
  EXPECT_THROW(parse_body("\xff{}"), ApiError);
  EXPECT_THROW(parse_body("[1]"), ApiError);
}

}  // namespace
}  // namespace dsv3::server

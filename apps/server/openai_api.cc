#include "apps/server/openai_api.h"

#include <cmath>
#include <cstdio>

#include "base/error.h"
#include "runtime/chat_session.h"
#include "runtime/generation_policy.h"
#include "tokenizer/utf8.h"

namespace dsv3::server {
namespace {

ApiError bad(std::string message, std::string param = {}) {
  ApiError e;
  e.message = std::move(message);
  e.param = std::move(param);
  return e;
}

// Optional fields of the body, type-checked; null counts as absent (OpenAI's clients send it).
const Json* field(const Json& body, std::string_view key) {
  const Json* v = body.find(key);
  return v && !v->is_null() ? v : nullptr;
}

std::string shortest(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}

std::optional<double> number(const Json& body, const char* key, double lo, double hi) {
  const Json* v = field(body, key);
  if (!v) return std::nullopt;
  if (!v->is_number()) throw bad(std::string(key) + " must be a number", key);
  const double x = v->as_double();
  if (!std::isfinite(x) || x < lo || x > hi)
    throw bad(std::string(key) + " must be in [" + shortest(lo) + ", " + shortest(hi) + "], not " +
                  v->dump(),
              key);
  return x;
}

std::optional<int64_t> integer(const Json& body, const char* key, int64_t lo, int64_t hi) {
  const Json* v = field(body, key);
  if (!v) return std::nullopt;
  if (!v->is_int()) throw bad(std::string(key) + " must be an integer", key);
  const int64_t x = v->as_int();
  if (x < lo || x > hi)
    throw bad(std::string(key) + " must be in " + std::to_string(lo) + " .. " + std::to_string(hi) +
                  ", not " + std::to_string(x),
              key);
  return x;
}

bool boolean(const Json& body, const char* key) {
  const Json* v = field(body, key);
  if (!v) return false;
  if (!v->is_bool()) throw bad(std::string(key) + " must be true or false", key);
  return v->as_bool();
}

// The fields both endpoints share: sampling, stop, max_tokens, stream, n.
ApiRequest common_fields(const Json& body, const ApiModel& m) {
  ApiRequest r;
  if (const Json* model = field(body, "model"); model && !model->is_string())
    throw bad("model must be a string", "model");
  if (integer(body, "n", 1, 1).value_or(1) != 1) throw bad("n must be 1", "n");
  r.stream = boolean(body, "stream");
  if (const Json* so = field(body, "stream_options")) {
    if (!so->is_object()) throw bad("stream_options must be an object", "stream_options");
    r.include_usage = boolean(*so, "include_usage");
  }
  GenerationOverrides o;
  o.temperature = number(body, "temperature", 0, 2);
  o.top_p = number(body, "top_p", 0, 1);
  if (o.top_p && *o.top_p == 0) throw bad("top_p must be above 0", "top_p");
  o.top_k = integer(body, "top_k", 0, INT32_MAX);  // llama.cpp's and vLLM's extension
  o.min_p = number(body, "min_p", 0, 1);
  o.repetition_penalty = number(body, "repetition_penalty", 0.01, 100);
  o.frequency_penalty = number(body, "frequency_penalty", -2, 2);
  o.presence_penalty = number(body, "presence_penalty", -2, 2);
  if (auto seed = integer(body, "seed", INT64_MIN, INT64_MAX))
    o.seed = static_cast<uint64_t>(*seed);
  o.ignore_eos = boolean(body, "ignore_eos");  // llama.cpp's extension: benchmarks, tests
  auto max_tokens = integer(body, "max_completion_tokens", 1, INT64_MAX);
  if (!max_tokens) max_tokens = integer(body, "max_tokens", 1, INT64_MAX);
  o.max_tokens = max_tokens;
  if (const Json* stop = field(body, "stop")) {
    if (stop->is_string()) {
      o.stop_strings.push_back(stop->as_string());
    } else if (stop->is_array() && stop->size() <= 4) {
      for (const Json& s : stop->as_array()) {
        if (!s.is_string()) throw bad("stop must be a string or a list of strings", "stop");
        o.stop_strings.push_back(s.as_string());
      }
    } else {
      throw bad("stop must be a string or a list of at most 4 strings", "stop");
    }
    for (const auto& s : o.stop_strings)
      if (s.empty()) throw bad("stop strings cannot be empty", "stop");
  }
  try {
    GenerationPolicy p = resolve_generation_policy(o, m.defaults, kNoTokenLimit, m.config, m.tok);
    r.seq.sampling = p.sampling;
    r.seq.stop = std::move(p.stop);
  } catch (const Error& e) {
    throw bad(e.what());
  }
  return r;
}

// The text of a message's content: a string, or a list of {"type": "text", "text"} parts.
std::string content_text(const Json& c, const std::string& where) {
  if (c.is_string()) return c.as_string();
  if (!c.is_array()) throw bad(where + " must be a string or a list of text parts", where);
  std::string text;
  for (const Json& part : c.as_array()) {
    const Json* type = part.find("type");
    const Json* t = part.find("text");
    if (!type || !type->is_string() || type->as_string() != "text" || !t || !t->is_string())
      throw bad(where + ": only {\"type\": \"text\", \"text\": ...} parts are supported", where);
    text += t->as_string();
  }
  return text;
}

// The prompt must leave room for one token; max_tokens is capped by what the context leaves.
void fit_context(ApiRequest& r, const ApiModel& m) {
  const int64_t n = static_cast<int64_t>(r.seq.prompt.size());
  const char* param = r.endpoint == Endpoint::Chat ? "messages" : "prompt";
  if (n >= m.context)
    throw bad("the prompt has " + std::to_string(n) + " tokens but the context of a slot is " +
                  std::to_string(m.context) + " tokens (--ctx); shorten the " + param,
              param);
  if (n == 0) throw bad("the prompt is empty", param);
  r.seq.stop.max_new_tokens = std::min(r.seq.stop.max_new_tokens, m.context - n);
}

// A token's text as OpenAI shows it: lossy UTF-8 (a token may hold part of a character) and
// its raw bytes.
Json token_entry(const Tokenizer& tok, int32_t id, float logprob) {
  const int32_t one[1] = {id};
  const std::string raw = tok.decode(one);
  Json bytes = Json::array();
  for (unsigned char c : raw) bytes.push_back(Json(int64_t{c}));
  Json e = Json::object();
  e["token"] = tok::utf8_lossy(raw);
  e["logprob"] = static_cast<double>(logprob);
  e["bytes"] = std::move(bytes);
  return e;
}

}  // namespace

std::string error_json(const ApiError& e) {
  Json err = Json::object();
  err["message"] = e.message;
  err["type"] = e.type;
  err["param"] = e.param.empty() ? Json() : Json(e.param);
  err["code"] = e.code.empty() ? Json() : Json(e.code);
  Json body = Json::object();
  body["error"] = std::move(err);
  return body.dump();
}

Json parse_body(std::string_view body) {
  if (!tok::utf8_valid(body)) throw bad("the request body is not valid UTF-8");
  Json j;
  try {
    j = Json::parse(body, "request body");
  } catch (const Error& e) {
    throw bad(std::string("the request body is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw bad("the request body must be a JSON object");
  return j;
}

ApiRequest parse_chat_request(const Json& body, const ApiModel& m) {
  ApiRequest r = common_fields(body, m);
  r.endpoint = Endpoint::Chat;
  r.logprobs = boolean(body, "logprobs");
  if (auto top = integer(body, "top_logprobs", 0, kMaxTopLogprobs)) {
    if (!r.logprobs) throw bad("top_logprobs needs logprobs: true", "top_logprobs");
    r.seq.top_logprobs = static_cast<int32_t>(*top);
  } else if (r.logprobs) {
    r.seq.top_logprobs = 0;
  }
  const Json* msgs = body.find("messages");
  if (!msgs || !msgs->is_array() || msgs->size() == 0)
    throw bad("messages must be a non-empty list of {role, content} objects", "messages");
  Json messages = Json::array();
  for (size_t i = 0; i < msgs->size(); ++i) {
    const Json& msg = msgs->as_array()[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!msg.is_object()) throw bad(where + " must be an object", where);
    const Json* role = msg.find("role");
    if (!role || !role->is_string()) throw bad(where + ".role must be a string", where + ".role");
    std::string r_name = role->as_string();
    if (r_name == "developer") r_name = "system";  // OpenAI's newer name for it
    if (r_name != "system" && r_name != "user" && r_name != "assistant")
      throw bad(where + ".role '" + role->as_string() +
                    "' is not supported: use system, developer, user or assistant",
                where + ".role");
    const Json* content = field(msg, "content");
    if (!content) throw bad(where + ".content is missing", where + ".content");
    messages.push_back(chat_message(r_name, content_text(*content, where + ".content")));
  }
  std::string prompt;
  try {
    prompt = render_chat(m.tok, messages, /*add_generation_prompt=*/true);
  } catch (const Error& e) {
    throw bad(std::string("the chat template failed on these messages: ") + e.what(), "messages");
  }
  r.starts_in_reasoning = prompt_opens_reasoning(prompt);
  r.seq.prompt = m.tok.encode(prompt, /*add_special_tokens=*/false);  // the template writes BOS
  fit_context(r, m);
  return r;
}

ApiRequest parse_completion_request(const Json& body, const ApiModel& m) {
  ApiRequest r = common_fields(body, m);
  r.endpoint = Endpoint::Completion;
  if (boolean(body, "echo")) throw bad("echo is not supported", "echo");
  if (field(body, "suffix")) throw bad("suffix is not supported", "suffix");
  if (auto lp = integer(body, "logprobs", 0, 5)) {  // the legacy API: how many alternatives
    r.logprobs = true;
    r.seq.top_logprobs = static_cast<int32_t>(*lp);
  }
  const Json* p = field(body, "prompt");
  if (p && p->is_array() && p->size() == 1 && p->as_array()[0].is_string()) p = &p->as_array()[0];
  if (p && p->is_string()) {
    r.seq.prompt = m.tok.encode(p->as_string(), /*add_special_tokens=*/true);
  } else if (p && p->is_array()) {  // token ids
    for (const Json& id : p->as_array()) {
      if (!id.is_int() || id.as_int() < 0 || id.as_int() >= m.config.vocab_size)
        throw bad("prompt: a list prompt holds token ids in 0 .. " +
                      std::to_string(m.config.vocab_size - 1),
                  "prompt");
      r.seq.prompt.push_back(static_cast<int32_t>(id.as_int()));
    }
  } else {
    throw bad("prompt must be a string or a list of token ids", "prompt");
  }
  fit_context(r, m);
  return r;
}

std::string models_json(const ApiModel& m, int64_t created) {
  Json model = Json::object();
  model["id"] = m.id;
  model["object"] = "model";
  model["created"] = created;
  model["owned_by"] = "dsv3";
  Json meta = Json::object();
  meta["n_ctx"] = m.context;
  meta["n_vocab"] = m.config.vocab_size;
  model["meta"] = std::move(meta);
  Json list = Json::object();
  list["object"] = "list";
  list["data"] = Json(Json::Array{std::move(model)});
  return list.dump();
}

ResponseBuilder::ResponseBuilder(const ApiRequest& req, const ApiModel& m, std::string id,
                                 int64_t created)
    : req_(req), m_(m), id_(std::move(id)), created_(created) {
  if (req.endpoint == Endpoint::Chat) splitter_.emplace(req.starts_in_reasoning);
  if (req.endpoint == Endpoint::Completion && req.logprobs) {
    completion_logprobs_ = Json::object();
    for (const char* k : {"tokens", "token_logprobs", "top_logprobs", "text_offset"})
      completion_logprobs_[k] = Json::array();
  }
}

Json ResponseBuilder::logprob_entry(const SequenceEvent& e) const {
  Json entry = token_entry(m_.tok, e.id, e.chosen.logprob);
  Json top = Json::array();
  for (const auto& t : e.top) top.push_back(token_entry(m_.tok, t.id, t.logprob));
  entry["top_logprobs"] = std::move(top);
  return entry;
}

ResponseBuilder::Delta ResponseBuilder::take(const SequenceEvent& e) {
  Delta d;
  if (e.kind == SequenceEvent::Kind::Token && req_.logprobs) {
    if (req_.endpoint == Endpoint::Chat) {
      d.logprobs = Json::array();
      d.logprobs.push_back(logprob_entry(e));
    } else {
      // Legacy completions: parallel lists; top_logprobs maps token text to log-probability.
      Json entry = token_entry(m_.tok, e.id, e.chosen.logprob);
      Json top = Json::object();
      for (const auto& t : e.top) {
        Json te = token_entry(m_.tok, t.id, t.logprob);
        const std::string key = te.at("token").as_string();
        if (!top.contains(key)) top[key] = te.at("logprob");
      }
      d.logprobs = Json::object();
      for (const char* k : {"tokens", "token_logprobs", "top_logprobs", "text_offset"})
        d.logprobs[k] = Json::array();
      d.logprobs["tokens"].push_back(entry.at("token"));
      d.logprobs["token_logprobs"].push_back(entry.at("logprob"));
      d.logprobs["top_logprobs"].push_back(std::move(top));
      d.logprobs["text_offset"].push_back(Json(static_cast<int64_t>(text_offset_)));
    }
  }
  if (splitter_) {
    auto pieces = splitter_->push(e.text);
    if (e.kind == SequenceEvent::Kind::End) {
      auto rest = splitter_->flush();
      pieces.insert(pieces.end(), rest.begin(), rest.end());
    }
    for (auto& p : pieces) (p.reasoning ? d.reasoning : d.content) += p.text;
  } else {
    d.content = e.text;
  }
  text_offset_ += d.content.size();
  if (!d.reasoning.empty()) saw_reasoning_ = true;
  if (e.kind == SequenceEvent::Kind::End) {
    ended_ = true;
    end_ = e;
    if (!e.error.empty()) {
      ApiError err;
      err.status = 500;
      err.type = "server_error";
      err.message = "the model failed: " + e.error;
      failure_ = err;
    }
  }
  return d;
}

const char* ResponseBuilder::finish_reason() const {
  switch (end_.reason) {
    case StopReason::Eos:
    case StopReason::StopString:
      return "stop";
    case StopReason::MaxTokens:
    case StopReason::ContextFull:
      return "length";
    case StopReason::Interrupted:
      return "cancelled";
  }
  return "stop";
}

Json ResponseBuilder::usage() const {
  Json u = Json::object();
  u["prompt_tokens"] = end_.prompt_tokens;
  u["completion_tokens"] = end_.completion_tokens;
  u["total_tokens"] = end_.prompt_tokens + end_.completion_tokens;
  Json details = Json::object();
  details["cached_tokens"] = end_.cached_tokens;
  u["prompt_tokens_details"] = std::move(details);
  if (end_.drafted > 0) {  // --speculative mtp: OpenAI's names for predicted tokens
    Json completion = Json::object();
    completion["accepted_prediction_tokens"] = end_.accepted_drafts;
    completion["rejected_prediction_tokens"] = end_.drafted - end_.accepted_drafts;
    u["completion_tokens_details"] = std::move(completion);
  }
  return u;
}

Json ResponseBuilder::chunk(Json choice) const {
  Json c = Json::object();
  c["id"] = id_;
  c["object"] = req_.endpoint == Endpoint::Chat ? "chat.completion.chunk" : "text_completion";
  c["created"] = created_;
  c["model"] = m_.id;
  Json choices = Json::array();
  if (!choice.is_null()) choices.push_back(std::move(choice));
  c["choices"] = std::move(choices);
  return c;
}

namespace {
std::string record(const Json& j) {
  return "data: " + j.dump() + "\n\n";
}
}  // namespace

std::string ResponseBuilder::stream_start() {
  if (req_.endpoint != Endpoint::Chat) return "";
  Json delta = Json::object();
  delta["role"] = "assistant";
  delta["content"] = "";
  Json choice = Json::object();
  choice["index"] = 0;
  choice["delta"] = std::move(delta);
  choice["logprobs"] = Json();
  choice["finish_reason"] = Json();
  return record(chunk(std::move(choice)));
}

std::string ResponseBuilder::stream_records(const SequenceEvent& e) {
  Delta d = take(e);
  if (failure_) return record(Json::parse(error_json(*failure_))) + "data: [DONE]\n\n";
  std::string out;
  const bool end = e.kind == SequenceEvent::Kind::End;
  if (!d.content.empty() || !d.reasoning.empty() || !d.logprobs.is_null() || end) {
    Json choice = Json::object();
    choice["index"] = 0;
    if (req_.endpoint == Endpoint::Chat) {
      Json delta = Json::object();
      if (!d.content.empty()) delta["content"] = d.content;
      if (!d.reasoning.empty()) delta["reasoning_content"] = d.reasoning;
      choice["delta"] = std::move(delta);
      if (d.logprobs.is_null()) {
        choice["logprobs"] = Json();
      } else {
        Json lp = Json::object();
        lp["content"] = std::move(d.logprobs);
        choice["logprobs"] = std::move(lp);
      }
    } else {
      choice["text"] = d.content;
      choice["logprobs"] = std::move(d.logprobs);
    }
    choice["finish_reason"] = end ? Json(finish_reason()) : Json();
    out += record(chunk(std::move(choice)));
  }
  if (end) {
    if (req_.include_usage) {
      Json c = chunk(Json());
      c["usage"] = usage();
      out += record(c);
    }
    out += "data: [DONE]\n\n";
  }
  return out;
}

void ResponseBuilder::add(const SequenceEvent& e) {
  Delta d = take(e);
  content_ += d.content;
  reasoning_ += d.reasoning;
  if (d.logprobs.is_null()) return;
  if (req_.endpoint == Endpoint::Chat) {
    for (const Json& x : d.logprobs.as_array()) logprobs_.push_back(x);
  } else {
    for (const char* k : {"tokens", "token_logprobs", "top_logprobs", "text_offset"})
      completion_logprobs_[k].push_back(d.logprobs.at(k).as_array()[0]);
  }
}

std::string ResponseBuilder::body() const {
  Json choice = Json::object();
  choice["index"] = 0;
  Json r = Json::object();
  r["id"] = id_;
  if (req_.endpoint == Endpoint::Chat) {
    Json msg = Json::object();
    msg["role"] = "assistant";
    msg["content"] = content_;
    if (req_.starts_in_reasoning || saw_reasoning_) msg["reasoning_content"] = reasoning_;
    choice["message"] = std::move(msg);
    if (req_.logprobs) {
      Json lp = Json::object();
      lp["content"] = logprobs_;
      choice["logprobs"] = std::move(lp);
    } else {
      choice["logprobs"] = Json();
    }
    r["object"] = "chat.completion";
  } else {
    choice["text"] = content_;
    choice["logprobs"] = completion_logprobs_;
    r["object"] = "text_completion";
  }
  choice["finish_reason"] = finish_reason();
  r["created"] = created_;
  r["model"] = m_.id;
  r["choices"] = Json(Json::Array{std::move(choice)});
  r["usage"] = usage();
  return r.dump();
}

}  // namespace dsv3::server

#include "runtime/chat_session.h"

#include "base/error.h"
#include "base/strings.h"
#include "tokenizer/chat_template.h"

namespace dsv3 {

std::string render_chat(const Tokenizer& tok, const Json& messages, bool add_generation_prompt) {
  const std::string& tmpl = tok.chat_template();
  DSV3_CHECK(
      !tmpl.empty(), "the model's tokenizer has no chat template",
      "tokenizer_config.json needs a chat_template; without --chat the prompt is used as is");
  Json vars = Json::object();
  vars["bos_token"] = tok.bos_token();
  vars["eos_token"] = tok.eos_token();
  return render_chat_template(tmpl, messages, add_generation_prompt, vars);
}

Json chat_message(std::string_view role, std::string content) {
  Json m = Json::object();
  m["role"] = role;
  m["content"] = std::move(content);
  return m;
}

ChatSession::ChatSession(Generator& gen, const Tokenizer& tok, Renderer render)
    : gen_(gen), tok_(tok), render_(std::move(render)) {}

void ChatSession::set_system(std::string text) {
  system_ = std::move(text);
}

void ChatSession::reset() {
  history_ = Json::array();
  gen_.clear();
}

Json ChatSession::messages() const {
  Json all = Json::array();
  if (!system_.empty()) all.push_back(chat_message("system", system_));
  for (const Json& m : history_.as_array()) all.push_back(m);
  return all;
}

ChatSession::Prefix ChatSession::reusable_prefix(const std::string& text) const {
  // The raw bytes of each token (special tokens spelled out, as the rendering writes them),
  // matched against the text until the first token that differs.
  Prefix p;
  for (int32_t id : gen_.cached_ids()) {
    const std::string& piece = tok_.token_bytes(id);
    if (text.compare(p.bytes, piece.size(), piece) != 0) break;
    p.bytes += piece.size();
    ++p.tokens;
  }
  // The rest is encoded on its own, so it must start on a character: a token that ends inside
  // a character goes back into the rest.
  auto inside_character = [&](size_t at) {
    return at < text.size() && (static_cast<unsigned char>(text[at]) & 0xC0) == 0x80;
  };
  while (p.tokens > 0 && inside_character(p.bytes)) {
    --p.tokens;
    p.bytes -= tok_.token_bytes(gen_.cached_ids()[p.tokens]).size();
  }
  return p;
}

ChatTurn ChatSession::send(const std::string& user, Sampler& sampler, const StopConditions& stop,
                           const std::function<void(std::string_view)>& on_text,
                           const std::atomic<bool>* interrupt,
                           const std::function<void(const std::string&)>& on_prompt) {
  history_.push_back(chat_message("user", user));
  try {
    return answer(sampler, stop, on_text, interrupt, on_prompt);
  } catch (...) {
    history_.as_array().pop_back();  // a failed turn leaves the conversation as it was
    throw;
  }
}

ChatTurn ChatSession::answer(Sampler& sampler, const StopConditions& stop,
                             const std::function<void(std::string_view)>& on_text,
                             const std::atomic<bool>* interrupt,
                             const std::function<void(const std::string&)>& on_prompt) {
  const std::string text = render_(messages(), /*add_generation_prompt=*/true);
  if (on_prompt) on_prompt(text);
  ChatTurn turn;
  const Prefix keep = reusable_prefix(text);
  turn.reused_tokens = keep.tokens;
  gen_.truncate(keep.tokens);
  // The template writes BOS itself when the model wants it (as transformers' apply_chat_template
  // with add_special_tokens=False).
  std::vector<int32_t> fresh = tok_.encode(std::string_view(text).substr(keep.bytes), false);
  sampler.add_context(gen_.cached_ids());
  turn.result = gen_.generate(fresh, sampler, stop, on_text, interrupt);
  turn.prefilled_tokens = turn.result.prompt_tokens;
  history_.push_back(chat_message("assistant", turn.result.text));
  return turn;
}

}  // namespace dsv3

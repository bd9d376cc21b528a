#include "runtime/chat_session.h"

#include <span>

#include "base/error.h"
#include "base/strings.h"

namespace dsv3 {
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

int64_t ChatSession::reusable_prefix(const std::string& text) const {
  const auto& ids = gen_.cached_ids();
  auto fits = [&](int64_t k) {
    // Special tokens keep their text: the rendering spells them out too.
    return starts_with(text, tok_.decode(std::span<const int32_t>(ids.data(), k), false));
  };
  const int64_t n = static_cast<int64_t>(ids.size());
  if (fits(n)) return n;  // the usual case: the history is unchanged
  // Binary search keeping fits(lo); a prefix that ends inside a character decodes to U+FFFD and
  // does not fit, so the answer may stop a token short of the longest, never past it.
  int64_t lo = 0, hi = n;
  while (hi - lo > 1) {
    int64_t mid = lo + (hi - lo) / 2;
    (fits(mid) ? lo : hi) = mid;
  }
  return lo;
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
  turn.reused_tokens = reusable_prefix(text);
  const auto& ids = gen_.cached_ids();
  const size_t cached_bytes =
      tok_.decode(std::span<const int32_t>(ids.data(), turn.reused_tokens), false).size();
  gen_.truncate(turn.reused_tokens);
  // The template writes BOS itself when the model wants it (as transformers' apply_chat_template
  // with add_special_tokens=False).
  std::vector<int32_t> fresh = tok_.encode(std::string_view(text).substr(cached_bytes), false);
  sampler.add_context(gen_.cached_ids());
  turn.result = gen_.generate(fresh, sampler, stop, on_text, interrupt);
  turn.prefilled_tokens = turn.result.prompt_tokens;
  history_.push_back(chat_message("assistant", turn.result.text));
  return turn;
}

}  // namespace dsv3

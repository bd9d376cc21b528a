// A multi-turn conversation over one Generator whose cache is kept across turns. Each turn renders
// the whole conversation with the chat template, keeps the longest cached prefix whose text the
// rendering still starts with, and prefills only the rest. When the template rewrites the history
// (R1's template drops the reasoning of earlier replies) the cache is truncated where the text
// changes.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "base/json.h"
#include "runtime/generate.h"

namespace dsv3 {

// {"role": role, "content": content}
Json chat_message(std::string_view role, std::string content);

// The model's chat template (tokenizer_config.json) applied to messages, with its special tokens
// (bos_token, eos_token) as template variables. Throws Error when the model has no template.
std::string render_chat(const Tokenizer& tok, const Json& messages, bool add_generation_prompt);

struct ChatTurn {
  int64_t reused_tokens = 0;     // cached tokens kept from earlier turns
  int64_t prefilled_tokens = 0;  // new tokens run through the model for this turn's prompt
  GenerationResult result;
};

class ChatSession {
 public:
  // render(messages, add_generation_prompt): the chat template applied to an array of
  // {"role", "content"} objects.
  using Renderer = std::function<std::string(const Json& messages, bool add_generation_prompt)>;

  // The generator and tokenizer must outlive the session.
  ChatSession(Generator& gen, const Tokenizer& tok, Renderer render);

  void set_system(std::string text);  // "" removes it; the next turn re-renders from the start
  const std::string& system() const { return system_; }
  void reset();  // forgets the messages and the cache (the system prompt stays)

  // Adds the user's message, prefills what is new and generates the reply (added to the history,
  // also when cut short by an interrupt). sampler: a fresh sampler for this turn; the reused
  // tokens join its context. on_prompt, when given, sees the rendered conversation before the
  // reply starts (e.g. whether it ends inside <think>). On an Error the user's message is
  // removed again.
  ChatTurn send(const std::string& user, Sampler& sampler, const StopConditions& stop,
                const std::function<void(std::string_view)>& on_text,
                const std::atomic<bool>* interrupt = nullptr,
                const std::function<void(const std::string&)>& on_prompt = nullptr);

  const Json& history() const { return history_; }  // user and assistant messages
  // The messages as rendered: the system prompt first when there is one.
  Json messages() const;

 private:
  ChatTurn answer(Sampler& sampler, const StopConditions& stop,
                  const std::function<void(std::string_view)>& on_text,
                  const std::atomic<bool>* interrupt,
                  const std::function<void(const std::string&)>& on_prompt);
  // The longest run of cached tokens whose bytes start `text` and end on a character boundary.
  struct Prefix {
    int64_t tokens = 0;
    size_t bytes = 0;
  };
  Prefix reusable_prefix(const std::string& text) const;

  Generator& gen_;
  const Tokenizer& tok_;
  Renderer render_;
  std::string system_;
  Json history_ = Json::array();
};

}  // namespace dsv3

// Error: the one exception type thrown inside src/. Apps turn it into a message and a non-zero
// exit.
#pragma once
#include <stdexcept>
#include <string>

namespace dsv3 {

class Error : public std::runtime_error {
 public:
  // what: the problem, naming the file, tensor or field; hint: what the user can do about it.
  explicit Error(std::string what, std::string hint = {})
      : std::runtime_error(std::move(what)), hint_(std::move(hint)) {}
  const std::string& hint() const { return hint_; }

 private:
  std::string hint_;
};

// Validation that stays in release builds (asserts vanish there).
#define DSV3_CHECK(cond, ...)                      \
  do {                                             \
    if (!(cond)) throw ::dsv3::Error(__VA_ARGS__); \
  } while (0)

}  // namespace dsv3

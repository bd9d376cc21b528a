// ArgReader: the arguments of one built-in filter, test or function, read by position or keyword.
#pragma once
#include <algorithm>
#include <string>
#include <vector>

#include "base/error.h"
#include "tokenizer/jinja_builtins.h"

namespace dsv3::jinja {

// Rejects, in finish(), any argument it was not asked for.
class ArgReader {
 public:
  ArgReader(std::string what, const std::vector<Value>& args, const Kwargs& kwargs)
      : what_(std::move(what)), args_(args), kwargs_(kwargs), used_(kwargs.size(), false) {}

  Value get(size_t index, const char* name, Value dflt = Value()) {
    max_index_ = std::max(max_index_, index + 1);
    for (size_t k = 0; k < kwargs_.size(); ++k) {
      if (kwargs_[k].first == name) {
        if (index < args_.size()) throw Error(what_ + ": argument '" + name + "' given twice");
        used_[k] = true;
        return kwargs_[k].second;
      }
    }
    return index < args_.size() ? args_[index] : dflt;
  }
  Value keyword(const char* name, Value dflt = Value()) {  // keyword-only
    for (size_t k = 0; k < kwargs_.size(); ++k) {
      if (kwargs_[k].first == name) {
        used_[k] = true;
        return kwargs_[k].second;
      }
    }
    return dflt;
  }
  Value require(size_t index, const char* name) {
    Value v = get(index, name);
    if (v.is_undefined() && index >= args_.size())
      throw Error(what_ + ": missing argument '" + name + "'");
    return v;
  }
  std::string string(size_t index, const char* name, const char* dflt) {
    Value v = get(index, name, Value(dflt));
    if (!v.is_string())
      throw Error(what_ + ": argument '" + name + "' must be a string, not " + type_name(v));
    return v.as_string();
  }
  const std::vector<Value>& rest() {  // a *args tail: every positional is read
    max_index_ = args_.size();
    return args_;
  }
  void finish() {
    if (args_.size() > max_index_) throw Error(what_ + ": too many arguments");
    for (size_t k = 0; k < kwargs_.size(); ++k) {
      if (!used_[k]) throw Error(what_ + ": unexpected argument '" + kwargs_[k].first + "'");
    }
  }

 private:
  std::string what_;
  const std::vector<Value>& args_;
  const Kwargs& kwargs_;
  std::vector<bool> used_;
  size_t max_index_ = 0;
};

}  // namespace dsv3::jinja

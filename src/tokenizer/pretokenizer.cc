#include "tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>

#include "base/error.h"

namespace dsv3::tok {
namespace {

// Unicode White_Space, the set Oniguruma's \s matches in UTF-8 mode.
constexpr std::string_view kWhiteSpace =
    "\\t-\\r\\x{20}\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}"
    "\\x{3000}";

// GPT-2's pattern, used by ByteLevel with use_regex true.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// DeepSeek-V3's tokenizer.json pre_tokenizer, verbatim.
constexpr std::string_view kDeepSeekV3PreTokenizer = R"({"type": "Sequence", "pretokenizers": [
 {"type": "Split", "pattern": {"Regex": "\\p{N}{1,3}"}, "behavior": "Isolated", "invert": false},
 {"type": "Split", "pattern": {"Regex": "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+"}, "behavior": "Isolated", "invert": false},
 {"type": "Split", "pattern": {"Regex": "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"}, "behavior": "Isolated", "invert": false},
 {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]})";

enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

struct Segment {
  size_t begin, end;
  bool is_match;
};

class Regex {
 public:
  Regex(std::string_view pattern, bool literal, std::string_view what) {
    int err = 0;
    PCRE2_SIZE off = 0;
    const std::string p = literal ? std::string(pattern) : onig_compatible_pattern(pattern);
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(p.data()), p.size(),
                          PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP), &err, &off, nullptr);
    if (!code_) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      throw Error(std::string(what) + ": cannot compile the regex at offset " +
                      std::to_string(off) + ": " + reinterpret_cast<const char*>(msg),
                  "dsv3 uses PCRE2; Oniguruma-only syntax in the pattern is not supported");
    }
    pcre2_jit_compile(code_,
                      PCRE2_JIT_COMPLETE);  // on failure PCRE2 interprets: slower, same result
  }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  ~Regex() { pcre2_code_free(code_); }
  pcre2_code* code() const { return code_; }

 private:
  pcre2_code* code_ = nullptr;
};

}  // namespace

std::string onig_compatible_pattern(std::string_view p) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char e = p[++i];
      if (e == 's' || (e == 'S' && !in_class)) {
        if (!in_class) out.append(e == 's' ? "[" : "[^");
        out.append(kWhiteSpace);
        if (!in_class) out.push_back(']');
      } else {
        out += c;
        out += e;
      }
    } else if (!in_class && c == '[') {
      in_class = true;
      out += c;
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];  // a leading ']' is literal
    } else if (in_class && c == '[' && i + 1 < p.size() && p[i + 1] == ':') {
      const size_t close = p.find(":]", i + 2);  // POSIX class such as [:alpha:]
      const size_t stop = close == std::string_view::npos ? p.size() : close + 2;
      out.append(p.substr(i, stop - i));
      i = stop - 1;
    } else {
      if (in_class && c == ']') in_class = false;
      out += c;
    }
  }
  return out;
}

struct PreTokenizer::Step {
  enum class Kind { Split, ByteLevel } kind = Kind::Split;
  std::unique_ptr<Regex> regex;  // Split, or ByteLevel with use_regex
  Behavior behavior = Behavior::Isolated;
  bool invert = false;
  bool add_prefix_space = false;
};

// Per-call scratch: one match block per step and one segment list per recursion depth.
struct PreTokenizer::Work {
  std::vector<pcre2_match_data*> match;
  std::vector<std::vector<Segment>> segments;
  std::vector<std::string> prefixed;
  ~Work() {
    for (auto* m : match) pcre2_match_data_free(m);
  }
};

PreTokenizer::PreTokenizer() = default;
PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;
PreTokenizer& PreTokenizer::operator=(PreTokenizer&&) noexcept = default;
PreTokenizer::~PreTokenizer() = default;

void PreTokenizer::add(const Json& j, std::string_view source,
                       std::vector<std::unique_ptr<Step>>& steps) {
  const std::string where = std::string(source) + ": pre_tokenizer";
  const std::string& type = j.at("type").as_string(where + ".type");
  if (type == "Sequence") {
    for (const Json& p : j.at("pretokenizers").as_array(where + ".pretokenizers"))
      add(p, source, steps);
    return;
  }
  auto step = std::make_unique<Step>();
  if (type == "Split") {
    const Json& pat = j.at("pattern");
    if (const Json* re = pat.find("Regex")) {
      step->regex = std::make_unique<Regex>(re->as_string(where + ".pattern.Regex"), false, where);
    } else if (const Json* lit = pat.find("String")) {
      step->regex = std::make_unique<Regex>(lit->as_string(where + ".pattern.String"), true, where);
    } else {
      throw Error(where + ": Split pattern must have a Regex or String");
    }
    const std::string& b = j.at("behavior").as_string(where + ".behavior");
    if (b == "Removed")
      step->behavior = Behavior::Removed;
    else if (b == "Isolated")
      step->behavior = Behavior::Isolated;
    else if (b == "MergedWithPrevious")
      step->behavior = Behavior::MergedWithPrevious;
    else if (b == "MergedWithNext")
      step->behavior = Behavior::MergedWithNext;
    else if (b == "Contiguous")
      step->behavior = Behavior::Contiguous;
    else
      throw Error(where + ": unknown Split behavior '" + b + "'");
    if (const Json* inv = j.find("invert")) step->invert = inv->as_bool(where + ".invert");
  } else if (type == "ByteLevel") {
    step->kind = Step::Kind::ByteLevel;
    if (const Json* a = j.find("add_prefix_space"))
      step->add_prefix_space = a->as_bool(where + ".add_prefix_space");
    const Json* r = j.find("use_regex");
    if (!r || r->as_bool(where + ".use_regex"))
      step->regex = std::make_unique<Regex>(kGpt2Pattern, false, where);
  } else {
    throw Error(
        where + ": type '" + type + "' is not supported",
        "dsv3 supports byte-level BPE tokenizers: Sequence, Split and ByteLevel pre-tokenizers");
  }
  steps.push_back(std::move(step));
}

PreTokenizer PreTokenizer::from_json(const Json* j, std::string_view source) {
  PreTokenizer p;
  if (j && !j->is_null()) add(*j, source, p.steps_);
  return p;
}

bool PreTokenizer::byte_level() const {
  for (const auto& s : steps_)
    if (s->kind == Step::Kind::ByteLevel) return true;
  return false;
}

Json PreTokenizer::deepseek_v3_json() {
  return Json::parse(kDeepSeekV3PreTokenizer, "DeepSeek-V3 pre_tokenizer");
}

PreTokenizer PreTokenizer::deepseek_v3() {
  const Json j = deepseek_v3_json();
  return from_json(&j, "DeepSeek-V3 pre_tokenizer");
}

namespace {

// Matches of re in text as alternating (gap, match) segments, as Hugging Face's
// Pattern::find_matches.
void find_segments(const Regex& re, pcre2_match_data* md, std::string_view text,
                   std::vector<Segment>& out) {
  out.clear();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t prev = 0, start = 0;
  while (start <= text.size()) {
    const int rc =
        pcre2_match(re.code(), subject, text.size(), start, PCRE2_NO_UTF_CHECK, md, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      throw Error(std::string("pre-tokenizer regex failed: ") + reinterpret_cast<const char*>(msg));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    const size_t b = ov[0], e = ov[1];
    if (b != prev) out.push_back({prev, b, false});
    if (e > b) out.push_back({b, e, true});
    prev = e;
    start = e;
    if (e == b) {  // empty match: step over one character
      if (e >= text.size()) break;
      ++start;
      while (start < text.size() && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80)
        ++start;
    }
  }
  if (prev != text.size()) out.push_back({prev, text.size(), false});
}

void apply_behavior(Behavior b, std::vector<Segment>& s) {
  std::vector<Segment> out;
  bool previous_match = false;
  switch (b) {
    case Behavior::Isolated:
      return;
    case Behavior::Removed:
      std::erase_if(s, [](const Segment& x) { return x.is_match; });
      return;
    case Behavior::MergedWithPrevious:
      for (const Segment& x : s) {
        if (x.is_match && !previous_match && !out.empty())
          out.back().end = x.end;
        else
          out.push_back(x);
        previous_match = x.is_match;
      }
      break;
    case Behavior::MergedWithNext:
      for (size_t i = s.size(); i-- > 0;) {
        const Segment& x = s[i];
        if (x.is_match && !previous_match && !out.empty())
          out.back().begin = x.begin;
        else
          out.push_back(x);
        previous_match = x.is_match;
      }
      std::reverse(out.begin(), out.end());
      break;
    case Behavior::Contiguous:
      for (size_t i = 0; i < s.size(); ++i) {
        const Segment& x = s[i];
        if (i > 0 && x.is_match == previous_match)
          out.back().end = x.end;
        else
          out.push_back(x);
        previous_match = x.is_match;
      }
      break;
  }
  s.swap(out);
}

}  // namespace

void PreTokenizer::run(size_t k, std::string_view text, Work& w,
                       const std::function<void(std::string_view)>& piece) const {
  if (text.empty()) return;
  if (k == steps_.size()) {
    piece(text);
    return;
  }
  const Step& step = *steps_[k];
  if (step.kind == Step::Kind::ByteLevel && step.add_prefix_space && text[0] != ' ') {
    w.prefixed[k].assign(1, ' ');
    w.prefixed[k] += text;
    text = w.prefixed[k];
  }
  if (!step.regex) {
    run(k + 1, text, w, piece);
    return;
  }
  std::vector<Segment>& segs = w.segments[k];
  find_segments(*step.regex, w.match[k], text, segs);
  if (step.invert)
    for (Segment& s : segs) s.is_match = !s.is_match;
  apply_behavior(step.behavior, segs);
  // Iterate by index: deeper steps use their own segment lists, never this one.
  for (size_t i = 0; i < segs.size(); ++i) {
    const Segment s = segs[i];
    run(k + 1, text.substr(s.begin, s.end - s.begin), w, piece);
  }
}

void PreTokenizer::split(std::string_view text,
                         const std::function<void(std::string_view)>& piece) const {
  Work w;
  w.segments.resize(steps_.size());
  w.prefixed.resize(steps_.size());
  for (const auto& s : steps_)
    w.match.push_back(s->regex ? pcre2_match_data_create_from_pattern(s->regex->code(), nullptr)
                               : nullptr);
  run(0, text, w, piece);
}

}  // namespace dsv3::tok

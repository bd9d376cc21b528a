#include "apps/dsv3/args.h"

#include <cstdio>

#include "base/error.h"
#include "base/file.h"
#include "base/strings.h"
#include "base/thread_pool.h"

namespace dsv3::cli {

Args::Args(std::string command, std::vector<std::string> argv)
    : command_(std::move(command)), argv_(std::move(argv)), used_(argv_.size(), false) {}

bool Args::help() const {
  for (const auto& a : argv_)
    if (a == "-h" || a == "--help") return true;
  return false;
}

std::vector<std::string> Args::get_all(std::initializer_list<std::string_view> names) {
  std::vector<std::string> out;
  for (size_t i = 0; i < argv_.size(); ++i) {
    const std::string& a = argv_[i];
    for (auto n : names) {
      if (a == n) {
        if (i + 1 >= argv_.size())
          throw Error(command_ + ": option " + a + " needs a value",
                      "see dsv3 " + command_ + " --help");
        used_[i] = used_[i + 1] = true;
        out.push_back(argv_[i + 1]);
        ++i;
        break;
      }
      if (a.size() > n.size() && starts_with(a, n) && a[n.size()] == '=') {
        used_[i] = true;
        out.push_back(a.substr(n.size() + 1));
        break;
      }
    }
  }
  return out;
}

std::optional<std::string> Args::get(std::initializer_list<std::string_view> names) {
  auto all = get_all(names);
  if (all.empty()) return std::nullopt;
  return all.back();
}

std::string Args::get_or(std::initializer_list<std::string_view> names, std::string dflt) {
  auto v = get(names);
  return v ? *v : std::move(dflt);
}

std::string Args::require(std::initializer_list<std::string_view> names, std::string_view what) {
  auto v = get(names);
  if (v) return *v;
  // Long spelling first in the message: "--model (model folder)".
  std::string_view name = *names.begin();
  for (auto n : names)
    if (n.size() > name.size()) name = n;
  missing_.push_back(std::string(name) + " (" + std::string(what) + ")");
  return {};
}

std::optional<int64_t> Args::get_int(std::initializer_list<std::string_view> names) {
  auto v = get(names);
  if (!v) return std::nullopt;
  return parse_int(*v, command_ + " " + std::string(*names.begin()));
}

std::optional<double> Args::get_double(std::initializer_list<std::string_view> names) {
  auto v = get(names);
  if (!v) return std::nullopt;
  return parse_double(*v, command_ + " " + std::string(*names.begin()));
}

int64_t Args::int_or(std::initializer_list<std::string_view> names, int64_t dflt) {
  return get_int(names).value_or(dflt);
}

double Args::double_or(std::initializer_list<std::string_view> names, double dflt) {
  return get_double(names).value_or(dflt);
}

bool Args::flag(std::initializer_list<std::string_view> names) {
  bool found = false;
  for (size_t i = 0; i < argv_.size(); ++i)
    for (auto n : names)
      if (argv_[i] == n) {
        used_[i] = true;
        found = true;
      }
  return found;
}

std::vector<std::string> Args::positionals() {
  std::vector<std::string> out;
  for (size_t i = 0; i < argv_.size(); ++i) {
    if (used_[i]) continue;
    const std::string& a = argv_[i];
    if (a.size() > 1 && a[0] == '-') continue;
    used_[i] = true;
    out.push_back(a);
  }
  positionals_read_ = true;
  return out;
}

void Args::finish() {
  for (size_t i = 0; i < argv_.size(); ++i) {
    if (used_[i]) continue;
    const std::string& a = argv_[i];
    if (a.size() > 1 && a[0] == '-')
      throw Error(command_ + ": unknown option " + a, "see dsv3 " + command_ + " --help");
    throw Error(command_ + ": unexpected argument '" + a + "'", "see dsv3 " + command_ + " --help");
  }
  if (missing_.empty()) return;
  std::string list;
  for (const std::string& m : missing_) list += (list.empty() ? "" : ", ") + m;
  throw Error(command_ + ": missing " + list, "see dsv3 " + command_ + " --help");
}

std::vector<int32_t> parse_id_list(const std::string& s, const std::string& what) {
  std::string list = s;
  for (char& c : list)
    if (c == ',' || c == '\n' || c == '\t' || c == '\r') c = ' ';
  std::vector<int32_t> ids;
  for (const std::string& part : split(list, ' ')) {
    if (part.empty()) continue;
    const int64_t id = parse_int(part, what);
    DSV3_CHECK(id >= INT32_MIN && id <= INT32_MAX,
               what + ": " + part + " is outside the range of token ids");
    ids.push_back(static_cast<int32_t>(id));
  }
  DSV3_CHECK(!ids.empty(), what + " is empty", "give at least one token id");
  return ids;
}

std::string read_file_or_stdin(const std::string& path, uint64_t max_bytes) {
  if (path != "-") return read_file(path, max_bytes);
  std::string s;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, stdin)) > 0) {
    s.append(buf, n);
    if (s.size() > max_bytes)
      throw Error("stdin holds more than the limit of " + std::to_string(max_bytes) +
                  " bytes for this input");
  }
  if (std::ferror(stdin)) throw Error("could not read stdin");
  return s;
}

const char kFp8GemmHelp[] =
    "  --fp8-gemm M         FP8 (E4M3 128x128) weights: dequant (default) multiplies FP32\n"
    "                       activations by the weights dequantised on the fly; native quantizes\n"
    "                       the activations per 1x128 tile (DeepSeek's act_quant) and runs the "
    "FP8\n"
    "                       GEMM with the block scales (fp8_gemm) in every Linear; docs/FP8.md\n";

bool fp8_gemm_arg(Args& a) {
  const std::string m = a.get_or({"--fp8-gemm"}, "dequant");
  DSV3_CHECK(m == "native" || m == "dequant",
             a.command() + ": --fp8-gemm must be native or dequant, not '" + m + "'");
  return m == "native";
}

int threads_arg(Args& a) {
  int64_t t = a.int_or({"-t", "--threads"}, ThreadPool::default_threads());
  if (t < 1 || t > 1024) throw Error(a.command() + ": --threads must be between 1 and 1024");
  return static_cast<int>(t);
}

}  // namespace dsv3::cli

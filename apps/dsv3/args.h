// Command-line arguments of one subcommand. Options are looked up by the subcommand as it reads
// them; finish() then rejects anything left over, naming it (a typo never passes silently), and
// only then any required option that was missing: `dsv3 logits --bogus` says "unknown option
// --bogus", the real mistake, not "missing --model".
#pragma once
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/file.h"

namespace dsv3::cli {

class Args {
 public:
  Args(std::string command, std::vector<std::string> argv);
  const std::string& command() const { return command_; }
  const std::vector<std::string>& argv() const { return argv_; }  // as given, for sub-actions

  bool help() const;  // -h or --help anywhere
  // A value option: "--name VALUE" or "--name=VALUE". The last occurrence wins.
  std::optional<std::string> get(std::initializer_list<std::string_view> names);
  std::string get_or(std::initializer_list<std::string_view> names, std::string dflt);
  // A value option that must be given. When it is missing, returns "" and records it for finish()
  // to report: a command reads every option and calls finish() before using any required value.
  std::string require(std::initializer_list<std::string_view> names, std::string_view what);
  // A number option; throws Error naming the option when the value is not one.
  std::optional<int64_t> get_int(std::initializer_list<std::string_view> names);
  std::optional<double> get_double(std::initializer_list<std::string_view> names);
  int64_t int_or(std::initializer_list<std::string_view> names, int64_t dflt);
  double double_or(std::initializer_list<std::string_view> names, double dflt);
  // Every occurrence of a repeatable value option, in order.
  std::vector<std::string> get_all(std::initializer_list<std::string_view> names);
  bool flag(std::initializer_list<std::string_view> names);
  // Arguments that are not options, after all options have been read.
  std::vector<std::string> positionals();
  // Throws Error for any unread option or positional first, then for a missing required option.
  void finish();

 private:
  std::string command_;
  std::vector<std::string> argv_;
  std::vector<bool> used_;
  std::vector<std::string> missing_;  // "--model (model folder)", in the order required
  bool positionals_read_ = false;
};

// Threads for commands that compute: -t/--threads, default physical cores.
int threads_arg(Args& a);
// --fp8-gemm native|dequant (default dequant): how FP8 checkpoint weights are multiplied
// (ComputeContext::fp8_native_gemm); true for native.
bool fp8_gemm_arg(Args& a);
// The help line of --fp8-gemm, shared by the inference commands.
extern const char kFp8GemmHelp[];

// Token ids as tokenize prints them and people type them: separated by commas and/or whitespace
// ("0,1234,5", "0 1234 5"). Each must fit int32 (checked before narrowing: 2^32 + 1 is not 1);
// an empty list is an error. `what` names the option in errors.
std::vector<int32_t> parse_id_list(const std::string& s, const std::string& what);
// The bytes of the file an option names, or of stdin for "-", at most `max_bytes` (an Error names
// the limit); a directory or FIFO is refused at once (read_file).
std::string read_file_or_stdin(const std::string& path, uint64_t max_bytes = kMaxReadBytes);

}  // namespace dsv3::cli

// dsv3 plot: training curves of one or more runs (their metrics.jsonl) as one PNG, drawn by
// gnuplot. The data goes into the gnuplot script as named datablocks, one per run and series, so
// that only series with points are plotted (gnuplot stops at an empty one).
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "apps/dsv3/commands.h"
#include "apps/dsv3/output_folder.h"
#include "base/error.h"
#include "base/file.h"
#include "train/metrics_log.h"

extern char** environ;

namespace dsv3::cli {
namespace fs = std::filesystem;
namespace {

constexpr const char* kUsage =
    R"(usage: dsv3 plot RUN_DIR [RUN_DIR...] -o FILE.png [--title TEXT] [--size WxH]

Draws the training curves of each run (RUN_DIR/metrics.jsonl, one JSON object per line, as the
trainer writes it) into one PNG, the runs overlaid and named in the legends by their folder:
  loss            train cross-entropy of the main head (lines; the total loss when no ce is
                  logged) and validation loss (points)
  MTP loss        the MTP module's loss (SPEC §1.7), when logged
  learning rate
  MaxVio          mean (solid) and max (dashed) over the MoE layers of max load / mean load - 1
  gradient norm   before clipping
  tokens/s

  -o FILE.png     the image to write (replaced if it exists; parent folders created)
  --title TEXT    a title above the panels (default: the run names)
  --size WxH      pixels (default 1600x1200)

Needs gnuplot on the PATH (Debian: apt-get install gnuplot-nox; scripts/setup-deps.sh installs it).
)";

struct Series {
  const char* name;    // datablock suffix
  int columns;         // values after the step
  std::string points;  // "step v [v2]\n" lines
};

struct Run {
  std::string name;
  MetricsLog log;
};

enum SeriesId { kLoss, kVal, kMtp, kLr, kVio, kGrad, kTps, kSeriesCount };

std::string num(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

// A gnuplot single-quoted string: only the quote itself is special (doubled); no newlines.
std::string quote(std::string s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "''";
    else if (c == '\n' || c == '\r')
      out += ' ';
    else
      out += c;
  }
  return out + "'";
}

std::vector<Series> series_of(const MetricsLog& log) {
  std::vector<Series> s = {{"loss", 1, {}}, {"val", 1, {}},  {"mtp", 1, {}}, {"lr", 1, {}},
                           {"vio", 2, {}},  {"grad", 1, {}}, {"tps", 1, {}}};
  auto add = [&](SeriesId id, int64_t step, const std::optional<double>& v) {
    if (v) s[id].points += std::to_string(step) + " " + num(*v) + "\n";
  };
  for (const MetricsRow& r : log.rows) {
    add(kLoss, r.step, r.ce ? r.ce : r.loss);  // the main CE, comparable with val_loss
    add(kVal, r.step, r.val_loss);
    add(kMtp, r.step, r.mtp_loss);
    add(kLr, r.step, r.lr);
    add(kGrad, r.step, r.grad_norm);
    add(kTps, r.step, r.tokens_per_s);
    if (!r.maxvio.empty()) {
      double sum = 0, mx = r.maxvio[0];
      for (double v : r.maxvio) {
        sum += v;
        mx = std::max(mx, v);
      }
      s[kVio].points += std::to_string(r.step) + " " +
                        num(sum / static_cast<double>(r.maxvio.size())) + " " + num(mx) + "\n";
    }
  }
  return s;
}

// One panel: the plot elements of every run that has points, or an empty frame saying so.
std::string panel(const std::string& title, const std::string& ylabel,
                  const std::vector<std::string>& elements) {
  std::string g = "set title " + quote(title) + "\nset ylabel " + quote(ylabel) + "\n";
  if (elements.empty())
    return g +
           "set label 1 'not logged' at graph 0.5, graph 0.5 center\nunset key\nunset tics\n"
           "plot [0:1] [0:1] -1 notitle\nunset label 1\nset key\nset tics\n";
  g += "plot ";
  for (size_t i = 0; i < elements.size(); ++i) g += (i ? ", \\\n     " : "") + elements[i];
  return g + "\n";
}

std::string gnuplot_script(const std::vector<Run>& runs, const std::string& out_png,
                           const std::string& title, int width, int height) {
  std::string g;
  std::vector<std::vector<Series>> data;
  for (size_t r = 0; r < runs.size(); ++r) {
    data.push_back(series_of(runs[r].log));
    for (const Series& s : data.back())
      if (!s.points.empty())
        g += "$r" + std::to_string(r) + "_" + s.name + " << EOD\n" + s.points + "EOD\n";
  }
  g += "set terminal pngcairo size " + std::to_string(width) + "," + std::to_string(height) +
       " noenhanced font ',10'\n";
  g += "set output " + quote(out_png) + "\n";
  g += "set multiplot layout 3,2 title " + quote(title) + "\n";
  g += "set grid\nset key top right opaque\nset xlabel 'step'\n";
  // elements(id, using, style, label): one plot element per run that has that series.
  auto elements = [&](SeriesId id, const std::string& cols, const std::string& style,
                      const std::string& label) {
    std::vector<std::string> e;
    for (size_t r = 0; r < runs.size(); ++r) {
      if (data[r][id].points.empty()) continue;
      e.push_back("$r" + std::to_string(r) + "_" + data[r][id].name + " using " + cols + " " +
                  style + " lc " + std::to_string(r + 1) + " title " + quote(runs[r].name + label));
    }
    return e;
  };
  std::vector<std::string> loss = elements(kLoss, "1:2", "with lines lw 1.5", "");
  for (std::string& e : elements(kVal, "1:2", "with linespoints dt 2 pt 7 ps 0.8", " (val)"))
    loss.push_back(std::move(e));
  g += panel("loss", "cross-entropy (nats)", loss);
  g += panel("MTP loss", "cross-entropy (nats)", elements(kMtp, "1:2", "with lines", ""));
  g += "set format y '%.1e'\n";
  g += panel("learning rate", "lr", elements(kLr, "1:2", "with lines", ""));
  g += "set format y '%g'\n";
  std::vector<std::string> vio = elements(kVio, "1:2", "with lines", " (mean)");
  for (std::string& e : elements(kVio, "1:3", "with lines dt 2", " (max)")) vio.push_back(e);
  g += panel("MaxVio over MoE layers", "max load / mean - 1", vio);
  g +=
      panel("gradient norm (before clipping)", "L2 norm", elements(kGrad, "1:2", "with lines", ""));
  g += panel("throughput", "tokens/s", elements(kTps, "1:2", "with lines", ""));
  g += "unset multiplot\nset output\n";
  return g;
}

// The gnuplot executable on the PATH, or an Error naming the package.
std::string find_gnuplot() {
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "";
  size_t pos = 0;
  while (pos <= p.size()) {
    size_t end = p.find(':', pos);
    if (end == std::string::npos) end = p.size();
    const std::string dir = end > pos ? p.substr(pos, end - pos) : ".";
    const std::string exe = dir + "/gnuplot";
    if (::access(exe.c_str(), X_OK) == 0 && fs::is_regular_file(exe)) return exe;
    pos = end + 1;
  }
  throw Error("plot: gnuplot is not installed (not found on the PATH)",
              "install the Debian package gnuplot-nox (apt-get install gnuplot-nox, or "
              "scripts/setup-deps.sh)");
}

// Runs gnuplot on the script; its messages go to our stderr. Returns its exit status.
int run_gnuplot(const std::string& exe, const std::string& script) {
  std::vector<char*> argv = {const_cast<char*>(exe.c_str()), const_cast<char*>(script.c_str()),
                             nullptr};
  pid_t pid;
  const int err = ::posix_spawn(&pid, exe.c_str(), nullptr, nullptr, argv.data(), environ);
  DSV3_CHECK(err == 0, "plot: could not start " + exe + ": " + std::to_string(err));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    DSV3_CHECK(errno == EINTR, "plot: waiting for gnuplot failed");
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string run_name(const std::string& dir) {
  fs::path p(dir);
  while (!p.empty() && p.filename().empty()) p = p.parent_path();  // "runs/a/" -> "runs/a"
  const std::string name = p.filename().string();
  return name.empty() || name == "." || name == ".." ? dir : name;
}

}  // namespace

int cmd_plot(Args& a) {
  if (a.help()) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  const std::string out = a.require({"-o", "--output"}, "the PNG to write");
  std::optional<std::string> title = a.get({"--title"});
  const std::string size = a.get_or({"--size"}, "1600x1200");
  std::vector<std::string> dirs = a.positionals();
  a.finish();
  DSV3_CHECK(!dirs.empty(), "plot: no run folder given", "usage: dsv3 plot RUN_DIR... -o FILE.png");
  int width = 0, height = 0;
  char tail = 0;
  DSV3_CHECK(std::sscanf(size.c_str(), "%dx%d%c", &width, &height, &tail) == 2 && width >= 200 &&
                 height >= 150 && width <= 10000 && height <= 10000,
             "plot: --size '" + size + "' is not WxH in pixels (200x150 to 10000x10000)");
  const std::string gnuplot = find_gnuplot();  // before reading: a missing tool fails at once

  std::vector<Run> runs;
  int64_t points = 0;
  for (const std::string& d : dirs) {
    const std::string file = path_join(d, "metrics.jsonl");
    Run r{run_name(d), read_metrics(file)};
    DSV3_CHECK(!r.log.rows.empty(), file + ": no metrics (the file has no lines)");
    if (r.log.dropped_partial_line)
      std::fprintf(stderr, "plot: %s: left out the unfinished last line (a run still writing)\n",
                   file.c_str());
    points += static_cast<int64_t>(r.log.rows.size());
    runs.push_back(std::move(r));
  }
  // Two folders with the same name (a/run, b/run) are told apart by their paths.
  std::vector<bool> clash(runs.size());
  for (size_t i = 0; i < runs.size(); ++i)
    for (size_t j = 0; j < runs.size(); ++j)
      clash[i] = clash[i] || (i != j && runs[i].name == runs[j].name);
  for (size_t i = 0; i < runs.size(); ++i)
    if (clash[i]) runs[i].name = dirs[i];
  if (!title) {
    title = "dsv3 training:";
    for (const Run& r : runs) *title += " " + r.name;
  }

  check_output_file(out, "-o");  // a directory, a metrics file read above: refused before gnuplot
  const fs::path out_path(out);
  if (out_path.has_parent_path()) make_dirs(out_path.parent_path().string());
  // gnuplot writes a temporary image, renamed over FILE.png only once it is complete.
  const std::string tmp_png = out + ".tmp" + std::to_string(::getpid());
  const std::string script_path = out + ".gp";
  write_file_atomic(script_path, gnuplot_script(runs, tmp_png, *title, width, height));
  const int rc = run_gnuplot(gnuplot, script_path);
  std::string head;
  if (rc == 0 && fs::exists(tmp_png)) head = read_file(tmp_png).substr(0, 8);
  if (rc != 0 || head != "\x89PNG\r\n\x1a\n") {
    std::error_code ignored;
    fs::remove(tmp_png, ignored);
    throw Error("plot: gnuplot failed (exit " + std::to_string(rc) + ") on " + script_path,
                "its messages are above; the script is kept for a look");
  }
  // Through write_file_atomic, not a rename: a link at FILE.png is followed, never replaced.
  std::error_code ec;
  try {
    write_file_atomic(out, read_file(tmp_png));
  } catch (...) {
    fs::remove(tmp_png, ec);
    throw;
  }
  fs::remove(tmp_png, ec);
  fs::remove(script_path, ec);
  std::printf("plot: wrote %s (%zu run%s, %lld points)\n", out.c_str(), runs.size(),
              runs.size() == 1 ? "" : "s", static_cast<long long>(points));
  return 0;
}

}  // namespace dsv3::cli

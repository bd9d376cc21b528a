// Encode throughput of dsv3's tokenizer on one thread:
//   bench_tokenizer TOKENIZER CORPUS [REPEATS]
// CORPUS is a docs/DATA.md corpus file (documents end with a line holding only U+001E); every
// document is encoded without BOS. Each repeat loads a fresh tokenizer (empty word cache) and is
// timed apart from loading; the best repeat is reported with the token count (to check against the
// reference).
#include <algorithm>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/file.h"
#include "base/timer.h"
#include "tokenizer/tokenizer.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: bench_tokenizer TOKENIZER CORPUS [REPEATS]\n");
    return 2;
  }
  try {
    const std::string text = dsv3::read_file(argv[2]);
    std::vector<std::string_view> docs;
    for (size_t pos = 0; pos < text.size();) {
      size_t end = text.find("\n\x1e\n", pos);
      const size_t next = end == std::string::npos ? text.size() : end + 3;
      if (end == std::string::npos) end = text.size();
      if (end > pos) docs.push_back(std::string_view(text).substr(pos, end - pos));
      pos = next;
    }
    size_t bytes = 0;
    for (auto d : docs) bytes += d.size();
    const int repeats = argc > 3 ? std::max(1, std::atoi(argv[3])) : 3;
    double best = 1e30, load = 0;
    size_t tokens = 0;
    for (int r = 0; r < repeats; ++r) {
      dsv3::Timer tl;
      const dsv3::Tokenizer tok = dsv3::Tokenizer::load(argv[1]);
      load = tl.seconds();
      dsv3::Timer t;
      tokens = 0;
      for (auto d : docs) tokens += tok.encode(d, false).size();
      best = std::min(best, t.seconds());
    }
    std::printf(
        "dsv3: %zu documents, %.2f MB, %zu tokens, encode %.3f s (best of %d) = %.2f MB/s; load "
        "%.2f s\n",
        docs.size(), bytes / 1e6, tokens, best, repeats, bytes / 1e6 / best, load);
    return 0;
  } catch (const dsv3::Error& e) {
    std::fprintf(stderr, "bench_tokenizer: error: %s\n", e.what());
    return 1;
  }
}

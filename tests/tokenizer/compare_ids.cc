// Compares dsv3's tokenizer with reference output of the Hugging Face tokenizers library
// (tests/js/ref_encode.js), in one process for thousands of strings:
//   tokenizer_compare TOKENIZER(dir or json) REF.jsonl
// For every line {"input", "ids", "ids_special", "decoded"} it checks: encode(input, false) == ids,
// decode(ids) == decoded (the library's decode), decode(ids) == normalize(input) (round trip;
// inputs are valid UTF-8; the normalizer is NFC for Qwen2 and none for DeepSeek-V3), that streaming
// decode equals decode, and the special tokens: the library reads only tokenizer.json, so the frame
// of dsv3's post_processor (tokenizer.json loaded alone) around ids must be ids_special, and
// encode(input, true) must put the frame of the full load (tokenizer_config.json may replace the
// post_processor's: Tokenizer::encode) around encode(input, false). Prints the first mismatches and
// a summary; exit code 1 on any.
#include <cstdio>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "base/strings.h"
#include "base/timer.h"
#include "tokenizer/tokenizer.h"

namespace {

std::string show_ids(const std::vector<int32_t>& ids, size_t from, size_t n) {
  std::string s;
  for (size_t i = from; i < ids.size() && i < from + n; ++i) s += std::to_string(ids[i]) + " ";
  return s;
}

// "[128000 ] text [ ]": the special tokens encode(x, true) puts around x's ids.
std::string show_frame(const dsv3::Tokenizer& t) {
  std::string s = "[";  // appended piece by piece: GCC 12 warns (-Wrestrict) on a + chain here
  s += show_ids(t.special_prefix(), 0, 8);
  s += "] text [";
  s += show_ids(t.special_suffix(), 0, 8);
  s += "]";
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: tokenizer_compare TOKENIZER REF.jsonl\n");
    return 2;
  }
  try {
    const dsv3::Tokenizer tok = dsv3::Tokenizer::load(argv[1]);
    const std::string json_path = dsv3::ends_with(argv[1], ".json")
                                      ? std::string(argv[1])
                                      : dsv3::path_join(argv[1], "tokenizer.json");
    const dsv3::Tokenizer json_only =
        dsv3::Tokenizer::from_json(dsv3::read_file(json_path), {}, json_path);
    auto framed = [](const dsv3::Tokenizer& t, const std::vector<int32_t>& ids) {
      std::vector<int32_t> out = t.special_prefix();
      out.insert(out.end(), ids.begin(), ids.end());
      out.insert(out.end(), t.special_suffix().begin(), t.special_suffix().end());
      return out;
    };
    const std::string text = dsv3::read_file(argv[2]);
    size_t lines = 0, bad_ids = 0, bad_special = 0, bad_decode = 0, bad_roundtrip = 0,
           bad_stream = 0, bytes = 0;
    double encode_seconds = 0;
    for (const std::string& line : dsv3::split(text, '\n')) {
      if (line.empty()) continue;
      const dsv3::Json j = dsv3::Json::parse(line, argv[2]);
      const std::string& input = j.at("input").as_string();
      std::vector<int32_t> want;
      for (const dsv3::Json& v : j.at("ids").as_array())
        want.push_back(static_cast<int32_t>(v.as_int()));
      dsv3::Timer t;
      const std::vector<int32_t> got = tok.encode(input, /*add_bos=*/false);
      encode_seconds += t.seconds();
      bytes += input.size();
      ++lines;
      if (got != want) {
        size_t k = 0;
        while (k < got.size() && k < want.size() && got[k] == want[k]) ++k;
        if (++bad_ids <= 5)
          std::printf("ids differ for %s\n  at index %zu: dsv3 [%s] reference [%s]\n",
                      dsv3::json_quote(input.substr(0, 300)).c_str(), k,
                      show_ids(got, k, 8).c_str(), show_ids(want, k, 8).c_str());
      }
      std::vector<int32_t> want_special;
      for (const dsv3::Json& v : j.at("ids_special").as_array())
        want_special.push_back(static_cast<int32_t>(v.as_int()));
      if ((framed(json_only, want) != want_special ||
           tok.encode(input, true) != framed(tok, got)) &&
          ++bad_special <= 5)
        std::printf("special tokens differ for %s\n  reference [%s]\n",
                    dsv3::json_quote(input.substr(0, 200)).c_str(),
                    show_ids(want_special, 0, 8).c_str());
      const std::string decoded = tok.decode(want);
      if (decoded != j.at("decoded").as_string() && ++bad_decode <= 5)
        std::printf("decode differs for %s\n  dsv3 %s\n",
                    dsv3::json_quote(input.substr(0, 200)).c_str(),
                    dsv3::json_quote(decoded.substr(0, 200)).c_str());
      if (tok.decode(got) != tok.normalize(input) && ++bad_roundtrip <= 5)
        std::printf("decode(encode(x)) != x for %s\n",
                    dsv3::json_quote(input.substr(0, 200)).c_str());
      dsv3::StreamDecoder stream(tok);
      std::string streamed;
      for (int32_t id : got) streamed += stream.push(id);
      streamed += stream.flush();
      if (streamed != tok.decode(got) && ++bad_stream <= 5)
        std::printf("streaming decode differs for %s\n",
                    dsv3::json_quote(input.substr(0, 200)).c_str());
    }
    std::printf(
        "%s: %zu strings, %zu bytes: %zu id mismatches, %zu special-token mismatches "
        "(post_processor "
        "%s, with tokenizer_config.json %s), %zu decode mismatches, %zu round-trip failures, %zu "
        "streaming mismatches (encode %.1f MB/s)\n",
        argv[2], lines, bytes, bad_ids, bad_special, show_frame(json_only).c_str(),
        show_frame(tok).c_str(), bad_decode, bad_roundtrip, bad_stream,
        bytes / 1e6 / (encode_seconds > 0 ? encode_seconds : 1));
    if (lines == 0) {
      std::printf("no reference strings: the reference file is empty\n");
      return 1;
    }
    return bad_ids + bad_special + bad_decode + bad_roundtrip + bad_stream == 0 ? 0 : 1;
  } catch (const dsv3::Error& e) {
    std::fprintf(stderr, "tokenizer_compare: error: %s\n", e.what());
    if (!e.hint().empty()) std::fprintf(stderr, "hint: %s\n", e.hint().c_str());
    return 1;
  }
}

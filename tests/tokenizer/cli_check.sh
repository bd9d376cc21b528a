#!/usr/bin/env bash
# CLI checks of dsv3 tokenize / detokenize / tokenizer train on the committed 4k tokenizer: output
# format, BOS, --no-bos, --file, round trip, ids given with commas or spaces, and errors.
#   tests/tokenizer/cli_check.sh DSV3 SOURCE_DIR WORK
set -euo pipefail
dsv3=$1 m=$2/assets/tokenizers/dsv3-en-4k work=$3
rm -rf "$work" && mkdir -p "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
text=$'Call me Ishmael. Some years ago\xe2\x80\x94never mind how long precisely\xe2\x80\x94 <think>\n\xf0\x9f\x90\xb3</think>'
ids=$("$dsv3" tokenize -m "$m" --text "$text")
[[ $ids =~ ^0(\ [0-9]+)+$ ]] || fail "tokenize output is not BOS (0) then space-separated ids: '$ids'"
nobos=$("$dsv3" tokenize -m "$m" --text "$text" --no-bos)
[[ "0 $nobos" == "$ids" ]] || fail "--no-bos should drop only the leading BOS"
[[ $nobos == *" 5 "* && $nobos == *" 6" ]] || fail "<think> (5) and </think> (6) should be single tokens: $nobos"
printf '%s' "$text" > "$work/in.txt"
[[ $("$dsv3" tokenize -m "$m" --file "$work/in.txt") == "$ids" ]] || fail "--file differs from --text"
[[ $("$dsv3" tokenize -m "$m" --file - < "$work/in.txt") == "$ids" ]] || fail "--file - (stdin) differs from --text"
[[ $("$dsv3" detokenize -m "$m" --ids "$nobos") == "$text" ]] || fail "detokenize(tokenize(x)) != x (spaces)"
[[ $("$dsv3" detokenize -m "$m" --ids "${nobos// /,}") == "$text" ]] || fail "detokenize with commas"
[[ $("$dsv3" detokenize -m "$m" --ids "$ids" --skip-special) == "$text" ]] || fail "--skip-special keeps BOS"
"$dsv3" tokenize --help | grep -q 'usage: dsv3 tokenize' || fail "tokenize --help"
"$dsv3" detokenize --help | grep -q 'usage: dsv3 detokenize' || fail "detokenize --help"
"$dsv3" tokenizer --help | grep -q 'usage: dsv3 tokenizer train' || fail "tokenizer --help"
expect_error() {  # expect_error PATTERN CMD...: exit code 1 and PATTERN on stderr
  local pattern=$1; shift
  if "$@" 2> "$work/err"; then fail "should fail: $*"; fi
  grep -q -- "$pattern" "$work/err" || fail "error for '$*' should mention '$pattern': $(cat "$work/err")"
}
expect_error "unknown option --bogus" "$dsv3" tokenize -m "$m" --text x --bogus
expect_error "exactly one of --text and --file" "$dsv3" tokenize -m "$m"
expect_error "out of range" "$dsv3" detokenize -m "$m" --ids 4096
expect_error "dsv3 detokenize: error: --ids" "$dsv3" detokenize -m "$m" --ids 1,x
expect_error "no such file" "$dsv3" tokenize -m "$work/nowhere" --text x
echo '{"model": {"type": "Unigram"}}' > "$work/bad.json"
expect_error "pre_tokenizer has no ByteLevel" "$dsv3" tokenize -m "$work/bad.json" --text x
expect_error "vocab-size must be between" "$dsv3" tokenizer train --input "$work/in.txt" --vocab-size 10 -o "$work/t"
expect_error "vocab-size 4294971392 is out of range" "$dsv3" tokenizer train --input "$work/in.txt" \
  --vocab-size 4294971392 -o "$work/t"  # 2^32 + 4096 must not wrap to 4096
# A tiny training run: the vocabulary stops early (few pairs) with a warning, and the result loads.
"$dsv3" tokenizer train --input "$work/in.txt" --vocab-size 300 -o "$work/t" 2> "$work/train.log"
[[ $("$dsv3" detokenize -m "$work/t" --ids "$("$dsv3" tokenize -m "$work/t" --text "$text" --no-bos)") == "$text" ]] ||
  fail "a freshly trained tokenizer does not round-trip"
echo "tokenizer CLI checks passed"

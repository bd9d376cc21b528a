#!/usr/bin/env bash
# dsv3 tokenizer train is deterministic and reproduces the committed tokenizers: trains each of
# assets/tokenizers/dsv3-en-{4k,16k} on the default corpus (docs/DATA.md) and compares the files
# byte for byte; trains the 4k one a second time and compares again.
#   tests/tokenizer/train_check.sh DSV3 SOURCE_DIR WORK
set -euo pipefail
dsv3=$1 src=$2 work=$3
corpus=$src/.cache/corpus/train.txt
[[ -f $corpus ]] || { echo "missing $corpus: run scripts/fetch-assets.sh" >&2; exit 1; }
rm -rf "$work" && mkdir -p "$work"
for v in 4k:4096 16k:16384; do
  name=dsv3-en-${v%%:*}
  "$dsv3" tokenizer train --input "$corpus" --vocab-size "${v##*:}" -o "$work/$name"
  for f in tokenizer.json tokenizer_config.json; do
    cmp "$work/$name/$f" "$src/assets/tokenizers/$name/$f" ||
      { echo "$name/$f differs from the committed asset" >&2; exit 1; }
  done
done
"$dsv3" tokenizer train --input "$corpus" --vocab-size 4096 -o "$work/again"
cmp "$work/again/tokenizer.json" "$work/dsv3-en-4k/tokenizer.json"
echo "training reproduces the committed tokenizers and is deterministic"

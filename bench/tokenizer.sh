#!/usr/bin/env bash
# Tokenizer encode speed, dsv3 beside Hugging Face tokenizers, both pinned to one core, on the
# default English corpus (docs/DATA.md). Needs scripts/fetch-assets.sh and a build with bench_tokenizer:
#   bench/tokenizer.sh [BUILD_DIR] [CORPUS]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build} corpus=${2:-.cache/corpus/train.txt} repeats=${REPEATS:-2}
cmake --build "$build" --target bench_tokenizer >/dev/null
export RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false
for tok in .cache/assets/deepseek_v3 .cache/assets/qwen2.5 .cache/assets/llama3 assets/tokenizers/dsv3-en-16k; do
  echo "== $tok on $corpus"
  taskset -c 0 "$build/tests/bench_tokenizer" "$tok" "$corpus" "$repeats"
  taskset -c 0 node bench/tokenizer_hf_bench.js "$tok/tokenizer.json" "$corpus" "$repeats"
done

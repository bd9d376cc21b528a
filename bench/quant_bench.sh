#!/bin/bash
# dsv3 bench on a model and its block-quantized copies, interleaved (BF16, q8_0, q4_0, then again),
# so a noisy shared machine slows all alike (docs/PERFORMANCE.md "Block-quantized weights").
#   bench/quant_bench.sh MODEL_DIR OUT_DIR [P N R ROUNDS THREADS]
# Quantizes MODEL_DIR into OUT_DIR/q8_0 and OUT_DIR/q4_0 (skipped when present), then prints
# `uptime` and one dsv3 bench table per model and round. DSV3 overrides the binary (build/dsv3).
set -euo pipefail
model=$1 out=$2 p=${3:-512} n=${4:-128} r=${5:-3} rounds=${6:-2} t=${7:-2}
dsv3=${DSV3:-$(dirname "$0")/../build/dsv3}
for type in q8_0 q4_0; do
  [ -f "$out/$type/config.json" ] || "$dsv3" quantize -m "$model" -o "$out/$type" --type "$type" -t "$t"
done
lscpu | grep -m1 "Model name"
for round in $(seq "$rounds"); do
  for m in "$model" "$out/q8_0" "$out/q4_0"; do
    echo "== round $round: $m ($(uptime | sed 's/.*load/load/'))"
    "$dsv3" bench -m "$m" -p "$p" -n "$n" -r "$r" -t "$t" 2>/dev/null
  done
done

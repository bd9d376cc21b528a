#!/usr/bin/env bash
# The FP8 recipe's costs on this CPU (docs/FP8.md, docs/PERFORMANCE.md), each pair interleaved in
# one run so that a shared machine loads both alike:
#   bench/fp8.sh train   training tokens/s, CPU seconds per step and peak RSS of the `small`
#                        preset: --precision bf16, fp8 (tiles) and fp8 --fp8-scaling tensor, STEPS
#                        steps each (the first 2 left out of tokens/s), ROUNDS rounds in turn. CPU
#                        seconds per step (user + sys of the whole run, less a 1-step run's, over
#                        STEPS - 1) stay comparable on a loaded machine, where tokens/s do not
#   bench/fp8.sh infer   `dsv3 bench` on the `small` preset written as an FP8 checkpoint
#                        (dsv3 init --fp8): --fp8-gemm dequant against native, ROUNDS rounds
# Env: THREADS (2), STEPS (6), ROUNDS (2), PP (128), TG (32), DSV3 (build/dsv3: the binary, e.g.
# another build to compare against). Train needs data/small (scripts/quickstart.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-infer}
threads=${THREADS:-2} steps=${STEPS:-6} rounds=${ROUNDS:-2} dsv3=${DSV3:-build/dsv3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
lscpu | grep -E "Model name|^CPU\(s\)" | sed 's/  */ /g'
uptime
if [[ $what == train ]]; then
  for r in $(seq "$rounds"); do
    for p in "bf16" "fp8" "fp8 --fp8-scaling tensor"; do
      out="$work/run-$r-${p// /_}"
      for n in 1 "$steps"; do
        rm -rf "$out"
        # shellcheck disable=SC2086  # the precision flags are words
        /usr/bin/time -f "%U %S %M" -o "$out.time$n" "$dsv3" train --preset small \
          --data data/small -o "$out" --steps "$n" --seq-len 128 --batch 16 --val-every 0 \
          --ckpt-every 100000 -t "$threads" --precision $p >/dev/null 2>&1
      done
      python3 -c "
import json, statistics
rows = [json.loads(l) for l in open('$out/metrics.jsonl')][2:]
one, all = ([float(x) for x in open('$out.time%s' % n).read().split()[-3:]] for n in (1, $steps))
cpu = (all[0] + all[1] - one[0] - one[1]) / ($steps - 1)
print('round $r %-26s %7.0f tokens/s  %6.2f CPU s/step  peak RSS %5.0f MB' % ('$p',
      statistics.mean(r['tokens_per_s'] for r in rows), cpu, all[2] / 1e3))"
    done
  done
elif [[ $what == infer ]]; then
  "$dsv3" init --preset small --fp8 -o "$work/small-fp8" --seed 0 >/dev/null 2>&1
  for r in $(seq "$rounds"); do
    for m in dequant native; do
      echo "round $r --fp8-gemm $m"
      "$dsv3" bench -m "$work/small-fp8" -p "${PP:-128}" -n "${TG:-32}" -r 2 -t "$threads" \
        --fp8-gemm "$m" 2>/dev/null | grep -E "pp|tg"
    done
  done
else
  echo "fp8.sh: train or infer" >&2
  exit 2
fi
uptime

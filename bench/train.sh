#!/usr/bin/env bash
# Training tokens/s, dsv3 beside PyTorch (bench/train_torch.py: the same model and step in float32,
# torch.optim.AdamW, OpenBLAS), same model folder, threads and batch, one after the other in one run.
#   bench/train.sh [PRESET...]          default: tiny small
# Env: THREADS (default 2), SEQ (128), BATCH (8), STEPS (8; the first 2 are left out), PRECISION
# (dsv3's --precision when the build has it, default: dsv3's default). Needs build/dsv3 and the
# test dependencies (python3-torch).
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${THREADS:-2} seq=${SEQ:-128} batch=${BATCH:-8} steps=${STEPS:-8}
presets=("$@")
(( ${#presets[@]} )) || presets=(tiny small)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
lscpu | grep -E "Model name|^CPU\(s\)" | sed 's/  */ /g'
precision=()
if [[ -n ${PRECISION:-} ]]; then precision=(--precision "$PRECISION"); fi
for p in "${presets[@]}"; do
  tok=assets/tokenizers/dsv3-en-4k
  [[ $p == small ]] && tok=assets/tokenizers/dsv3-en-16k
  build/dsv3 init --preset "$p" -o "$work/$p" --seed 0 >/dev/null 2>&1
  if [[ ! -f $work/data-$p/meta.json ]]; then
    build/dsv3 data prepare --tokenizer "$tok" --input .cache/corpus/train.txt \
      --valid .cache/corpus/valid.txt -o "$work/data-$p" >/dev/null 2>&1
  fi
  build/dsv3 train --init "$work/$p" --data "$work/data-$p" -o "$work/run-$p" --steps "$steps" \
    --seq-len "$seq" --batch "$batch" --val-every 0 --ckpt-every 100000 -t "$threads" \
    "${precision[@]}" >/dev/null 2>&1
  dsv3_tps=$(python3 -c "
import json, statistics, sys
rows = [json.loads(l) for l in open('$work/run-$p/metrics.jsonl')][2:]
print('%.0f' % statistics.median(r['tokens_per_s'] for r in rows))")
  torch_tps=$(OMP_NUM_THREADS=$threads /usr/bin/python3 bench/train_torch.py -m "$work/$p" \
    -B "$batch" -T "$seq" --steps "$steps" --warmup 2 -t "$threads" | tail -n 1 |
    python3 -c "import json, sys; print('%.0f' % json.loads(sys.stdin.read())['tokens_per_s_median'])")
  echo "$p: seq $seq x batch $batch, $threads threads: dsv3 $dsv3_tps tok/s, PyTorch $torch_tps tok/s," \
    "ratio $(python3 -c "print('%.2f' % ($dsv3_tps / $torch_tps))")"
done

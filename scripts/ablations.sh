#!/usr/bin/env bash
# The DeepSeek-V3 ablations at small scale (docs/TRAINING.md): the `small` preset on the English
# corpus, the same data, seed and token budget for every run.
#   scripts/ablations.sh balance [--steps N]   TR Table 5 / §4.5.3: aux-loss-free (gamma 1e-3) vs
#                                              sequence-wise aux loss only vs V2 expert-level aux
#                                              loss vs none -> runs/ablation/balance.png
#   scripts/ablations.sh mtp [--steps N]       TR Table 4: MTP lambda 0.3 vs no MTP
#                                              -> runs/ablation/mtp.png
#   scripts/ablations.sh all [--steps N]
# Each run goes to runs/ablation/<name>; a finished run is not trained again. Needs build/dsv3 and
# data/small (scripts/quickstart.sh makes both).
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
shift || true
steps=300
while [[ $# -gt 0 ]]; do
  case $1 in
    --steps) steps=$2; shift 2 ;;
    *) echo "ablations: unknown option '$1' (--steps N)" >&2; exit 2 ;;
  esac
done
out=runs/ablation
mkdir -p "$out"
common=(--preset small --data data/small --steps "$steps" --seq-len 128 --batch 8 --lr 2e-3
        --warmup 20 --val-every 25 --val-windows 64 --ckpt-every 1000 --seed 0)

# One run, resumed if it was interrupted, skipped when it reached --steps.
run() {
  local name=$1
  shift
  build/dsv3 train "${common[@]}" -o "$out/$name" --resume "$@"
}

# V3's recipe: the bias rule (gamma 1e-3) with the tiny complementary sequence-wise loss (1e-4).
auxfree=(--gamma 1e-3 --balance-alpha 1e-4 --aux-alpha 0)
if [[ $what == balance || $what == all ]]; then
  run auxfree --mtp-lambda 0.3 "${auxfree[@]}"
  run seqaux --mtp-lambda 0.3 --gamma 0 --balance-alpha 1e-3 --aux-alpha 0
  run v2aux --mtp-lambda 0.3 --gamma 0 --balance-alpha 0 --aux-alpha 1e-3
  run nobalance --mtp-lambda 0.3 --gamma 0 --balance-alpha 0 --aux-alpha 0
  build/dsv3 plot "$out"/{auxfree,seqaux,v2aux,nobalance} -o "$out/balance.png" \
    --title "load balancing: small preset, $steps steps"
fi
if [[ $what == mtp || $what == all ]]; then
  run auxfree --mtp-lambda 0.3 "${auxfree[@]}"
  run nomtp --mtp-lambda 0 "${auxfree[@]}"
  build/dsv3 plot "$out"/{auxfree,nomtp} -o "$out/mtp.png" --title "MTP: small preset, $steps steps"
fi

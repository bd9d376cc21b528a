#!/usr/bin/env bash
# The DeepSeek-V3 ablations at small scale (docs/TRAINING.md): the `small` preset on the English
# corpus, the same data, seed and token budget for every run.
#   scripts/ablations.sh balance [--steps N]   TR Table 5 / §4.5.3: aux-loss-free (gamma 1e-3) vs
#                                              sequence-wise aux loss only vs V2 expert-level aux
#                                              loss vs none -> runs/ablation/balance.png
#   scripts/ablations.sh mtp [--steps N]       TR Table 4: MTP lambda 0.3 vs no MTP
#                                              -> runs/ablation/mtp.png
#   scripts/ablations.sh fp8 [--steps N]       TR §3.3 / Fig. 10: BF16 vs the FP8 recipe (1x128 tiles,
#                                              128x128 blocks) vs FP8 with per-tensor scales, all
#                                              without MTP -> runs/ablation/fp8.png (docs/FP8.md)
#   scripts/ablations.sh fp8stable [--steps N] TR §3.3's claim at a stable learning rate (docs/FP8.md,
#                                              2,000 steps): BF16, the FP8 recipe and FP8 per tensor at
#                                              lr 5e-4 on fp8parts' cheaper batch, the three side by side
#                                              (one process each) -> runs/ablation/fp8stable.png
#   scripts/ablations.sh fp8seeds [--steps N] fp8stable's BF16 and FP8-recipe runs for the seeds in
#                                              $SEEDS (default "1 2"), a seed's two runs side by
#                                              side -> runs/ablation/fp8seeds.png (with seed 0's)
#   scripts/ablations.sh fp8parts [--steps N]  where the FP8 gap comes from (docs/FP8.md), on a
#                                              cheaper setup (8 windows x 64 tokens per step,
#                                              validation over 64 windows): BF16, the recipe, FP8
#                                              in Fprop only, in Fprop + Dgrad, the o_proj input in
#                                              E4M3 instead of E5M6, FP32 moments (BF16 and FP8),
#                                              per-tensor scales, and BF16 / FP8 / FP8 per
#                                              tensor at a stable lr 5e-4
#                                              -> runs/ablation/fp8parts.png
#   scripts/ablations.sh all [--steps N]
#   scripts/ablations.sh one NAME [--steps N] one run: auxfree, seqaux, v2aux, nobalance, nomtp,
#                                              fp8tile, fp8tensor, fp8nofprop (the recipe with a
#                                              BF16 Fprop), or one of fp8parts' (p-bf16,
#                                              p-fp8, p-fprop, p-fprop-dgrad, p-e4m3-oproj,
#                                              p-bf16-f32m, p-fp8-f32m, p-tensor,
#                                              p-bf16-lr5e-4, p-fp8-lr5e-4, p-tensor-lr5e-4)
# Each run goes to runs/ablation/<name>; a finished run is not trained again, an interrupted one
# resumes from its last checkpoint. Needs build/dsv3 (or $DSV3) and data/small
# (scripts/quickstart.sh makes both); $THREADS threads per run (default: the cores); with
# $TIME_LIMIT (e.g. 2h) each run stops there with a checkpoint, to be resumed by the same command.
# $SEED (default 0) seeds the initial weights and the data order; with SEED=N > 0 the runs go to
# runs/ablation/<name>-sN and the plots to <mode>-sN.png, so a second seed sits beside the first.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
shift || true
name=
if [[ $what == one ]]; then name=$1; shift; fi
steps=150
while [[ $# -gt 0 ]]; do
  case $1 in
    --steps) steps=$2; shift 2 ;;
    *) echo "ablations: unknown option '$1' (--steps N)" >&2; exit 2 ;;
  esac
done
out=runs/ablation
mkdir -p "$out"
dsv3=${DSV3:-build/dsv3}
sfx=  # a second seed's runs and plots sit beside the first's
if [[ ${SEED:-0} != 0 ]]; then sfx=-s$SEED; fi
threads=()  # and the time limit
if [[ -n ${THREADS:-} ]]; then threads=(-t "$THREADS"); fi
if [[ -n ${TIME_LIMIT:-} ]]; then threads+=(--time-limit "$TIME_LIMIT"); fi
common=(--preset small --data data/small --steps "$steps" --seq-len 128 --batch 16 --lr 2e-3
        --warmup 20 --val-every 25 --val-windows 128 --ckpt-every 50 --seed "${SEED:-0}" --precision bf16
        "${threads[@]}")

# One run, resumed if it was interrupted, skipped when it reached --steps; fp8parts' runs (p-*)
# use the cheaper batch.
run() {
  local name=$1
  shift
  local flags=("${common[@]}")
  if [[ $name == p-* ]]; then flags+=(--seq-len 64 --batch 8 --val-windows 64); fi
  "$dsv3" train "${flags[@]}" -o "$out/$name$sfx" --resume "$@"
}

# The run folders of the names given, with this seed's suffix; one per line.
dirs() { for n in "$@"; do echo "$out/$n$sfx"; done; }

# V3's recipe: the bias rule (gamma 1e-3) with the tiny complementary sequence-wise loss (1e-4).
auxfree=(--gamma 1e-3 --balance-alpha 1e-4 --aux-alpha 0)
declare -A runs=(
  [auxfree]="--mtp-lambda 0.3 ${auxfree[*]}"
  [seqaux]="--mtp-lambda 0.3 --gamma 0 --balance-alpha 1e-3 --aux-alpha 0"
  [v2aux]="--mtp-lambda 0.3 --gamma 0 --balance-alpha 0 --aux-alpha 1e-3"
  [nobalance]="--mtp-lambda 0.3 --gamma 0 --balance-alpha 0 --aux-alpha 0"
  [nomtp]="--mtp-lambda 0 ${auxfree[*]}"
  [fp8tile]="--mtp-lambda 0 ${auxfree[*]} --precision fp8 --fp8-scaling tile"
  [fp8tensor]="--mtp-lambda 0 ${auxfree[*]} --precision fp8 --fp8-scaling tensor"
  [fp8nofprop]="--mtp-lambda 0 ${auxfree[*]} --precision fp8 --fp8-gemms dgrad,wgrad"
  [p-bf16]="--mtp-lambda 0 ${auxfree[*]}"
  [p-fp8]="--mtp-lambda 0 ${auxfree[*]} --precision fp8"
  [p-fprop]="--mtp-lambda 0 ${auxfree[*]} --precision fp8 --fp8-gemms fprop"
  [p-fprop-dgrad]="--mtp-lambda 0 ${auxfree[*]} --precision fp8 --fp8-gemms fprop,dgrad"
  [p-e4m3-oproj]="--mtp-lambda 0 ${auxfree[*]} --precision fp8 --fp8-o-proj-cache e4m3"
  [p-bf16-f32m]="--mtp-lambda 0 ${auxfree[*]} --moments f32"
  [p-fp8-f32m]="--mtp-lambda 0 ${auxfree[*]} --precision fp8 --moments f32"
  [p-tensor]="--mtp-lambda 0 ${auxfree[*]} --precision fp8 --fp8-scaling tensor"
  [p-bf16-lr5e-4]="--mtp-lambda 0 ${auxfree[*]} --lr 5e-4"
  [p-fp8-lr5e-4]="--mtp-lambda 0 ${auxfree[*]} --precision fp8 --lr 5e-4"
  [p-tensor-lr5e-4]="--mtp-lambda 0 ${auxfree[*]} --precision fp8 --fp8-scaling tensor --lr 5e-4"
)
parts=(p-bf16 p-fp8 p-fprop p-fprop-dgrad p-e4m3-oproj p-bf16-f32m p-fp8-f32m p-tensor
       p-bf16-lr5e-4 p-fp8-lr5e-4 p-tensor-lr5e-4)
if [[ $what == one ]]; then
  [[ -n ${runs[$name]:-} ]] || { echo "ablations: no run '$name'" >&2; exit 2; }
  # shellcheck disable=SC2086  # the options are words
  run "$name" ${runs[$name]}
  exit 0
fi
if [[ $what == balance || $what == all ]]; then
  for n in auxfree seqaux v2aux nobalance; do
    # shellcheck disable=SC2086
    run "$n" ${runs[$n]}
  done
  "$dsv3" plot $(dirs auxfree seqaux v2aux nobalance) -o "$out/balance$sfx.png" \
    --title "load balancing: small preset, $steps steps"
fi
if [[ $what == mtp || $what == all ]]; then
  for n in auxfree nomtp; do
    # shellcheck disable=SC2086
    run "$n" ${runs[$n]}
  done
  "$dsv3" plot $(dirs auxfree nomtp) -o "$out/mtp$sfx.png" --title "MTP: small preset, $steps steps"
fi
if [[ $what == fp8parts ]]; then
  for n in "${parts[@]}"; do
    # shellcheck disable=SC2086
    run "$n" ${runs[$n]}
  done
  "$dsv3" plot $(dirs "${parts[@]}") -o "$out/fp8parts$sfx.png" \
    --title "FP8 ablations: small preset, 8 x 64 tokens per step, $steps steps"
fi
if [[ $what == fp8stable ]]; then
  stable=(p-bf16-lr5e-4 p-fp8-lr5e-4 p-tensor-lr5e-4)
  pids=()
  for n in "${stable[@]}"; do
    # shellcheck disable=SC2086
    run "$n" ${runs[$n]} >"$out/$n$sfx.log" 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || { echo "ablations: a run failed (see $out/*.log)" >&2; exit 1; }; done
  "$dsv3" plot $(dirs "${stable[@]}") -o "$out/fp8stable$sfx.png" \
    --title "BF16 vs FP8 tile vs FP8 tensor, lr 5e-4: small preset, 8 x 64 tokens per step, $steps steps"
fi
if [[ $what == fp8seeds ]]; then
  pair=(p-bf16-lr5e-4 p-fp8-lr5e-4)
  all=()
  for s in ${SEEDS:-1 2}; do
    pids=()
    for n in "${pair[@]}"; do
      SEED=$s scripts/ablations.sh one "$n" --steps "$steps" >"$out/$n-s$s.log" 2>&1 &
      pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || { echo "ablations: a run failed (see $out/*.log)" >&2; exit 1; }; done
    all+=("$out/${pair[0]}-s$s" "$out/${pair[1]}-s$s")
  done
  for n in "${pair[@]}"; do [[ -d $out/$n ]] && all+=("$out/$n"); done
  "$dsv3" plot "${all[@]}" -o "$out/fp8seeds.png" \
    --title "BF16 vs FP8 tile, lr 5e-4, seeds ${SEEDS:-1 2} (and 0): small preset, $steps steps"
fi
if [[ $what == fp8 || $what == all ]]; then
  for n in nomtp fp8tile fp8tensor; do  # nomtp is the BF16 baseline
    # shellcheck disable=SC2086
    run "$n" ${runs[$n]}
  done
  "$dsv3" plot $(dirs nomtp fp8tile fp8tensor) -o "$out/fp8$sfx.png" \
    --title "BF16 (nomtp) vs FP8 tile vs FP8 tensor: small preset, $steps steps"
fi

#!/usr/bin/env bash
# Distributed training on this machine (docs/DISTRIBUTED.md): data parallel over 1, 2 and 4 MPI
# ranks and expert parallel inside DP 4 (E = 2, 4; FP32 and FP8 dispatch payloads) (tiny preset,
# the same global batch of ACCUM micro-batches, one thread a rank) — step time, the bytes rank 0
# sent (DP reductions and MoE all-to-alls), what rank 0 holds — the expert-parallel dispatcher's
# check over 2 and 4 ranks (its bytes, FP32 and FP8), and the pipeline runner against one process:
# 1F1B and DualPipe over 4 ranks, DualPipeV over 2 (4 stages: a tiny layer each; PP_ACCUM
# micro-batches, PP_STEPS steps): each rank's busy and idle (bubble) seconds per step beside TR
# Table 2's formula at the run's mean chunk costs, and the bytes each rank sent. Oversubscribed
# ranks share the cores, so the figures are relative. No peer: nothing else here trains over MPI.
# Needs a DSV3_MPI=ON build (scripts/build.sh -DDSV3_MPI=ON -DDSV3_TESTS=ON). Env: STEPS (6; the
# first 2 are left out of the step time), SEQ (32), BATCH (2), ACCUM (4), PP_ACCUM (8), PP_STEPS
# (4; the first left out); PARTS (dp ep pp ppcost epp ovl fb: which to run; ppcost, --pp-split
# even against cost, epp, --ep 2 inside 4 pipelines of 2, ovl, DP 2 and 4 with --overlap-reduce
# on, and fb, --overlap-fb off and on (DualPipeV over 2 ranks; DualPipe with --dp 2 --ep 2 over
# 4), only when named).
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${STEPS:-6} seq=${SEQ:-32} batch=${BATCH:-2} accum=${ACCUM:-4}
pp_accum=${PP_ACCUM:-8} pp_steps=${PP_STEPS:-4} parts=${PARTS:-dp ep pp}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader,tcp
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "load: $(uptime)"
build/dsv3 data prepare --tokenizer assets/tokenizers/dsv3-en-4k --input .cache/corpus/valid.txt \
  -o "$work/data" --val-fraction 0.2 >/dev/null 2>&1
# name, ranks, extra flags: DP over 1, 2, 4 ranks (ovl: the reduction in buckets overlapped with
# the backward); EP inside DP 4 (E = 2, 4; FP32 and FP8 payloads).
runs=("dp1 1" "dp2 2" "dp4 4" "ovl2 2 --overlap-reduce on" "ovl4 4 --overlap-reduce on"
  "ep2 4 --ep 2" "ep4 4 --ep 4" "ep4_fp8 4 --ep 4 --ep-dispatch fp8")
for spec in "${runs[@]}"; do
  read -r name n extra <<<"$spec"
  dp=$n
  [[ " $parts " == *" ${name%%[0-9]*} "* ]] || continue
  launch=()
  (( n > 1 )) && launch=(mpirun --oversubscribe -np "$n")
  # shellcheck disable=SC2086  # extra holds several flags
  nice -n 10 "${launch[@]}" build/dsv3 train --preset tiny --data "$work/data" -o "$work/$name" \
    --steps "$steps" --seq-len "$seq" --batch "$batch" --accum "$accum" --dp "$dp" $extra \
    --val-every 0 --ckpt-every 100000 -t 1 2>"$work/$name.log" >/dev/null
  python3 - "$work/$name/metrics.jsonl" "$work/$name.log" "$name" "$steps" <<'PY'
import json, re, statistics, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
tps = statistics.median(l["tokens_per_s"] for l in lines[2:])
log = open(sys.argv[2]).read()
m = re.search(r"rank 0 sent ([0-9.]+) MB .*?: ([0-9.]+) MB gradients.*?, ([0-9.]+) MB MoE", log)
held = re.search(r"rank 0 holds ([0-9.]+)M of the ([0-9.]+)M parameters.*?: ([0-9]+) MB", log)
steps = int(sys.argv[4])
print("%-8s %6.0f tokens/s (median of steps 3..%d)" % (sys.argv[3], tps, steps), end="")
if m:
    print(", rank 0 sent %.1f MB: %.1f MB DP (gradients, weights, losses), %.2f MB MoE all-to-all"
          " (%d steps + the final checkpoint)" % (float(m.group(1)), float(m.group(2)),
                                                          float(m.group(3)), steps), end="")
if held:
    print("; rank 0 holds %sM of %sM parameters, %s MB of state" % held.groups(), end="")
print()
PY
done
if [[ -x build/tests/dist_ep_check && " $parts " == *" ep "* ]]; then
  for n in 2 4; do
    for payload in fp32 fp8; do mpirun --oversubscribe -np "$n" build/tests/dist_ep_check "$payload"; done
  done
fi
# The median tokens/s of a run's metrics (the first step left out), after a label.
pp_tokens_per_s() {
  python3 - "$1" "$2" <<'PY'
import json, statistics, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
tps = statistics.median(l["tokens_per_s"] for l in lines[1:])
print("%s: %.0f tokens/s (median of steps 2..%d)" % (sys.argv[2], tps, len(lines)))
PY
}
for run in "1 none" "4 1f1b" "4 dualpipe" "2 dualpipev"; do
  [[ " $parts " == *" pp "* ]] || break
  read -r n schedule <<<"$run"
  launch=() pp=()  # the first run: one process, the same micro-batches
  (( n > 1 )) && launch=(mpirun --oversubscribe -np "$n") pp=(--pp "$n" --pipeline "$schedule")
  "${launch[@]}" build/dsv3 train --preset tiny --data "$work/data" -o "$work/$schedule" \
    --steps "$pp_steps" --seq-len "$seq" --batch "$batch" --accum "$pp_accum" "${pp[@]}" \
    --val-every 0 --ckpt-every 100000 -t 1 2>"$work/log-$schedule" >/dev/null
  pp_tokens_per_s "$work/$schedule/metrics.jsonl" "PP $schedule over $n ranks"
  grep -E "^pipeline:|^  rank|Table 2|through MPI|^memory: --pp" "$work/log-$schedule" || true
done
# EP inside PP: 4 pipelines of 2 stages (1F1B) over 8 ranks, --ep 2, the global batch of the DP
# runs above (tiny preset).
if [[ " $parts " == *" epp "* ]]; then
  mpirun --oversubscribe -np 8 build/dsv3 train --preset tiny --data "$work/data" -o "$work/epp" \
    --steps "$steps" --seq-len "$seq" --batch "$batch" --accum "$accum" --dp 4 --ep 2 --pp 2 \
    --pipeline 1f1b --val-every 0 --ckpt-every 100000 -t 1 2>"$work/log-epp" >/dev/null
  pp_tokens_per_s "$work/epp/metrics.jsonl" "DP 4 x PP 2 (1F1B), --ep 2, 8 ranks"
  grep -E "through MPI|^memory: --pp" "$work/log-epp" || true
fi
# --pp-split even against cost: 1F1B over 4 ranks on the 8-layer test model (the head's stage
# costs several layers), so the cost split has layers to move.
if [[ " $parts " == *" ppcost "* ]]; then
  build/dsv3 init --config tests/dist/pp_config.json -o "$work/pp8" --dtype f32 --seed 3 \
    --tokenizer assets/tokenizers/dsv3-en-4k >/dev/null 2>&1
  for split in even cost; do
    mpirun --oversubscribe -np 4 build/dsv3 train --init "$work/pp8" --data "$work/data" \
      -o "$work/split-$split" --steps "$pp_steps" --seq-len "$seq" --batch "$batch" \
      --accum "$pp_accum" --pp 4 --pipeline 1f1b --pp-split "$split" --val-every 0 \
      --ckpt-every 100000 -t 1 2>"$work/log-split-$split" >/dev/null
    pp_tokens_per_s "$work/split-$split/metrics.jsonl" "PP 1f1b over 4 ranks, --pp-split $split"
    grep -E "^  rank|^memory: --pp" "$work/log-split-$split" || true
  done
fi
# --overlap-fb off and on, alternating, two rounds: DualPipeV over 2 ranks, and DualPipe over 2
# with --dp 2 --ep 2 (4 ranks: each pair's F and B run all-to-alls at once).
if [[ " $parts " == *" fb "* ]]; then
  for round in 1 2; do
    for layout in "2 dualpipev 1" "4 dualpipe 2 --ep 2"; do
      for fb in off on; do
        read -r n schedule dp extra <<<"$layout"
        # shellcheck disable=SC2086  # extra holds several flags
        mpirun --oversubscribe -np "$n" build/dsv3 train --preset tiny --data "$work/data" \
          -o "$work/fb-$n-$fb" --steps "$pp_steps" --seq-len "$seq" --batch "$batch" \
          --accum "$pp_accum" --dp "$dp" $extra --pp 2 --pipeline "$schedule" --overlap-fb "$fb" \
          --val-every 0 --ckpt-every 100000 -t 1 2>"$work/log-fb" >/dev/null
        pp_tokens_per_s "$work/fb-$n-$fb/metrics.jsonl" \
          "round $round, $schedule, $n ranks${extra:+ ($extra)}, --overlap-fb $fb"
        grep -E "^pipeline:" "$work/log-fb" || true
        rm -rf "$work/fb-$n-$fb"
      done
    done
  done
fi

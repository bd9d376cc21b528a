#!/usr/bin/env bash
# The pipeline runner on this machine (docs/DISTRIBUTED.md, "Pipeline runner"): 1F1B over 4 ranks
# (4 stages), DualPipe over 4 ranks (4 stages, each held twice) and DualPipeV over 2 ranks (4
# stages) on the tiny preset (4 layers: a layer a stage), ACCUM micro-batches a step, one thread a
# rank. Prints each run's per-rank busy and idle (bubble) seconds per step beside TR Table 2's
# formula evaluated with the run's measured mean chunk costs, the step time and the bytes each rank
# sent. Oversubscribed ranks share the cores (a rank waiting for its input may be waiting for a
# core), so the figures are relative. No peer: nothing else here runs these schedules over MPI.
# Needs a DSV3_MPI=ON build. Env: STEPS (4; the first is left out of the step time), SEQ (32),
# BATCH (2), ACCUM (8).
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${STEPS:-4} seq=${SEQ:-32} batch=${BATCH:-2} accum=${ACCUM:-8}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader,tcp
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "load: $(uptime)"
build/dsv3 data prepare --tokenizer assets/tokenizers/dsv3-en-4k --input .cache/corpus/valid.txt \
  -o "$work/data" --val-fraction 0.2 >/dev/null 2>&1
for run in "1 none" "4 1f1b" "4 dualpipe" "2 dualpipev"; do
  read -r n schedule <<<"$run"
  pp=()
  (( n > 1 )) && pp=(mpirun --oversubscribe -np "$n")
  extra=()
  [[ $schedule != none ]] && extra=(--pp "$n" --pipeline "$schedule")
  "${pp[@]}" build/dsv3 train --preset tiny --data "$work/data" -o "$work/$schedule" \
    --steps "$steps" --seq-len "$seq" --batch "$batch" --accum "$accum" "${extra[@]}" \
    --val-every 0 --ckpt-every 100000 -t 1 2>"$work/log-$schedule" >/dev/null
  echo "== $schedule over $n rank(s)"
  python3 - "$work/$schedule/metrics.jsonl" <<'PY'
import json, statistics, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
tps = statistics.median(l["tokens_per_s"] for l in lines[1:])
print("step: %.0f tokens/s (median of steps 2..%d)" % (tps, len(lines)))
PY
  grep -E "^pipeline:|^  rank|Table 2|through MPI" "$work/log-$schedule" || true
done

#!/usr/bin/env bash
# Distributed training on this machine (docs/DISTRIBUTED.md): data parallel over 1, 2 and 4 MPI
# ranks (tiny preset, the same global batch of ACCUM micro-batches, one thread a rank) — step time
# and the bytes rank 0 sent — the expert-parallel dispatcher's check over 2 and 4 ranks (its
# bytes), and the pipeline runner against one process: 1F1B and DualPipe over 4 ranks, DualPipeV
# over 2 (4 stages: a tiny layer each; PP_ACCUM micro-batches, PP_STEPS steps): each rank's busy
# and idle (bubble) seconds per step beside TR Table 2's formula at the run's mean chunk costs, and
# the bytes each rank sent. Oversubscribed ranks share the cores, so the figures are relative. No peer:
# nothing else here trains over MPI. Needs a DSV3_MPI=ON build (scripts/build.sh -DDSV3_MPI=ON
# -DDSV3_TESTS=ON). Env: STEPS (6; the first 2 are left out of the step time), SEQ (32), BATCH
# (2), ACCUM (4), PP_ACCUM (8), PP_STEPS (4; the first left out); PARTS (dp ep pp: which to run).
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${STEPS:-6} seq=${SEQ:-32} batch=${BATCH:-2} accum=${ACCUM:-4}
pp_accum=${PP_ACCUM:-8} pp_steps=${PP_STEPS:-4} parts=${PARTS:-dp ep pp}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader,tcp
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "load: $(uptime)"
build/dsv3 data prepare --tokenizer assets/tokenizers/dsv3-en-4k --input README.md \
  -o "$work/data" --val-fraction 0.2 >/dev/null 2>&1
for n in 1 2 4; do
  [[ " $parts " == *" dp "* ]] || break
  launch=()
  (( n > 1 )) && launch=(mpirun --oversubscribe -np "$n")
  "${launch[@]}" build/dsv3 train --preset tiny --data "$work/data" -o "$work/run$n" \
    --steps "$steps" --seq-len "$seq" --batch "$batch" --accum "$accum" --dp "$n" \
    --val-every 0 --ckpt-every 100000 -t 1 2>"$work/log$n" >/dev/null
  python3 - "$work/run$n/metrics.jsonl" "$work/log$n" "$n" "$steps" <<'PY'
import json, re, statistics, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
tps = statistics.median(l["tokens_per_s"] for l in lines[2:])
tokens = None
m = re.search(r"rank 0 sent ([0-9.]+) MB", open(sys.argv[2]).read())
sent = float(m.group(1)) if m else 0.0
n, steps = int(sys.argv[3]), int(sys.argv[4])
print("DP %d rank(s): %.0f tokens/s (median of steps 3..%d), rank 0 sent %.1f MB (%d steps + the "
      "final checkpoint's state gather)" % (n, tps, steps, sent, steps))
PY
done
if [[ -x build/tests/dist_ep_check && " $parts " == *" ep "* ]]; then
  for n in 2 4; do mpirun --oversubscribe -np "$n" build/tests/dist_ep_check; done
fi
for run in "1 none" "4 1f1b" "4 dualpipe" "2 dualpipev"; do
  [[ " $parts " == *" pp "* ]] || break
  read -r n schedule <<<"$run"
  launch=() pp=()  # the first run: one process, the same micro-batches
  (( n > 1 )) && launch=(mpirun --oversubscribe -np "$n") pp=(--pp "$n" --pipeline "$schedule")
  "${launch[@]}" build/dsv3 train --preset tiny --data "$work/data" -o "$work/$schedule" \
    --steps "$pp_steps" --seq-len "$seq" --batch "$batch" --accum "$pp_accum" "${pp[@]}" \
    --val-every 0 --ckpt-every 100000 -t 1 2>"$work/log-$schedule" >/dev/null
  python3 - "$work/$schedule/metrics.jsonl" "$schedule" "$n" <<'PY'
import json, statistics, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
tps = statistics.median(l["tokens_per_s"] for l in lines[1:])
print("PP %s over %s ranks: %.0f tokens/s (median of steps 2..%d)" % (sys.argv[2], sys.argv[3],
                                                                     tps, len(lines)))
PY
  grep -E "^pipeline:|^  rank|Table 2|through MPI" "$work/log-$schedule" || true
done

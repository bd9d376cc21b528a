#!/usr/bin/env bash
# Inference speed, dsv3 beside llama.cpp, interleaved in one run on the same shapes and bits:
# `dsv3 bench` on a model folder, then `llama-bench` on each GGUF of the same weights, pp (prompt
# processing) and tg (generation) tokens/s side by side with their ratios, and the roofline
# (`dsv3 bench --memory`: read bandwidth and BF16 / INT8 peaks) with the fraction dsv3 reaches.
#   LLAMA_BENCH=/path/to/llama-bench bench/inference.sh DIR:GGUF[,GGUF...] [DIR:GGUF...]
# Each argument pairs a dsv3 model folder with the GGUF file(s) holding the same weights (e.g. a
# BF16 folder with its BF16 and F16 conversions; a Q4_0 folder with its Q4_0 GGUF). The project
# holds no llama.cpp: build it yourself and give the binary's path.
# Env: THREADS (2; a list such as "1 2" runs every pair at each count), PP (512), TG (128), REPS
# (3), ROUNDS (1: each round runs every pair once, in order; more rounds interleave again), TIMEOUT
# (seconds per run, 900), DSV3 (build/dsv3).
# Prints the machine (lscpu), its load (uptime) before and after, one line per run and the table,
# whose load column is the 1-minute load average when each tool's runs started (dsv3 / llama.cpp,
# averaged over rounds): on a shared machine only figures taken at a low load compare across runs.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${LLAMA_BENCH:?set LLAMA_BENCH to the llama-bench binary}"
[[ -x $LLAMA_BENCH ]] || { echo "LLAMA_BENCH=$LLAMA_BENCH is not an executable" >&2; exit 2; }
dsv3=${DSV3:-build/dsv3}
[[ -x $dsv3 ]] || { echo "$dsv3 missing: build first (scripts/build.sh)" >&2; exit 2; }
thread_counts=${THREADS:-2} pp=${PP:-512} tg=${TG:-128} reps=${REPS:-3} rounds=${ROUNDS:-1}
limit=${TIMEOUT:-900}
(( $# )) || { sed -n 2,12p "$0" >&2; exit 2; }
for pair in "$@"; do
  dir=${pair%%:*} ggufs=${pair#*:}
  [[ $pair == *:* && -f $dir/config.json ]] || { echo "bad pair '$pair': want DIR:GGUF[,GGUF]" >&2; exit 2; }
  IFS=, read -ra files <<<"$ggufs"
  for g in "${files[@]}"; do [[ -f $g ]] || { echo "no GGUF file $g" >&2; exit 2; }; done
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

lscpu | grep -E "Model name|^CPU\(s\)|L3" | sed 's/  */ /g'
lscpu | grep -o -w -E "avx512_bf16|avx512_vnni|amx_bf16|amx_int8|avx512f" | sort -u | tr '\n' ' '
echo
echo "dsv3 $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $("$LLAMA_BENCH" --version 2>&1 | head -n 1 || true)"
echo "load before: $(uptime)"
for threads in $thread_counts; do
  "$dsv3" bench --memory -t "$threads" --json >"$work/roofline$threads.json"
done

load1() { cut -d' ' -f1 /proc/loadavg; }
n=0 i=0
for ((round = 1; round <= rounds; ++round)); do
  for threads in $thread_counts; do
    for pair in "$@"; do
      dir=${pair%%:*}
      IFS=, read -ra files <<<"${pair#*:}"
      n=$((n + 1))
      out="$work/run$n"
      dload=$(load1)
      echo "round $round: dsv3 bench -m $dir -t $threads (load $dload)" >&2
      timeout "$limit" nice -n 10 "$dsv3" bench -m "$dir" -p "$pp" -n "$tg" -r "$reps" -t "$threads" \
        --memory --json >"$out.dsv3.json" 2>"$out.dsv3.err" || echo "dsv3 bench failed on $dir" >&2
      for g in "${files[@]}"; do
        i=$((i + 1))
        lload=$(load1)
        echo "round $round: llama-bench -m $g -t $threads (load $lload)" >&2
        timeout "$limit" nice -n 10 "$LLAMA_BENCH" -m "$g" -p "$pp" -n "$tg" -t "$threads" -r "$reps" \
          -o json >"$out.llama$i.json" 2>"$out.llama$i.err" || echo "llama-bench failed on $g" >&2
        echo "$dir|$g|$threads|$out.dsv3.json|$out.llama$i.json|$dload|$lload" >>"$work/index"
      done
    done
  done
done
echo "load after: $(uptime)"

python3 - "$work" "$reps" <<'EOF'
import json, os, sys
work, reps = sys.argv[1], sys.argv[2]

def load(p):
    try:
        with open(p) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None

roofs = {}
for f in sorted(os.listdir(work)):
    if f.startswith("roofline") and f.endswith(".json"):
        roofs[f[len("roofline"):-len(".json")]] = (load(os.path.join(work, f)) or {}).get("roofline", {})
rows = {}
for line in open(os.path.join(work, "index")):
    d, g, th, dj, lj, dl, ll_ = line.strip().split("|")
    ds, ll = load(dj), load(lj)
    r = rows.setdefault((d, g, th), {"d_pp": [], "d_tg": [], "l_pp": [], "l_tg": [], "f_pp": [], "f_tg": [],
                                     "bytes": None, "d_load": [], "l_load": []})
    r["d_load"].append(float(dl))
    r["l_load"].append(float(ll_))
    for t in (ds or {}).get("results", []):
        k = "pp" if t["n_prompt"] > 0 else "tg"
        r["d_" + k].append(t["avg_ts"])
        if "roofline_fraction" in t:
            r["f_" + k].append(t["roofline_fraction"])
    if ds:
        r["bytes"] = ds.get("decode_bytes_per_token")
    for t in ll or []:
        k = "pp" if t.get("n_prompt", 0) > 0 else "tg"
        r["l_" + k].append(t["avg_ts"])

def avg(v):
    return sum(v) / len(v) if v else None

def fmt(x, f="%.1f"):
    return f % x if x is not None else "-"

def ratio(a, b):
    return "%.2fx" % (a / b) if a and b else "-"

for roof in roofs.values():
    print("roofline (%d threads): read %.1f GB/s (1 thread %.1f); peaks GFLOP/s: FP32 FMA %.0f, BF16 dot %.0f, "
          "AMX BF16 %.0f; INT8 GOP/s: VNNI %.0f, AMX %.0f" % (
              roof["threads"], roof["read_gbs_n"], roof["read_gbs_1"], roof["f32_fma_gflops"],
              roof["bf16_dot_gflops"], roof["amx_bf16_gflops"], roof["int8_vnni_gops"], roof["amx_int8_gops"]))
print()
print("| dsv3 folder | GGUF | threads | load | dsv3 pp | llama.cpp pp | pp ratio | dsv3 tg | llama.cpp tg "
      "| tg ratio | dsv3 pp % of peak | dsv3 tg % of bandwidth | roofline tg |")
print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for (d, g, th), r in rows.items():
    roof = roofs.get(th, {})
    dp, lp, dt, lt = avg(r["d_pp"]), avg(r["l_pp"]), avg(r["d_tg"]), avg(r["l_tg"])
    fp, ft = avg(r["f_pp"]), avg(r["f_tg"])
    roof_tg = roof["read_gbs_n"] * 1e9 / r["bytes"] if roof and r["bytes"] else None
    print("| %s | %s | %s | %.1f / %.1f | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
        os.path.basename(d.rstrip("/")), os.path.basename(g), th, avg(r["d_load"]), avg(r["l_load"]),
        fmt(dp), fmt(lp), ratio(dp, lp),
        fmt(dt), fmt(lt), ratio(dt, lt), fmt(fp and 100 * fp, "%.1f%%"), fmt(ft and 100 * ft, "%.0f%%"),
        fmt(roof_tg)))
print("\ntokens/s, mean over rounds of each tool's mean over %s repetitions" % reps)
EOF

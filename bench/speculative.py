#!/usr/bin/env python3
"""MTP speculative decoding against plain decoding, interleaved, on a trained model.

usage: bench/speculative.py MODEL_DIR [--dsv3 build/dsv3] [-n 128] [--rounds 2] [-t THREADS]

For each prompt, temperature (greedy, 0.7) and round, runs `dsv3 generate` plain and with
`--speculative mtp --draft N` for N = 1, 2, 3, one after the other (so load changes hit all of
them alike), and prints per setting: the acceptance rate, tokens per verification pass, the
decode speed (tokens/s after the first token) and its ratio to plain decoding at the same
temperature, and where a step's time goes (ms drafting in the MTP module, ms verifying). No
other CPU engine runs DeepSeek-V3's MTP module as a draft (llama.cpp's is not in mainline), so
the comparison is dsv3 against itself. Greedy runs must give plain decoding's tokens (checked).
The machine's load (uptime) is printed before and after.
"""
import argparse
import re
import statistics
import subprocess

PROMPTS = ["It was a dark night, and", "The President of the United States",
           "In the beginning of the year", "She opened the door and saw"]
GEN = re.compile(r"generation: (\d+) tokens, ([\d.]+) tokens/s")
SPEC = re.compile(r"speculative \(mtp\): (\d+) steps, (\d+) of (\d+) drafts accepted .*?([\d.]+) "
                  r"tokens per step; per step ([\d.]+) ms drafting \(MTP\), ([\d.]+) ms verifying")


def run(args, prompt, temp, draft, seed):
    cmd = [args.dsv3, "generate", "-m", args.model, "-p", prompt, "-n", str(args.n), "-t",
           str(args.threads), "--ignore-eos", "--seed", str(seed), "-v"]
    cmd += ["--greedy"] if temp == 0 else ["--temp", str(temp)]
    if draft:
        cmd += ["--speculative", "mtp", "--draft", str(draft)]
    err = subprocess.run(cmd, capture_output=True, check=True, text=True).stderr
    g = GEN.search(err)
    ids = next(line for line in err.splitlines() if line.startswith("generated ids:"))
    r = {"tps": float(g.group(2)), "ids": ids}
    s = SPEC.search(err)
    if s:
        steps, acc, drafted = int(s.group(1)), int(s.group(2)), int(s.group(3))
        r.update(steps=steps, accepted=acc, drafted=drafted, tokens_per_step=float(s.group(4)),
                 draft_ms=float(s.group(5)), verify_ms=float(s.group(6)))
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--dsv3", default="build/dsv3")
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("-t", "--threads", type=int, default=2)
    args = ap.parse_args()
    print("load before:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    results = {}
    for rnd in range(args.rounds):
        for temp in (0, 0.7):
            for i, prompt in enumerate(PROMPTS):
                for draft in (0, 1, 2, 3):
                    r = run(args, prompt, temp, draft, seed=100 * rnd + i)
                    results.setdefault((temp, draft), []).append(r)
                    if temp == 0 and draft > 0:  # greedy: the same tokens as plain decoding
                        same = r["ids"] == results[(0, 0)][-1]["ids"]
                        assert same, f"greedy output differs at --draft {draft}: {prompt!r}"
    print("load after: ", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    print(f"\n{len(PROMPTS)} prompts x {args.rounds} rounds, -n {args.n}, -t {args.threads}\n")
    print("| temperature | draft N | acceptance | tokens / pass | decode t/s | speed-up | "
          "ms drafting / pass | ms verifying / pass |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for temp in (0, 0.7):
        base = statistics.mean(r["tps"] for r in results[(temp, 0)])
        for draft in (0, 1, 2, 3):
            rs = results[(temp, draft)]
            tps = statistics.mean(r["tps"] for r in rs)
            name = "greedy" if temp == 0 else str(temp)
            if draft == 0:
                # One plain decode step (one row through the main model) for comparison.
                ms = statistics.mean(1e3 / r["tps"] for r in rs)
                print(f"| {name} | plain | | 1 | {tps:.1f} | 1.00x | | {ms:.2f} (1 row) |")
                continue
            acc = sum(r["accepted"] for r in rs) / sum(r["drafted"] for r in rs)
            steps = sum(r["steps"] for r in rs)
            tok = sum(r["tokens_per_step"] * r["steps"] for r in rs) / steps
            dms = sum(r["draft_ms"] * r["steps"] for r in rs) / steps
            vms = sum(r["verify_ms"] * r["steps"] for r in rs) / steps
            print(f"| {name} | {draft} | {100 * acc:.1f}% | {tok:.2f} | {tps:.1f} | "
                  f"{tps / base:.2f}x | {dms:.2f} | {vms:.2f} |")


if __name__ == "__main__":
    main()

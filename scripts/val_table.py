#!/usr/bin/env python3
"""Validation losses of training runs as a Markdown table (docs/FP8.md, docs/TRAINING.md).

  scripts/val_table.py [--steps 250,500,1000,2000] [--last 5] [--base RUN] RUN...

RUN is a `dsv3 train -o` folder (its metrics.jsonl). A row per run: the validation loss at each
of --steps, the mean of the last --last validation points, and both against --base's (default:
the first run) in percent.
"""
import argparse
import json
import os
import sys


def val_points(run):
    path = os.path.join(run, "metrics.jsonl")
    pts = {}
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            if "val_loss" in r:
                pts[r["step"]] = r["val_loss"]
    if not pts:
        sys.exit("val_table: %s has no validation points" % path)
    return pts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--steps", default="250,500,1000,1500,2000")
    ap.add_argument("--last", type=int, default=5)
    ap.add_argument("--base")
    a = ap.parse_args()
    steps = [int(s) for s in a.steps.split(",")]
    base = a.base or a.runs[0]
    bpts = val_points(base)
    final = max(bpts)
    bmean = sum(bpts[s] for s in sorted(bpts)[-a.last:]) / a.last
    head = ["run"] + ["val @%d" % s for s in steps] + [
        "vs base @%d" % final, "mean of last %d" % a.last, "vs base"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for run in a.runs:
        pts = val_points(run)
        last = sorted(pts)[-a.last:]
        mean = sum(pts[s] for s in last) / len(last)
        cells = [os.path.basename(run.rstrip("/"))]
        cells += ["%.4f" % pts[s] if s in pts else "" for s in steps]
        end = pts.get(final)
        cells.append("%+.2f%%" % (100 * (end / bpts[final] - 1)) if end and run != base else "")
        cells.append("%.4f" % mean)
        cells.append("%+.2f%%" % (100 * (mean / bmean - 1)) if run != base else "")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

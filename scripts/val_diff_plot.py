#!/usr/bin/env python3
"""Plots how far runs' validation losses sit from their baselines', in percent, step by step.

  scripts/val_diff_plot.py OUT.png BASE RUN [BASE RUN ...] [--title TEXT]

Each BASE RUN pair (`dsv3 train -o` folders, e.g. the same seed in BF16 and FP8) gives one line,
100 * (RUN's validation loss / BASE's - 1) at the steps both have; a thick line is the mean over
the pairs. Needs gnuplot (scripts/setup-deps.sh installs it).
"""
import argparse
import os
import subprocess
import sys

from val_table import val_points


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--title", default="validation loss against the baseline")
    a = ap.parse_args()
    if len(a.runs) % 2:
        sys.exit("val_diff_plot: runs come in pairs, BASE RUN")
    pairs = list(zip(a.runs[0::2], a.runs[1::2]))
    series = []
    for base, run in pairs:
        b, r = val_points(base), val_points(run)
        steps = sorted(set(b) & set(r))
        series.append((os.path.basename(run.rstrip("/")), {s: 100 * (r[s] / b[s] - 1) for s in steps}))
    common = sorted(set.intersection(*(set(d) for _, d in series)))
    mean = {s: sum(d[s] for _, d in series) / len(series) for s in common}
    blocks = [d for _, d in series] + [mean]
    data = "\n".join("\n".join("%d %.6f" % (s, d[s]) for s in sorted(d)) + "\ne" for d in blocks)
    names = [n for n, _ in series] + ["mean of %d" % len(series)]
    plots = ", ".join("'-' using 1:2 with lines lw %d title '%s'" % (4 if i == len(names) - 1 else 1, n)
                      for i, n in enumerate(names))
    script = "\n".join([
        "set terminal pngcairo size 1400,800 font ',12'",
        "set output '%s'" % a.out,
        "set title '%s'" % a.title.replace("'", "''"),
        "set xlabel 'step'",
        "set ylabel 'validation loss vs baseline (%)'",
        "set grid",
        "set key outside right",
        "set yrange [-1.5:1.5]",
        "plot 0 with lines lc 'black' notitle, " + plots,
        data,
    ])
    subprocess.run(["gnuplot"], input=script.encode(), check=True)
    print("wrote %s: %d pairs; mean at step %d: %+.2f%%" % (a.out, len(series), common[-1], mean[common[-1]]))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""CLI checks of `dsv3 plot` on synthetic metrics.jsonl files (standard library only).

  plot_check.py CASE DSV3 WORKDIR

png          two runs (one with MTP and validation lines, one without MTP and with an unfinished
             last line, as a run still writing) -> exit 0, a PNG of the requested size
malformed    a line with a string loss, a line that is not JSON -> exit 1 naming file and line
no_gnuplot   PATH without gnuplot -> exit 1 naming the Debian package
missing_run  a folder without metrics.jsonl -> exit 1 naming the path
link         -o through a symbolic link writes the link's target (the link stays); -o naming the
             run's own metrics.jsonl is refused, the file intact (issue 19)
"""
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys


def write_run(d, steps, mtp, partial_tail=False):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "metrics.jsonl"), "w") as f:
        for s in range(1, steps + 1):
            row = {"step": s, "loss": 8 * math.exp(-s / 20) + 2, "lr": 1e-3 * min(1, s / 5),
                   "grad_norm": 1.0 / s, "tokens_per_s": 1000.0 + s,
                   "maxvio": [0.5 / s, 1.0 / s, 0.2], "balance_loss": 1e-4, "future_key": "x"}
            if mtp:
                row["mtp_loss"] = row["loss"] + 0.3
            f.write(json.dumps(row) + "\n")
            if s % 10 == 0:
                f.write(json.dumps({"step": s, "val_loss": row["loss"] + 0.1}) + "\n")
        if partial_tail:
            f.write('{"step": %d, "loss": 2.' % (steps + 1))


def run(cmd, env=None):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    print(r.stdout)
    return r.returncode, r.stdout


def expect(cond, msg):
    if not cond:
        sys.exit("plot_check: " + msg)


def main(case, dsv3, work):
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    out = os.path.join(work, "sub", "curves.png")
    if case == "png":
        write_run(os.path.join(work, "baseline"), 40, True)
        write_run(os.path.join(work, "aux_free"), 30, False, partial_tail=True)
        rc, text = run([dsv3, "plot", os.path.join(work, "baseline"), os.path.join(work, "aux_free"),
                        "-o", out, "--size", "640x480"])
        expect(rc == 0, "exit code %d" % rc)
        expect(re.search(r"wrote .*curves\.png \(2 runs, 77 points\)", text), "no summary line")
        expect("unfinished last line" in text, "the unfinished line was not reported")
        with open(out, "rb") as f:
            head = f.read(24)
        expect(head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature")
        expect(head[12:16] == b"IHDR", "no IHDR chunk first")
        w, h = struct.unpack(">II", head[16:24])
        expect((w, h) == (640, 480), "image is %dx%d, expected 640x480" % (w, h))
        left = sorted(os.listdir(os.path.dirname(out)))
        expect(left == ["curves.png"], "files left beside the image: %s" % left)
    elif case == "malformed":
        d = os.path.join(work, "bad")
        os.makedirs(d)
        with open(os.path.join(d, "metrics.jsonl"), "w") as f:
            f.write('{"step": 1, "loss": 3.0}\n\n{"step": 2, "loss": "high"}\n')
        rc, text = run([dsv3, "plot", d, "-o", out])
        expect(rc == 1, "exit code %d, expected 1" % rc)
        expect(re.search(r"bad/metrics\.jsonl:3: loss must be a number", text), "line 3 not named")
        with open(os.path.join(d, "metrics.jsonl"), "w") as f:
            f.write('{"step": 1, "loss": 3.0}\nstep 2 loss 2.5\n{"step": 3}\n')
        rc, text = run([dsv3, "plot", d, "-o", out])
        expect(rc == 1, "exit code %d, expected 1" % rc)
        expect(re.search(r"bad/metrics\.jsonl:2: JSON error", text), "line 2 not named")
        expect(not os.path.exists(out), "an image was written")
    elif case == "no_gnuplot":
        write_run(os.path.join(work, "run"), 5, False)
        env = dict(os.environ, PATH="/nonexistent")
        rc, text = run([dsv3, "plot", os.path.join(work, "run"), "-o", out], env=env)
        expect(rc == 1, "exit code %d, expected 1" % rc)
        expect("gnuplot is not installed" in text and "gnuplot-nox" in text, "package not named")
    elif case == "missing_run":
        os.makedirs(os.path.join(work, "empty"))
        rc, text = run([dsv3, "plot", os.path.join(work, "empty"), "-o", out])
        expect(rc == 1, "exit code %d, expected 1" % rc)
        expect(re.search(r"empty/metrics\.jsonl", text), "path not named")
    elif case == "link":
        run_dir = os.path.join(work, "run")
        write_run(run_dir, 5, False)
        os.makedirs(os.path.dirname(out))
        os.symlink("target.png", out)
        rc, text = run([dsv3, "plot", run_dir, "-o", out])
        expect(rc == 0, "exit code %d" % rc)
        expect(os.path.islink(out), "the link was replaced by a file")
        with open(os.path.join(os.path.dirname(out), "target.png"), "rb") as f:
            expect(f.read(8) == b"\x89PNG\r\n\x1a\n", "the link's target is no PNG")
        metrics = os.path.join(run_dir, "metrics.jsonl")
        before = open(metrics).read()
        rc, text = run([dsv3, "plot", run_dir, "-o", metrics])
        expect(rc == 1 and "is an input of this command" in text, "-o over the input accepted")
        expect(open(metrics).read() == before, "metrics.jsonl changed")
    else:
        sys.exit("plot_check: unknown case " + case)


if __name__ == "__main__":
    main(*sys.argv[1:])

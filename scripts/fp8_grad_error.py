#!/usr/bin/python3
"""Where the FP8 recipe's gradient error comes from (docs/FP8.md, "Is the gap a defect?").

    scripts/fp8_grad_error.py -m CHECKPOINT --data data/small [--tokens 1024] [--at 5000]

Runs `dsv3 grad` on one window of the validation split (--tokens tokens from token --at, and a
second window --tokens further on) with FP32 GEMMs (the reference), BF16, and the FP8 recipe with
each part switched on alone (--fp8-gemms), the o_proj input in E4M3 instead of E5M6, and
per-tensor scales. Prints, per group of parameters, the median over its tensors of
||g - g_f32|| / ||g_f32||; then the minibatch noise for scale (the same between the two windows'
FP32 gradients) and whether the FP8 error is systematic (the cosine between the two windows' FP8
errors: 0 for independent noise, 1 for a fixed bias). Needs build/dsv3 (or $DSV3) and numpy.
"""
import argparse
import collections
import json
import os
import struct
import subprocess
import tempfile

import numpy as np

VARIANTS = {  # name: dsv3 grad flags
    "f32": ["--precision", "f32"],
    "bf16": ["--precision", "bf16"],
    "fp8": ["--precision", "fp8"],
    "fprop": ["--precision", "fp8", "--fp8-gemms", "fprop"],
    "dgrad": ["--precision", "fp8", "--fp8-gemms", "dgrad"],
    "wgrad": ["--precision", "fp8", "--fp8-gemms", "wgrad"],
    "oproj-e4m3": ["--precision", "fp8", "--fp8-o-proj-cache", "e4m3"],
    "tensor": ["--precision", "fp8", "--fp8-scaling", "tensor"],
}
GROUPS = ["shared_experts", "experts", "mlp.gate.", "self_attn.o_proj", "self_attn.q_a",
          "self_attn.q_b", "self_attn.kv_a", "self_attn.kv_b", "mlp.", "embed", "lm_head", "norm"]


def load(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    return {k: np.frombuffer(data[v["data_offsets"][0]:v["data_offsets"][1]],
                             dtype=np.float32).astype(np.float64)
            for k, v in header.items() if k != "__metadata__"}


def group(name):
    return next((g for g in GROUPS if g in name), "other")


def rel(a, b):
    nb = np.linalg.norm(b)
    return np.linalg.norm(a - b) / nb if nb > 0 else np.nan


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--tokens", type=int, default=1024)
    ap.add_argument("--at", type=int, default=5000)
    args = ap.parse_args()
    dsv3 = os.environ.get("DSV3", "build/dsv3")
    val = np.fromfile(os.path.join(args.data, "val-00000.bin"), dtype=np.uint32)
    with tempfile.TemporaryDirectory() as tmp:
        def grad(name, at):
            ids = ",".join(str(int(t)) for t in val[at:at + args.tokens + 1])
            out = os.path.join(tmp, "%s-%d.safetensors" % (name, at))
            r = subprocess.run([dsv3, "grad", "-m", args.model, "--ids", ids, "--out", out,
                                "--mtp-lambda", "0", "-t", "1"] + VARIANTS[name],
                               check=True, capture_output=True, text=True)
            print("%-11s %s" % (name, r.stdout.split(";")[0]))
            return load(out)
        g = {name: grad(name, args.at) for name in VARIANTS}
        second = args.at + args.tokens
        g2 = {name: grad(name, second) for name in ("f32", "fp8")}
    ref = g["f32"]
    names = [n for n in VARIANTS if n != "f32"]
    rows = collections.defaultdict(lambda: collections.defaultdict(list))
    for k, r in ref.items():
        if np.linalg.norm(r) == 0:
            continue
        for n in names:
            rows[group(k)][n].append(rel(g[n][k], r))
    print("\n%-18s %s" % ("median rel. error", " ".join("%10s" % n for n in names)))
    for gname in sorted(rows):
        print("%-18s %s" % (gname, " ".join("%10.4f" % np.median(rows[gname][n]) for n in names)))
    print("%-18s %s" % ("all tensors", " ".join(
        "%10.4f" % np.median([e for r in rows.values() for e in r[n]]) for n in names)))
    noise, bias = [], []
    for k, r in ref.items():
        if r.size < 1000 or np.linalg.norm(r) == 0 or np.linalg.norm(g2["f32"][k]) == 0:
            continue
        noise.append(rel(g2["f32"][k], r))
        e1, e2 = g["fp8"][k] - r, g2["fp8"][k] - g2["f32"][k]
        bias.append(e1 @ e2 / (np.linalg.norm(e1) * np.linalg.norm(e2)))
    print("\nminibatch noise (FP32 gradients of the two windows), median tensor: %.3f" %
          np.median(noise))
    print("cosine between the two windows' FP8 errors: median %.3f, 90th percentile %.3f" %
          (np.median(bias), np.percentile(bias, 90)))


if __name__ == "__main__":
    main()

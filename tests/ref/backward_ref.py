#!/usr/bin/env python3
"""Golden gradients for the backward kernels (tests/unit/kernels/test_backward_golden.cc), from
float64 torch autograd on float32 inputs.

Each op is written the way the model uses it, in plain torch (no dsv3 code): RMSNorm as
x * rsqrt(mean(x^2) + eps) * g, SwiGLU as silu(gate) * up, cross-entropy by
F.cross_entropy(reduction="none") with the negative targets ignored, causal attention with a
cache prefix (query row t at position S - T + t) and GQA by repeating key/value heads, the
embedding by F.embedding. autograd gives every input's gradient of sum(dy * output) (of
scale * sum(loss) for cross-entropy). Inputs are float32 values written with 9 significant
digits (they read back to the same float32); expected values are float64.

usage: backward_ref.py OUT.json             write the golden file
       backward_ref.py --check GOLDEN.json  regenerate and compare (exit 1 when they differ)
"""
import json
import math
import sys

import numpy as np
import torch
import torch.nn.functional as F


def f32(rng, shape, scale=1.0):
    """Random float32 values, rounded through their 9-digit decimal form as the C++ test reads them."""
    a = (rng.standard_normal(shape) * scale).astype(np.float32)
    return np.array([short(v) for v in a.ravel()], dtype=np.float32).reshape(shape)


def t64(a, grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), dtype=torch.float64, requires_grad=grad)


def flat(a):
    return [float(v) for v in np.asarray(a, dtype=np.float64).ravel()]


def short(v):
    """A float32 value as the shortest decimal of 9 digits (it reads back to the same float32)."""
    return float(f"{np.float32(v):.9g}")


def flat32(a):
    return [short(v) for v in np.asarray(a, dtype=np.float32).ravel()]


def rmsnorm_case(rng, T, n, eps):
    x, g, dy = f32(rng, (T, n)), f32(rng, n), f32(rng, (T, n))
    eps = short(eps)  # the kernels take eps as float32
    xt, gt = t64(x, True), t64(g, True)
    y = xt * torch.rsqrt((xt * xt).mean(-1, keepdim=True) + eps) * gt
    y.backward(t64(dy))
    return {"T": T, "n": n, "eps": eps, "x": flat32(x), "g": flat32(g), "dy": flat32(dy),
            "dx": flat(xt.grad), "dg": flat(gt.grad)}


def swiglu_case(rng, n):
    gate, up, dact = f32(rng, n, 3.0), f32(rng, n), f32(rng, n)
    gate[: 4] = [0.0, -1.2785, 12.0, -12.0]  # zero, silu' near its root, both tails
    gt, ut = t64(gate, True), t64(up, True)
    (F.silu(gt) * ut).backward(t64(dact))
    return {"n": n, "gate": flat32(gate), "up": flat32(up), "dact": flat32(dact),
            "dgate": flat(gt.grad), "dup": flat(ut.grad)}


def cross_entropy_case(rng, T, V, spread, ignored):
    x = f32(rng, (T, V), spread)
    target = [int(v) for v in rng.integers(0, V, T)]
    for t, value in ignored:
        target[t] = value
    scale = short(1.0 / sum(1 for v in target if v >= 0))
    xt = t64(x, True)
    tt = torch.tensor([v if v >= 0 else -100 for v in target])
    loss = F.cross_entropy(xt, tt, reduction="none", ignore_index=-100)
    (loss.sum() * scale).backward()
    return {"T": T, "V": V, "scale": scale, "x": flat32(x), "target": target,
            "loss": flat(loss.detach()), "dx": flat(xt.grad)}


def attention_case(rng, T, S, H, KV, dk, dv):
    q, k, v = f32(rng, (T, H, dk), 1.5), f32(rng, (S, KV, dk)), f32(rng, (S, KV, dv))
    dout = f32(rng, (T, H, dv))
    scale = short(1.0 / math.sqrt(dk))
    qt, kt, vt = t64(q, True), t64(k, True), t64(v, True)
    group = H // KV
    kh = kt.repeat_interleave(group, dim=1)  # [S, H, dk]: query head h reads key head h // group
    vh = vt.repeat_interleave(group, dim=1)
    scores = torch.einsum("thd,shd->hts", qt, kh) * scale
    pos = torch.arange(T).unsqueeze(1) + (S - T)
    scores = scores.masked_fill(torch.arange(S).unsqueeze(0) > pos, float("-inf"))
    lse = torch.logsumexp(scores, -1)  # [H, T]
    out = torch.einsum("hts,shd->thd", torch.softmax(scores, -1), vh)
    out.backward(t64(dout))
    return {"T": T, "S": S, "n_heads": H, "n_kv_heads": KV, "dk": dk, "dv": dv, "scale": scale,
            "q": flat32(q), "k": flat32(k), "v": flat32(v), "dout": flat32(dout),
            "out": flat(out.detach()), "lse": flat(lse.detach().T), "dq": flat(qt.grad),
            "dk_grad": flat(kt.grad), "dv_grad": flat(vt.grad)}


def embedding_case(rng, V, d, ids):
    table, dy = f32(rng, (V, d)), f32(rng, (len(ids), d))
    tt = t64(table, True)
    F.embedding(torch.tensor(ids), tt).backward(t64(dy))
    return {"V": V, "d": d, "ids": ids, "dy": flat32(dy), "dtable": flat(tt.grad)}


def cases():
    rng = np.random.default_rng(20261203)
    return {
        "rmsnorm": [rmsnorm_case(rng, 3, 17, 1e-6), rmsnorm_case(rng, 2, 64, 1e-5),
                    rmsnorm_case(rng, 1, 5, 1e-6)],
        "swiglu": [swiglu_case(rng, 37)],
        # Ignored rows: -1 and -100 (any negative target).
        "cross_entropy": [cross_entropy_case(rng, 6, 70, 2.0, [(1, -1), (4, -100)]),
                          cross_entropy_case(rng, 2, 300, 8.0, [])],
        # T == S; a cache prefix (S > T) with GQA groups of 2 and 3; one decode row.
        "attention": [attention_case(rng, 7, 7, 2, 2, 20, 16),
                      attention_case(rng, 5, 9, 4, 2, 12, 8),
                      attention_case(rng, 4, 11, 3, 1, 16, 17),
                      attention_case(rng, 1, 6, 3, 1, 8, 5)],
        "embedding": [embedding_case(rng, 10, 7, [3, 1, 3, 3, 0, 9, 1])],
    }


def same(a, b):
    """Inputs equal; float64 results equal to 1e-12 relative (torch builds may differ in ulps)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, (int, float)):
        return abs(a - b) <= 1e-12 * max(1.0, abs(a))
    return a == b


def main():
    doc = json.dumps({"generator": "tests/ref/backward_ref.py", "cases": cases()}, indent=None)
    if sys.argv[1] == "--check":
        with open(sys.argv[2]) as f:
            ok = same(json.load(f), json.loads(doc))
        print("golden file is current" if ok else "golden file differs from the generator")
        sys.exit(0 if ok else 1)
    with open(sys.argv[1], "w") as f:
        f.write(doc + "\n")


if __name__ == "__main__":
    main()

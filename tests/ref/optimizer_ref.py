#!/usr/bin/env python3
"""Golden cases for the training module (tests/unit/train/test_optimizer.cc, test_balance.cc), in
float64 torch, written without looking at dsv3's code paths.

AdamW (SPEC §5): a small arena of four tensors (two matrices that decay, a norm gain that does not,
and an untrained bias that must not move), several steps with a changing learning rate, gradient
clipping at 1.0 (some steps clip, some do not) and gradients that are exactly zero or tiny (eps).
  - fp32: torch.optim.AdamW itself (two parameter groups: weight_decay on the matrices, 0 on the
    rest) after torch.nn.utils.clip_grad_norm_, parameters and moments in float64.
  - bf16: dsv3 keeps m and v in BF16 (SPEC §3.1), which torch.optim cannot, so this case runs the
    same update as an explicit float64 loop that rounds m and v to bfloat16 after each update
    (float64 -> float32 -> bfloat16, round to nearest even) and uses the rounded values. The loop
    is first checked against torch.optim.AdamW without the rounding. The clipped gradients are
    rounded to float32 as dsv3's arena stores them, so that a rounding boundary of m is not crossed
    by a difference that is only the arena's dtype.

Balance loss (SPEC §2, TR Eq.17-20): L = alpha * sum_i f_i P_i with s' = s / sum_j s_j,
P = mean_t s', f_i = E/(K T) * count of tokens selecting i, per sequence (mean over sequences) and
over the whole batch; the gradient dL/ds by autograd, f held constant. Sigmoid scores (V3) and
softmax scores (V2's expert-level loss).

usage: optimizer_ref.py OUT.json             write the golden file
       optimizer_ref.py --check GOLDEN.json  regenerate and compare (exit 1 when they differ)
"""
import json
import sys

import torch

BETAS = (0.9, 0.95)
EPS = 1e-8
WD = 0.1
# name, shape, decays (a matrix), trained (has a gradient)
TENSORS = [("w_a", (8, 12), True, True), ("gain", (12,), False, True),
           ("bias", (5,), False, False), ("w_b", (5, 7), True, True)]
LRS = [1e-3, 3e-3, 2e-3, 5e-3, 1e-3, 4e-4]
GRAD_SCALES = [3.0, 0.05, 1.0, 0.02, 5.0, 0.1]  # the global norm is above 1.0 for some steps only
MAX_NORM = 1.0


def f32(t):
    return t.float().double()


def bf16(t):
    return t.float().bfloat16().double()


def adamw_inputs(gen):
    params, grads = [], []
    for _, shape, _, trained in TENSORS:
        params.append(f32(torch.randn(shape, generator=gen, dtype=torch.float64) * 0.5))
    for step, scale in enumerate(GRAD_SCALES):
        g = []
        for _, shape, _, trained in TENSORS:
            x = f32(torch.randn(shape, generator=gen, dtype=torch.float64) * scale / 10)
            flat = x.view(-1)
            flat[step % flat.numel()] = 0.0  # an exactly zero gradient
            flat[(step + 3) % flat.numel()] = 1e-9  # below eps after the bias correction
            g.append(x if trained else None)
        grads.append(g)
    return params, grads


def run_torch_adamw(params0, grads):
    ps = [p.clone().requires_grad_(True) for p in params0]
    trained = [p for p, t in zip(ps, TENSORS) if t[3]]
    groups = [{"params": [p for p, t in zip(ps, TENSORS) if t[3] and t[2]], "weight_decay": WD},
              {"params": [p for p, t in zip(ps, TENSORS) if t[3] and not t[2]], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=LRS[0], betas=BETAS, eps=EPS)
    out = []
    for lr, g in zip(LRS, grads):
        for p, gi in zip(ps, g):
            p.grad = None if gi is None else gi.clone()
        norm = float(torch.nn.utils.clip_grad_norm_(trained, MAX_NORM))
        for group in opt.param_groups:
            group["lr"] = lr
        opt.step()
        out.append({"norm": norm, "params": [p.detach().clone() for p in ps]})
    m = [opt.state[p]["exp_avg"] if p in opt.state else torch.zeros_like(p) for p in ps]
    v = [opt.state[p]["exp_avg_sq"] if p in opt.state else torch.zeros_like(p) for p in ps]
    return out, m, v


def run_loop(params0, grads, round_moments, round_grads):
    ps = [p.clone() for p in params0]
    m = [torch.zeros_like(p) for p in ps]
    v = [torch.zeros_like(p) for p in ps]
    out = []
    for t, (lr, g) in enumerate(zip(LRS, grads), start=1):
        live = [gi for gi in g if gi is not None]
        norm = float(torch.sqrt(sum((gi * gi).sum() for gi in live)))
        coef = min(1.0, MAX_NORM / (norm + 1e-6))
        for i, (p, gi, spec) in enumerate(zip(ps, g, TENSORS)):
            if gi is None:
                continue
            gi = gi * coef
            if round_grads:
                gi = f32(gi)
            if spec[2]:
                p.mul_(1 - lr * WD)
            m[i] = BETAS[0] * m[i] + (1 - BETAS[0]) * gi
            v[i] = BETAS[1] * v[i] + (1 - BETAS[1]) * gi * gi
            if round_moments:
                m[i], v[i] = bf16(m[i]), bf16(v[i])
            denom = v[i].sqrt() / (1 - BETAS[1] ** t) ** 0.5 + EPS
            p.add_(-(lr / (1 - BETAS[0] ** t)) * m[i] / denom)
        out.append({"norm": norm, "params": [p.clone() for p in ps]})
    return out, m, v


def flat(ts):
    return [float(x) for t in ts for x in t.reshape(-1).tolist()]


def adamw_case(name, bf16_moments, seed):
    gen = torch.Generator().manual_seed(seed)
    params0, grads = adamw_inputs(gen)
    if bf16_moments:
        # The explicit loop is torch.optim.AdamW when nothing is rounded.
        ref, _, _ = run_torch_adamw(params0, grads)
        loop, _, _ = run_loop(params0, grads, False, False)
        for a, b in zip(ref, loop):
            for x, y in zip(a["params"], b["params"]):
                assert torch.allclose(x, y, rtol=1e-12, atol=1e-15), "loop differs from torch"
        steps, m, v = run_loop(params0, grads, True, True)
    else:
        steps, m, v = run_torch_adamw(params0, grads)
    layout, offset = [], 0
    for tname, shape, decays, trained in TENSORS:
        numel = 1
        for d in shape:
            numel *= d
        layout.append([tname, offset, numel, decays, trained])
        offset += numel
    zero = lambda spec: torch.zeros(spec[1], dtype=torch.float64)
    return {
        "name": name, "bf16_moments": bf16_moments, "beta1": BETAS[0], "beta2": BETAS[1],
        "eps": EPS, "weight_decay": WD, "max_norm": MAX_NORM, "layout": layout,
        "params": flat(params0),
        "steps": [{"lr": lr, "grads": flat([gi if gi is not None else zero(s)
                                            for gi, s in zip(g, TENSORS)]),
                   "norm": r["norm"], "expected": flat(r["params"])}
                  for lr, g, r in zip(LRS, grads, steps)],
        "exp_avg": flat(m), "exp_avg_sq": flat(v),
    }


def balance_reference(scores, experts, seq_lens, E, K, alpha, per_sequence):
    s = scores.clone().requires_grad_(True)
    spans, begin = [], 0
    for n in seq_lens:
        spans.append((begin, n))
        begin += n
    if not per_sequence:
        spans = [(0, begin)]
    losses = []
    for b, n in spans:
        sp = s[b:b + n] / s[b:b + n].sum(dim=-1, keepdim=True)
        P = sp.mean(dim=0)
        counts = torch.zeros(E, dtype=torch.float64)
        counts.index_add_(0, experts[b:b + n].reshape(-1),
                          torch.ones(n * K, dtype=torch.float64))
        f = counts * E / (K * n)
        losses.append(alpha * (f * P).sum())
    loss = torch.stack(losses).mean()
    loss.backward()
    return float(loss), s.grad


def balance_case(name, scoring, seed):
    gen = torch.Generator().manual_seed(seed)
    E, K, alpha, seq_lens = 8, 2, 1e-4, [5, 1, 7, 3]
    rows = sum(seq_lens)
    logits = torch.randn(rows, E, generator=gen, dtype=torch.float64)
    scores = f32(torch.sigmoid(logits) if scoring == "sigmoid" else torch.softmax(logits, -1))
    bias = torch.randn(E, generator=gen, dtype=torch.float64) * 0.3
    experts = torch.topk(scores + bias, K, dim=-1).indices  # a biased selection, as noaux_tc
    case = {"name": name, "E": E, "K": K, "alpha": alpha, "seq_lens": seq_lens,
            "scores": flat([scores]), "experts": experts.reshape(-1).tolist()}
    for scope, per_seq in (("sequence", True), ("batch", False)):
        loss, grad = balance_reference(scores, experts, seq_lens, E, K, alpha, per_seq)
        case[scope] = {"loss": loss, "dscores": flat([grad])}
    return case


def generate():
    return {"adamw": [adamw_case("fp32_moments", False, 1), adamw_case("bf16_moments", True, 2)],
            "balance": [balance_case("sigmoid", "sigmoid", 3), balance_case("softmax", "softmax", 4)]}


def same(a, b, path="golden"):
    """Equal structure and strings; floats within 1e-12 relative, which another torch build's
    summation order may need (a real change to a case moves them far more)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return path + ": keys differ"
        return next((r for k in a if (r := same(a[k], b[k], path + "." + k))), None)
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return path + ": lengths differ"
        return next((r for i, (x, y) in enumerate(zip(a, b)) if (r := same(x, y, "%s[%d]" % (path, i)))), None)
    if isinstance(a, float) or isinstance(b, float):
        ok = abs(a - b) <= 1e-12 * max(abs(a), abs(b)) + 1e-300
        return None if ok else "%s: %r != %r" % (path, a, b)
    return None if a == b else "%s: %r != %r" % (path, a, b)


def main(argv):
    data = generate()
    text = json.dumps(data, indent=None, separators=(",", ":")) + "\n"
    if argv[0] == "--check":
        with open(argv[1]) as f:
            diff = same(json.load(f), data)
        if diff:
            sys.exit("optimizer_ref: %s is out of date (%s); rerun optimizer_ref.py %s" % (argv[1], diff, argv[1]))
        print("golden file is current")
        return
    with open(argv[0], "w") as f:
        f.write(text)


if __name__ == "__main__":
    main(sys.argv[1:])

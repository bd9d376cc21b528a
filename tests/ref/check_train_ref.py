"""Self-checks of the float64 training reference (train_ref.py), on the tiny preset.

  check_train_ref.py --dsv3 BIN --work DIR [--only forward,losses,fd,cli,train]

`dsv3 init --preset tiny --seed 0` writes the model (BF16, read exactly). Checks:
  forward  train_ref's differentiable forward (experts by gathered rows, leaves with grad) gives
           deepseek_ref's logits and MTP logits (rows 0..T-2) to 1e-12.
  losses   ce, mtp, the sequence-wise balance and the batch-wise aux loss recomputed in numpy from
           deepseek_ref's plain forward (its router hooked to capture scores and indices) to 1e-12.
  fd       autograd against 4-point central finite differences (error O(h^4)) on random entries of
           about 30 tensors (embedding, heads, every kind of projection, norm gains, router
           weights, experts, MTP eh_proj / enorm / hnorm / its layer) and on a random direction
           per tensor; total loss with lambda 0.3, alpha 0.1, aux alpha 0.1; the balance and aux
           losses alone on the router weights. Two models: the tiny init (N(0, 0.006)) and the
           same redrawn at O(1) scale with a nonzero e_score_correction_bias (routing it changes).
           Each difference keeps the routing of the unperturbed point (checked; h shrinks if not).
           Bound: relative error 1e-6 (seen: ~1e-9).
  cli      `train_ref.py grad` writes what autograd gives in process; compare-grad passes on the
           file against itself and against its float32 copy at 1e-5, and fails on a copy with one
           tensor off by 1e-4 relative.
  train    the LR schedule's test vector; one step of `train` equals AdamW written out in numpy
           from `grad`'s gradient (clipping active, weight decay on 2-D only, the bias rule in
           float32); step 2's loss equals `grad` on the step-1 parameters and biases;
           compare-train passes on itself and fails on a perturbed copy.
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import safetensors_np as st  # noqa: E402
import train_ref as tr  # noqa: E402
from check_logits import redraw  # noqa: E402
from deepseek_ref import Reference  # noqa: E402

TRAIN_REF = os.path.join(HERE, "train_ref.py")
FD_TOL = 1e-6
failures = []


def report(name, err, tol):
    ok = err <= tol
    print("%-58s %.3e (tolerance %.0e)%s" % (name, err, tol, "" if ok else "  FAIL"), flush=True)
    if not ok:
        failures.append(name)


def expect(name, cond, detail=""):
    print("%-58s %s%s" % (name, "ok" if cond else "FAIL", (" " + detail) if detail else ""), flush=True)
    if not cond:
        failures.append(name)


def run(cmd, rc=0):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != rc:
        sys.exit("FAILED (exit %d, expected %d): %s\n%s%s" % (r.returncode, rc, " ".join(cmd), r.stdout, r.stderr))
    return r.stdout


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def windows_for(cfg, rng, n, T):
    return rng.integers(0, cfg["vocab_size"], size=(n, T + 1)).tolist()


# ---- forward
def check_forward(cfg, weights, wins):
    ref = Reference(cfg, weights)
    mod = tr.TrainRef(cfg, weights)
    for b, w in enumerate(wins):
        T = len(w) - 1
        with torch.no_grad():
            lr, hr = ref.forward(w[:T])
            mr = ref.mtp(hr, w[:T])
        lt, ht = mod.forward(w[:T])
        mt = mod.mtp_rows(ht, w)
        report("forward: logits, window %d" % b, rel(lt.detach(), lr), 1e-12)
        report("forward: mtp rows 0..T-2, window %d" % b, rel(mt[:T - 1].detach(), mr), 1e-12)
        expect("forward: logits carry a graph", lt.requires_grad and mt.requires_grad)


# ---- losses, recomputed in numpy
def np_fp(s, idx, E, K):
    s = np.asarray(s)
    P = (s / s.sum(-1, keepdims=True)).mean(0)
    f = np.bincount(np.asarray(idx).ravel(), minlength=E) * E / (K * s.shape[0])
    return float((f * P).sum())


def np_ce(logits, targets):
    z = np.asarray(logits)
    m = z.max(-1, keepdims=True)
    lse = (m + np.log(np.exp(z - m).sum(-1, keepdims=True)))[:, 0]
    return lse - z[np.arange(len(targets)), targets]


def check_losses(cfg, weights, wins):
    E, K = cfg["n_routed_experts"], cfg["num_experts_per_tok"]
    ref = Reference(cfg, weights)
    captured = []
    plain_route = ref.route

    def route(logits, bias):
        idx, w = plain_route(logits, bias)
        captured.append((torch.sigmoid(logits).numpy(), idx.numpy()))
        return idx, w

    ref.route = route
    ce, mtp, bal, per_layer = [], [], [], {}
    for w in wins:
        T = len(w) - 1
        captured.clear()
        with torch.no_grad():
            logits, h = ref.forward(w[:T])
            # The MTP layer sees T rows: h[0..T-1] with w[1..T]; the last row has no target.
            m = ref.mtp(torch.cat([h, h[:1]]), w)
        ce += list(np_ce(logits.numpy(), w[1:]))
        mtp += list(np_ce(m.numpy()[:T - 1], w[2:]))
        n_moe = cfg["num_hidden_layers"] - cfg["first_k_dense_replace"] + 1
        assert len(captured) == n_moe, len(captured)
        bal.append(sum(np_fp(s, i, E, K) for s, i in captured))
        for l, (s, i) in enumerate(captured):
            per_layer.setdefault(l, []).append((s, i))
    aux = sum(np_fp(np.concatenate([s for s, _ in v]), np.concatenate([i for _, i in v]), E, K)
              for v in per_layer.values())
    mod = tr.TrainRef(cfg, weights)
    r = mod.losses(wins, lam=0.3, alpha=0.1, aux_alpha=0.05)
    want = {"ce": np.mean(ce), "mtp": np.mean(mtp), "balance": np.mean(bal), "aux": aux}
    for k, v in want.items():
        report("losses: %s vs numpy (%.6g)" % (k, v), abs(r[k] - v) / abs(v), 1e-12)
    total = want["ce"] + 0.3 * want["mtp"] + 0.1 * want["balance"] + 0.05 * want["aux"]
    report("losses: total", abs(float(r["loss"]) - total) / total, 1e-12)
    loads = {p: int(v.sum()) for p, v in r["loads"].items()}
    rows = sum(len(w) - 1 for w in wins)
    expect("losses: loads count K per routed row", all(n == K * rows for n in loads.values()),
           str(loads))


# ---- finite differences
def fd_names(mod):
    L = mod.L
    names = ["model.embed_tokens.weight", "lm_head.weight", "model.norm.weight"]
    # attention and norms of the first layer and of MTP's: layer 1's run the same code, and layer
    # 0's gradients already pass back through all of it
    for l in (0, L):
        p = "model.layers.%d." % l
        names += [p + x for x in ("input_layernorm.weight", "post_attention_layernorm.weight",
                                  "self_attn.q_a_proj.weight", "self_attn.q_a_layernorm.weight",
                                  "self_attn.q_b_proj.weight", "self_attn.kv_a_proj_with_mqa.weight",
                                  "self_attn.kv_a_layernorm.weight", "self_attn.kv_b_proj.weight",
                                  "self_attn.o_proj.weight")]
    names += ["model.layers.0.mlp.%s.weight" % x for x in ("gate_proj", "up_proj", "down_proj")]
    for l in (1, L):
        p = "model.layers.%d.mlp." % l
        names += [p + "gate.weight", p + "shared_experts.down_proj.weight"]
    p = "model.layers.%d." % L
    names += [p + "eh_proj.weight", p + "enorm.weight", p + "hnorm.weight", p + "shared_head.norm.weight"]
    return [n for n in names if n in mod.params]


def fd_check(tag, mod, wins, kw, names, rng, entries=1, random_dir=True, grad_dir=True, experts=True):
    """Autograd vs the 4-point central difference per tensor on `entries` entries (among its
    larger gradients), a random direction and the direction of its gradient (the best-conditioned
    one where gradients are tiny next to the loss, as at the N(0, 0.006) init). Steps start at
    0.3 (an entry) or 0.03 (a direction, scaled to max |d| = 1) times the tensor's RMS (the norms
    make the loss depend on the weights relative to their size) and shrink by 4."""
    mod.zero_grad()
    r0 = mod.losses(wins, **kw)
    r0["loss"].backward()
    base_routing = r0["routing"]
    g = mod.grads()
    # experts that some token chose: one of their matrices joins the list
    for p, ld in (r0["loads"].items() if experts else ()):
        e = int(np.argmax(ld))
        names = names + [p + "experts.%d.%s.weight" % (e, rng.choice(["gate_proj", "up_proj", "down_proj"]))]

    def at(t, d, h):
        with torch.no_grad():
            saved = t.clone()  # t + h d - h d is not t in floating point
            t.add_(d, alpha=h)
            r = mod.losses(wins, **kw)
            t.copy_(saved)
        same = len(r["routing"]) == len(base_routing) and all(
            torch.equal(a.sort(-1).values, b.sort(-1).values) for a, b in zip(r["routing"], base_routing))
        return float(r["loss"]), same

    def stencil(t, d, h):
        vals = []
        for k in (2, 1, -1, -2):  # the farthest point first: it is the likeliest to flip the routing
            v, same = at(t, d, k * h)
            if not same:
                return None
            vals.append(v)
        return (-vals[0] + 8 * vals[1] - 8 * vals[2] + vals[3]) / (12 * h)

    def fd(t, d, rel_h):
        """Steps h0, h0/4, ... (skipping any that changes the routing) until two successive
        estimates agree to 1e-8 or their difference grows (rounding takes over); returns the
        smaller step's estimate of the closest pair (truncation falls 256x per step)."""
        h = rel_h * float(t.detach().pow(2).mean().sqrt())
        est, best = [], None
        for _ in range(8):
            D = stencil(t, d, h)
            h /= 4
            if D is None:
                continue
            est.append(D)
            if len(est) >= 2:
                diff = abs(est[-1] - est[-2])
                if best is not None and diff > best[0]:
                    break
                best = (diff, est[-1])
                if diff <= 1e-8 * abs(est[-1]):
                    break
        return (best[1] if best else None), h

    worst = (0.0, "")
    n = 0
    for name in names:
        t = mod.params[name]
        gr = g[name]
        flat = gr.abs().flatten()
        if float(flat.max()) == 0:
            print("  %s: zero gradient, skipped" % name)
            continue
        # entries among the larger gradients (a tiny one says nothing about the formula)
        cand = torch.nonzero(flat >= 0.1 * flat.max()).flatten().numpy()
        picks = rng.choice(cand, size=min(entries, len(cand)), replace=False)
        for j in picks:
            d = torch.zeros_like(t).flatten()
            d[j] = 1.0
            d = d.view_as(t)
            num, h = fd(t, d, 0.3)
            ad = float(gr.flatten()[j])
            if num is None:
                print("  %s[%d]: routing flips even at h=%.1e, skipped" % (name, j, h))
                continue
            e = abs(num - ad) / abs(ad)
            n += 1
            if e > worst[0]:
                worst = (e, "%s[%d] ad %.6e fd %.6e" % (name, j, ad, num))
        dirs = []
        if random_dir:
            dirs.append(("random direction", torch.from_numpy(rng.standard_normal(tuple(t.shape)))))
        if grad_dir:
            dirs.append(("gradient direction", gr / gr.abs().max()))
        for what, d in dirs:
            num, h = fd(t, d, 0.03)
            if num is None:
                print("  %s %s: routing flips, skipped" % (name, what))
                continue
            ad = float((gr * d).sum())
            # a random direction nearly orthogonal to the gradient: measured against |g| |d| 1e-3
            e = abs(num - ad) / max(abs(ad), 1e-3 * float(gr.norm() * d.norm()))
            n += 1
            if e > worst[0]:
                worst = (e, "%s %s ad %.6e fd %.6e" % (name, what, ad, num))
    print("  %s: %d derivatives, worst: %s" % (tag, n, worst[1]))
    expect("fd: %s: derivatives checked" % tag, n >= len(names) * (entries + random_dir + grad_dir) - 2,
           "(%d)" % n)
    report("fd: %s: worst relative error" % tag, worst[0], FD_TOL)


def check_fd(cfg, weights, wins, seed):
    rng = np.random.default_rng(seed)
    total = dict(lam=0.3, alpha=0.1, aux_alpha=0.1)
    bal_only = dict(lam=0.0, alpha=1.0, aux_alpha=0.0, ce_weight=0.0)
    aux_only = dict(lam=0.0, alpha=0.0, aux_alpha=1.0, ce_weight=0.0)
    models = [("tiny init", weights)]
    red = redraw({n: ("F64", v) for n, v in weights.items()}, cfg, seed=1)
    models.append(("redrawn O(1), bias 0.1", {n: v.astype(np.float64) for n, (_, v) in red.items()}))
    # The init: the gradient's direction (entries and random directions sit at float64's rounding
    # floor there: its gradients are 1e-7..1e-3 next to a loss of 8); redrawn: an entry and a
    # random direction per tensor.
    plans = [dict(entries=0, random_dir=False, grad_dir=True), dict(entries=1, random_dir=True, grad_dir=False)]
    for (tag, w), plan in zip(models, plans):
        mod = tr.TrainRef(cfg, w)
        fd_check(tag + ", total loss", mod, wins, total, fd_names(mod), rng, **plan)
        gates = [n for n in mod.params if n.endswith("mlp.gate.weight")]
        fd_check(tag + ", balance alone", mod, wins, bal_only, gates, rng, experts=False, **plan)
        fd_check(tag + ", aux alone", mod, wins, aux_only, gates, rng, experts=False, **plan)
        mod.zero_grad()
        r = mod.losses(wins, **total)
        r["loss"].backward()
        expect("fd: %s: no gradient reaches e_score_correction_bias" % tag,
               all(not mod.w[n].requires_grad for n in mod.w if n.endswith(tr.BIAS)))


# ---- CLI
def check_cli(model, cfg, weights, wins, work):
    out = os.path.join(work, "grad.safetensors")
    args = ["--lambda", "0.3", "--alpha", "0.01", "--aux-alpha", "0.02"]
    cmd = [sys.executable, TRAIN_REF, "grad", "--model", model, "--out", out] + args
    for w in wins:
        cmd += ["--ids", ",".join(map(str, w))]
    run(cmd)
    mod = tr.TrainRef(cfg, weights)
    r = mod.losses(wins, lam=0.3, alpha=0.01, aux_alpha=0.02)
    r["loss"].backward()
    g = mod.grads()
    f = st.read_file(out)
    md = st.read_metadata(out)
    expect("cli: grad file has every trainable tensor, main names only",
           set(f) == set(mod.params) and not any(n in f for n in mod.alias)
           and not any(n.endswith(tr.BIAS) for n in f), "(%d tensors)" % len(f))
    err = max(float(np.abs(f[n][1] - g[n].numpy()).max()) for n in g)
    expect("cli: grad file equals autograd in process", err == 0.0, "(max diff %g)" % err)
    expect("cli: metadata loss parts", all(float(md[k]) == v for k, v in
                                            (("loss", float(r["loss"])), ("ce", r["ce"]), ("mtp", r["mtp"]),
                                             ("balance", r["balance"]), ("aux", r["aux"]))), str(md.get("loss")))
    tied = "model.layers.%d.embed_tokens.weight" % cfg["num_hidden_layers"]
    expect("cli: MTP's embedding is the main one (tied)", mod.w[tied] is mod.w["model.embed_tokens.weight"])
    run([sys.executable, TRAIN_REF, "compare-grad", out, out])
    f32 = os.path.join(work, "grad_f32.safetensors")
    run(cmd[:cmd.index("--out") + 1] + [f32] + cmd[cmd.index("--out") + 2:] + ["--dtype", "f32"])
    o = run([sys.executable, TRAIN_REF, "compare-grad", out, f32])
    expect("cli: compare-grad passes float32 of itself", "OK" in o,
           [l for l in o.splitlines() if "tensors, worst" in l][0])
    bad = os.path.join(work, "grad_bad.safetensors")
    victim = "model.layers.1.mlp.gate.weight"
    t = {n: (dt, v.copy()) for n, (dt, v) in f.items()}
    t[victim][1][:] *= 1 + 1e-4
    st.write_file(bad, t, md)
    o = run([sys.executable, TRAIN_REF, "compare-grad", out, bad], rc=1)
    expect("cli: compare-grad fails on a tensor off by 1e-4", victim in o and "FAILED" in o)


# ---- training
def check_train(model, cfg, weights, work, rng):
    v = [tr.lr_at(s, 1.0, 4, 6, 4, 0.1) for s in range(1, 13)]
    want = [0.25, 0.5, 0.75, 1, 1, 1, 0.1 + 0.9 * (1 + math.cos(math.pi / 4)) / 2, 0.55,
            0.1 + 0.9 * (1 - math.cos(math.pi / 4)) / 2, 0.1, 0.1, 0.1]
    report("train: LR schedule test vector", max(abs(a - b) for a, b in zip(v, want)), 1e-15)
    steps, nw, T = 2, 2, 12
    batches = rng.integers(0, cfg["vocab_size"], size=(steps, nw, T + 1)).astype(np.int32)
    bfile = os.path.join(work, "batches.npy")
    np.save(bfile, batches)
    hyper = dict(lr=2e-3, clip=0.05, gamma=0.01, weight_decay=0.1, beta1=0.9, beta2=0.95, eps=1e-8,
                 lam=0.3, alpha=1e-3, aux=0.0)
    flags = ["--lr", "2e-3", "--warmup", "0", "--clip", "0.05", "--gamma", "0.01", "--lambda", "0.3",
             "--alpha", "1e-3", "-q"]
    m1, s1 = os.path.join(work, "m1.jsonl"), os.path.join(work, "s1.safetensors")
    run([sys.executable, TRAIN_REF, "train", "--model", model, "--batches", bfile, "--out", m1,
         "--steps", "1", "--save", s1] + flags)
    mfull, s2 = os.path.join(work, "metrics.jsonl"), os.path.join(work, "s2.safetensors")
    run([sys.executable, TRAIN_REF, "train", "--model", model, "--batches", bfile, "--out", mfull,
         "--save", s2] + flags)
    rec = tr.read_jsonl(mfull)
    expect("train: one JSON line per step with the fields", len(rec) == steps and all(
        k in rec[0] for k in ("step", "loss", "ce", "mtp_loss", "balance_loss", "grad_norm", "lr")))
    expect("train: --steps 1 is the first line", tr.read_jsonl(m1)[0] == rec[0])
    # step 1 by hand: gradient from `grad`, AdamW in numpy
    g0 = os.path.join(work, "g0.safetensors")
    cmd = [sys.executable, TRAIN_REF, "grad", "--model", model, "--out", g0, "--lambda", "0.3", "--alpha", "1e-3"]
    for w in batches[0].tolist():
        cmd += ["--ids", ",".join(map(str, w))]
    run(cmd)
    grads = {n: v.astype(np.float64) for n, (_, v) in st.read_file(g0).items()}
    md = st.read_metadata(g0)
    report("train: step 1 loss = grad's loss", abs(rec[0]["loss"] - float(md["loss"])) / float(md["loss"]), 1e-13)
    gn = math.sqrt(sum(float((v * v).sum()) for v in grads.values()))
    report("train: step 1 grad_norm = |grad| (%.4g)" % gn, abs(rec[0]["grad_norm"] - gn) / gn, 1e-12)
    expect("train: clipping active in the check", gn > hyper["clip"])
    lr, b1, b2, eps, wd = hyper["lr"], hyper["beta1"], hyper["beta2"], hyper["eps"], hyper["weight_decay"]

    def adamw(params, state, grads, step):
        """One AdamW step written out (clip_grad_norm_ first), as the header of train_ref.py says."""
        norm = math.sqrt(sum(float((v * v).sum()) for v in grads.values()))
        coef = min(1.0, hyper["clip"] / (norm + 1e-6))
        out = {}
        for n, g in grads.items():
            g = g * coef
            m, v = state.get(n, (0.0, 0.0))
            m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
            state[n] = (m, v)
            p = params[n] * (1 - lr * wd) if g.ndim == 2 else params[n]
            out[n] = p - (lr / (1 - b1 ** step)) * m / (np.sqrt(v) / math.sqrt(1 - b2 ** step) + eps)
        return out

    def worst_rel(saved, want):
        return max(float(np.abs(saved[n] - p).max() / max(np.abs(p).max(), 1e-300)) for n, p in want.items())

    state = {}
    p1 = adamw(weights, state, grads, 1)
    saved = {n: st.to_f64(dt, v) for n, (dt, v) in st.read_file(s1).items()}
    report("train: step 1 parameters = AdamW in numpy", worst_rel(saved, p1), 1e-13)
    moved = 0
    for k in md:
        if not k.startswith("load."):
            continue
        p = k[5:]
        load = np.array([int(x) for x in md[k].split(",")])
        mean = load.mean()
        b0 = weights[p + "gate." + tr.BIAS].astype(np.float32)
        want = (b0 + np.sign(mean - load).astype(np.float32) * np.float32(0.01)).astype(np.float32)
        got = saved[p + "gate." + tr.BIAS]
        expect("train: bias rule, %s" % p, np.array_equal(got.astype(np.float32), want),
               "loads %s" % md[k])
        moved += int((want != b0).sum())
    expect("train: the bias moved", moved > 0)
    # step 2 = grad on the step-1 state (parameters and biases)
    d1 = os.path.join(work, "after_step1")
    os.makedirs(d1, exist_ok=True)
    shutil.copy(os.path.join(model, "config.json"), d1)
    st.write_file(os.path.join(d1, "model.safetensors"), st.read_file(s1))
    g1 = os.path.join(work, "g1.safetensors")
    cmd = [sys.executable, TRAIN_REF, "grad", "--model", d1, "--out", g1, "--lambda", "0.3", "--alpha", "1e-3"]
    for w in batches[1].tolist():
        cmd += ["--ids", ",".join(map(str, w))]
    run(cmd)
    l1 = float(st.read_metadata(g1)["loss"])
    report("train: step 2 loss = grad on the step-1 state", abs(rec[1]["loss"] - l1) / l1, 1e-13)
    grads1 = {n: v.astype(np.float64) for n, (_, v) in st.read_file(g1).items()}
    p2 = adamw(p1, state, grads1, 2)
    saved2 = {n: st.to_f64(dt, v) for n, (dt, v) in st.read_file(s2).items()}
    report("train: step 2 parameters = AdamW in numpy (moments)", worst_rel(saved2, p2), 1e-12)
    md1 = st.read_metadata(g1)
    ok = True
    for k in (k for k in md1 if k.startswith("load.")):
        p = k[5:] + "gate." + tr.BIAS
        load = np.array([int(x) for x in md1[k].split(",")])
        want = (saved[p].astype(np.float32) + np.sign(load.mean() - load).astype(np.float32)
                * np.float32(0.01)).astype(np.float32)
        ok &= np.array_equal(saved2[p].astype(np.float32), want)
    expect("train: bias rule at step 2 (float32 sums)", ok)
    o = run([sys.executable, TRAIN_REF, "compare-train", mfull, mfull, "--fields", "loss,ce,grad_norm"])
    expect("train: compare-train passes on itself", "OK" in o)
    bad = os.path.join(work, "metrics_bad.jsonl")
    with open(bad, "w") as f:
        for r in rec:
            r = dict(r)
            if r["step"] == 2:
                r["loss"] *= 1 + 2e-4
            f.write(json.dumps(r) + "\n")
    o = run([sys.executable, TRAIN_REF, "compare-train", mfull, bad], rc=1)
    expect("train: compare-train fails on a loss off by 2e-4", "step 2 loss" in o)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsv3", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--only", default="forward,losses,fd,cli,train")
    a = ap.parse_args()
    torch.set_num_threads(1)
    only = set(a.only.split(","))
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    model = os.path.join(a.work, "tiny")
    run([a.dsv3, "init", "--preset", "tiny", "-o", model, "--seed", "0"])
    cfg, weights = tr.load_model(model)
    rng = np.random.default_rng(0)
    # two windows of different lengths: the batch means are over rows, not windows
    wins = windows_for(cfg, rng, 1, 11) + windows_for(cfg, rng, 1, 8)
    if "forward" in only:
        check_forward(cfg, weights, wins)
    if "losses" in only:
        check_losses(cfg, weights, wins)
    if "fd" in only:
        check_fd(cfg, weights, wins, seed=1)
    if "cli" in only:
        check_cli(model, cfg, weights, wins, a.work)
    if "train" in only:
        check_train(model, cfg, weights, a.work, rng)
    if failures:
        sys.exit("FAILED: " + ", ".join(failures))
    shutil.rmtree(a.work)  # passed: a failure keeps the runs to look at; CI's disk is small
    print("OK")


if __name__ == "__main__":
    main()

"""Independent float64 PyTorch training reference for DeepSeek-V3-architecture models: the loss, its
gradients (torch autograd) and the AdamW trajectory with the aux-loss-free bias update. Written from
SPEC §1-§2 and §5 on top of deepseek_ref.py's forward; shares no code with dsv3's C++.

Subcommands (every number float64 unless said otherwise):

  train_ref.py grad --model DIR --ids 1,2,3,... [--ids ...] [--lambda 0.3] [--alpha 1e-4]
                    [--aux-alpha 0] [--dtype f64|f32] [--fp8 tile|tensor] --out FILE.safetensors
      The loss of the windows given (each --ids one window w[0..T] of T+1 ids) and its gradient
      with respect to every trainable tensor, written under the main HF names.
  train_ref.py compare-grad REF.safetensors OTHER.safetensors [--rtol 1e-5] [--loss-rtol R]
      Per tensor ||other - ref|| / ||ref||, the loss parts and the expert loads; exit 1 above rtol.
  train_ref.py train --model DIR --batches FILE.npy --out metrics.jsonl [hyperparameters, --help]
      AdamW over the batches (.npy int [steps, windows, T+1]); one JSON line per step.
  train_ref.py compare-train REF.jsonl OTHER.jsonl [--rtol 1e-4] [--fields loss]
      Per step relative error of the fields; exit 1 above rtol.

Conventions (what dsv3 must match; SPEC §1.7, §2, §5 and the decisions of SPEC §9):
- Main loss: CE over the T rows of each window (inputs w[0..T-1], targets w[1..T]), mean over all
  rows of the batch (sum over windows / sum of their T).
- MTP (num_nextn_predict_layers = 1): h = the main model's last hidden after model.norm; MTP row i
  (i = 0..T-1) is eh_proj(cat[enorm(Emb(w[i+1])), hnorm(h[i])]) through the MTP decoder layer at
  position i, shared_head.norm and the head; rows i <= T-2 have the target w[i+2]; MTP CE = mean
  over the rows with a target of the whole batch. All T rows run through the MTP layer, so its
  balance loss and its expert loads count T rows per window, the last one included.
  model.layers.L.embed_tokens / shared_head.head are the main embed_tokens / lm_head (one tensor
  each; their gradients add up; the files carry only the main names).
- Routing: indices from s + e_score_correction_bias (group-limited, HF MoEGate, deepseek_ref.route)
  without gradient; the weights g = s_I / (sum s_I + 1e-20) * routed_scaling_factor carry the
  gradient through s = sigmoid(W_g u). e_score_correction_bias gets no gradient and is not a
  parameter: grad files omit it.
- Balance loss (TR Eq.17-20): per window and MoE layer (the MTP's decoder layer included),
  s' = s / sum_j s_j over all E experts, P_i = mean_t s'_{i,t}, f_i = E/(K T) sum_t 1[i selected at
  t] (the actual biased, group-limited selection), L = sum_i f_i P_i with f a constant (gradient
  through P only). balance = (1/windows) sum_windows sum_layers L.
  aux (V2 expert-level, --aux-alpha): the same f.P per layer over all rows of the batch at once,
  summed over the layers.
- loss = ce + lambda * mtp + alpha * balance + aux_alpha * aux. The reported "mtp", "balance" and
  "aux" are the unweighted values; "loss" is the weighted total.
- Grad files: safetensors, F64 (or F32 with --dtype f32), every trainable tensor (all but
  e_score_correction_bias and the MTP aliases), zeros where unused (an expert no token chose).
  __metadata__ (strings): loss, ce, mtp, balance, aux (repr of the float64 value), mtp_lambda,
  balance_alpha, aux_alpha, windows, tokens, and load.<layer prefix> = comma-separated tokens per
  expert (e.g. "load.model.layers.1.mlp.") over the batch, and routing_margin (the smallest gap
  between the last chosen and the first unchosen score s+b, or between kept/dropped group
  scores, over every token and layer: how far float32 rounding may go before the routing flips).
- Training (train): step s = 1..S. LR(s): s <= warmup: lr * s / warmup; s <= decay_start: lr;
  s <= decay_start + decay_steps: final + (lr - final) * (1 + cos(pi (s - decay_start) /
  decay_steps)) / 2; then final. Gradient clipping as torch.nn.utils.clip_grad_norm_ (norm over
  all parameters, coefficient max_norm / (norm + 1e-6) when < 1), grad_norm reported before it.
  torch.optim.AdamW: p *= 1 - lr*wd (2-D tensors only: every matrix, embeddings and heads
  included; norm gains not), m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2,
  p -= lr/(1-b1^s) * m / (sqrt(v)/sqrt(1-b2^s) + eps). A parameter no token used that step has
  gradient 0 and is still decayed and moved by its moments.
  Then per MoE layer: load_i = tokens routed to expert i in the step's batch (main rows; the MTP
  layer: MTP rows), b_i += gamma * sign(mean_j load_j - load_i) (sign(0) = 0) in float32 (b is a
  float32 tensor; gamma rounded to float32), so the next step routes with the new b.
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as Fn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np as st  # noqa: E402
from deepseek_ref import F, Reference  # noqa: E402

BIAS = "e_score_correction_bias"


def load_model(model_dir):
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    return cfg, st.dequantized_f64(st.read_folder(model_dir))


class TrainRef(Reference):
    """deepseek_ref.Reference with leaf tensors that require grad, the MTP aliases tied, and the
    routing of each MoE call recorded for the balance losses and the bias update."""

    def __init__(self, cfg, weights):
        super().__init__(cfg, weights)
        c = self.c
        self.n_mtp = c.get("num_nextn_predict_layers", 0) if self.mla else 0
        if self.n_mtp > 1:
            raise SystemExit("train_ref: only num_nextn_predict_layers <= 1 (SPEC §1.7, D=1)")
        self.alias = {}
        if self.n_mtp:
            p = "model.layers.%d." % self.L
            for a, m in ((p + "embed_tokens.weight", "model.embed_tokens.weight"),
                         (p + "shared_head.head.weight", "lm_head.weight")):
                if m in self.w:
                    self.alias[a] = m
        for a, m in self.alias.items():
            if a in self.w and not torch.equal(self.w[a], self.w[m]):
                print("train_ref: warning: %s differs from %s; training uses %s for both" % (a, m, m),
                      file=sys.stderr)
            self.w[a] = self.w[m]
        self.bias32 = {n: self.w[n].to(torch.float32) for n in self.w if n.endswith(BIAS)}
        self.params = {n: t for n, t in self.w.items() if n not in self.alias and not n.endswith(BIAS)}
        for t in self.params.values():
            t.requires_grad_(True)
        self.record = None

    def set_bias(self, name, b32):
        self.bias32[name] = b32
        self.w[name] = b32.to(F)

    # ---- MoE: deepseek_ref's routing, experts applied to the rows that chose them
    def scores(self, logits):
        func = self.c.get("scoring_func", "sigmoid" if self.c["model_type"] == "deepseek_v3" else "softmax")
        return logits.sigmoid() if func == "sigmoid" else logits.softmax(-1)

    def moe(self, x, p):
        E = self.c["n_routed_experts"]
        bias = self.w.get(p + "gate." + BIAS, torch.zeros(E, dtype=F))
        logits = x @ self.w[p + "gate.weight"].T
        idx, wts = self.route(logits, bias)
        if self.record is not None:
            self.record.append((p, self.scores(logits), idx, self.margin(logits.detach(), bias)))
        out = self.swiglu(x, p + "shared_experts.") if self.c.get("n_shared_experts", 0) else torch.zeros_like(x)
        for e in torch.unique(idx).tolist():
            rows, slot = (idx == e).nonzero(as_tuple=True)
            y = self.swiglu(x[rows], p + "experts.%d." % e)
            out = out.index_add(0, rows, wts[rows, slot].unsqueeze(1) * y)
        return out

    def margin(self, logits, bias):
        """Smallest gap of the routing decisions (see the header); inf when nothing is chosen."""
        c = self.c
        E, K = c["n_routed_experts"], c["num_experts_per_tok"]
        method = c.get("topk_method", "noaux_tc" if c["model_type"] == "deepseek_v3" else "greedy")
        s = self.scores(logits)
        choice = s + bias if method == "noaux_tc" else s.clone()
        gaps = []
        if method in ("noaux_tc", "group_limited_greedy") and c.get("n_group", 1) > 1:
            G, kg = c["n_group"], c["topk_group"]
            g = choice.view(-1, G, E // G)
            gs = g.topk(2, -1).values.sum(-1) if method == "noaux_tc" else g.max(-1).values
            if kg < G:
                v = gs.sort(-1, descending=True).values
                gaps.append((v[:, kg - 1] - v[:, kg]).min())
            keep = torch.zeros_like(gs, dtype=torch.bool)
            keep.scatter_(1, gs.topk(kg, -1).indices, True)
            choice = choice.masked_fill(~keep.repeat_interleave(E // G, 1), float("-inf"))
        v = choice.sort(-1, descending=True).values
        if K < E:
            gap = v[:, K - 1] - v[:, K]
            gaps.append(gap[torch.isfinite(gap)].min() if torch.isfinite(gap).any() else torch.tensor(math.inf))
        return min([float(g) for g in gaps], default=math.inf)

    # ---- losses
    def mtp_rows(self, h, window):
        """MTP logits [T, V]: row i from h[i] and window[i+1] (all T rows). deepseek_ref's mtp pairs
        hidden[:-1] with ids[1:], so it gets h with one row appended (dropped there) and the window."""
        return self.mtp(torch.cat([h, h[-1:]]), list(window))

    def losses(self, windows, lam=0.3, alpha=1e-4, aux_alpha=0.0, ce_weight=1.0):
        """Loss parts of a batch of windows (each T+1 ids; T may differ between windows).
        Returns dict: loss = ce_weight*ce + lam*mtp + alpha*balance + aux_alpha*aux (tensor with
        graph), ce/mtp/balance/aux (floats), loads {layer: int64 array}, rows {layer: routed rows},
        margin, routing (every MoE call's indices, in order)."""
        E = self.c.get("n_routed_experts", 0)
        K = self.c.get("num_experts_per_tok", 0)
        ce_sum, ce_n, mtp_sum, mtp_n = 0.0, 0, 0.0, 0
        bal = []
        per_layer = {}  # layer prefix -> list of (s, idx) over the batch
        margin = math.inf
        routing = []
        for w in windows:
            w = [int(t) for t in w]
            T = len(w) - 1
            if T < 1:
                raise SystemExit("train_ref: a window needs at least 2 ids")
            self.record = []
            logits, h = self.forward(w[:T])
            ce_sum = ce_sum + Fn.cross_entropy(logits, torch.tensor(w[1:]), reduction="sum")
            ce_n += T
            if self.n_mtp:
                m = self.mtp_rows(h, w)
                if T >= 2:
                    mtp_sum = mtp_sum + Fn.cross_entropy(m[:T - 1], torch.tensor(w[2:]), reduction="sum")
                    mtp_n += T - 1
            lw = 0.0
            for p, s, idx, mg in self.record:
                margin = min(margin, mg)
                routing.append(idx)
                per_layer.setdefault(p, []).append((s, idx))
                lw = lw + self.fp_loss(s, idx, E, K)
            bal.append(lw)
            self.record = None
        ce = ce_sum / ce_n
        mtp = mtp_sum / mtp_n if mtp_n else torch.zeros((), dtype=F)
        balance = sum(bal) / len(bal) if per_layer else torch.zeros((), dtype=F)
        aux = torch.zeros((), dtype=F)
        loads, rows = {}, {}
        for p, lst in per_layer.items():
            s = torch.cat([a for a, _ in lst])
            idx = torch.cat([b for _, b in lst])
            aux = aux + self.fp_loss(s, idx, E, K)
            loads[p] = np.bincount(idx.flatten().numpy(), minlength=E).astype(np.int64)
            rows[p] = idx.shape[0]
        loss = ce_weight * ce + lam * mtp + alpha * balance + aux_alpha * aux
        return {"loss": loss, "ce": float(ce), "mtp": float(mtp), "balance": float(balance),
                "aux": float(aux), "loads": loads, "rows": rows, "margin": margin, "routing": routing}

    @staticmethod
    def fp_loss(s, idx, E, K):
        """sum_i f_i P_i over the rows of s [N, E] (f from idx [N, K], no gradient)."""
        N = s.shape[0]
        P = (s / s.sum(-1, keepdim=True)).mean(0)
        f = torch.bincount(idx.flatten(), minlength=E).to(F) * (E / (K * N))
        return (f * P).sum()

    def zero_grad(self):
        for t in self.params.values():
            t.grad = None

    def grads(self):
        """{name: gradient} with zeros for tensors the loss did not reach."""
        return {n: (t.grad.detach().clone() if t.grad is not None else torch.zeros_like(t))
                for n, t in self.params.items()}


# ---- grad
def parse_ids(s):
    try:
        return [int(t) for t in s.replace(" ", "").split(",") if t != ""]
    except ValueError:
        raise SystemExit("train_ref: --ids: expected comma-separated integers, got %r" % s)


def grad_metadata(r, a_lambda, a_alpha, a_aux, windows):
    md = {"loss": repr(float(r["loss"])), "ce": repr(r["ce"]), "mtp": repr(r["mtp"]),
          "balance": repr(r["balance"]), "aux": repr(r["aux"]), "mtp_lambda": repr(a_lambda),
          "balance_alpha": repr(a_alpha), "aux_alpha": repr(a_aux), "windows": str(len(windows)),
          "tokens": str(sum(len(w) - 1 for w in windows)), "routing_margin": repr(r["margin"])}
    for p, ld in r["loads"].items():
        md["load." + p] = ",".join(str(int(v)) for v in ld)
    return md


def cmd_grad(a):
    torch.set_num_threads(1)
    cfg, weights = load_model(a.model)
    if a.fp8:
        from fp8_torch import fp8_reference  # noqa: E402  (torch float64 emulation of SPEC §3.1)
        ref = fp8_reference(TrainRef, a.fp8)(cfg, weights)
    else:
        ref = TrainRef(cfg, weights)
    windows = [parse_ids(s) for s in a.ids]
    V = cfg["vocab_size"]
    for w in windows:
        if any(t < 0 or t >= V for t in w):
            raise SystemExit("train_ref: --ids: an id is outside the vocabulary (%d)" % V)
    r = ref.losses(windows, a.mtp_lambda, a.balance_alpha, a.aux_alpha)
    r["loss"].backward()
    dt, npdt = ("F64", np.float64) if a.dtype == "f64" else ("F32", np.float32)
    out = {n: (dt, g.numpy().astype(npdt)) for n, g in sorted(ref.grads().items())}
    st.write_file(a.out, out, grad_metadata(r, a.mtp_lambda, a.balance_alpha, a.aux_alpha, windows))
    print(json.dumps({"loss": float(r["loss"]), "ce": r["ce"], "mtp": r["mtp"], "balance": r["balance"],
                      "aux": r["aux"], "routing_margin": r["margin"], "tensors": len(out), "out": a.out}))


# ---- compare-grad
def cmd_compare_grad(a):
    ref = {n: st.to_f64(dt, v) for n, (dt, v) in st.read_file(a.ref).items()}
    got = {n: st.to_f64(dt, v) for n, (dt, v) in st.read_file(a.other).items()}
    mr, mg = st.read_metadata(a.ref), st.read_metadata(a.other)
    failures = []
    total = math.sqrt(sum(float((v * v).sum()) for v in ref.values()))
    worst = (0.0, "")
    for n in sorted(ref):
        r = ref[n]
        if n not in got:
            failures.append(n + " missing")
            print("%-60s MISSING" % n)
            continue
        g = got[n]
        if g.shape != r.shape:
            failures.append(n + " shape")
            print("%-60s shape %s, reference %s" % (n, list(g.shape), list(r.shape)))
            continue
        dn, rn = float(np.linalg.norm((g - r).ravel())), float(np.linalg.norm(r.ravel()))
        # A tensor whose reference gradient is exactly 0 (an expert no token chose) is measured
        # against the norm of the whole gradient instead.
        e = dn / rn if rn > 0 else dn / max(total, 1e-300)
        bad = not e <= a.rtol
        if bad:
            failures.append(n)
        if a.verbose or bad:
            print("%-60s rel %.3e  |ref| %.3e%s" % (n, e, rn, "  FAIL" if bad else ""))
        if e > worst[0] or worst[1] == "":
            worst = (e, n)
    extra = sorted(set(got) - set(ref))
    for n in extra:
        nz = float(np.abs(got[n]).max()) if got[n].size else 0.0
        print("%-60s not in the reference%s" % (n, "" if nz == 0 else " (nonzero: FAIL)"))
        if nz != 0:
            failures.append(n + " extra")
    print("%d tensors, worst %.3e (%s), tolerance %.0e" % (len(ref), worst[0], worst[1], a.rtol))
    lr = a.loss_rtol if a.loss_rtol is not None else a.rtol
    for k in ("loss", "ce", "mtp", "balance", "aux"):
        if k in mr and k in mg:
            x, y = float(mr[k]), float(mg[k])
            e = abs(y - x) / abs(x) if x != 0 else abs(y)
            bad = not e <= lr
            print("%-8s ref %.12g  other %.12g  rel %.3e%s" % (k, x, y, e, "  FAIL" if bad else ""))
            if bad:
                failures.append("loss part " + k)
        elif k in mr and k != "aux":
            print("%-8s not in %s's metadata" % (k, a.other))
    for k in sorted(x for x in mr if x.startswith("load.")):
        if k in mg and mg[k] != mr[k]:
            print("%s: loads differ (the routing differs; gradients cannot agree)\n  ref   %s\n  other %s"
                  % (k, mr[k], mg[k]))
            failures.append(k)
    if "routing_margin" in mr:
        print("routing margin of the reference: %s" % mr["routing_margin"])
    if failures:
        print("FAILED: %d: %s" % (len(failures), ", ".join(failures[:20])))
        sys.exit(1)
    print("OK")


# ---- train
def lr_at(s, lr, warmup, decay_start, decay_steps, final):
    """Learning rate of optimizer step s (1-based); see the header."""
    if s <= warmup:
        return lr * s / warmup
    if s <= decay_start:
        return lr
    if s <= decay_start + decay_steps:
        return final + (lr - final) * (1 + math.cos(math.pi * (s - decay_start) / decay_steps)) / 2
    return final


def bias_step(b32, load, rows, K, gamma):
    """b += gamma * sign(mean load - load) in float32; mean = rows*K/E compared exactly."""
    E = load.shape[0]
    sign = np.sign(rows * K - E * load.astype(np.int64)).astype(np.float32)
    return b32 + torch.from_numpy(sign) * torch.tensor(gamma, dtype=torch.float32)


def cmd_train(a):
    torch.set_num_threads(max(1, a.threads))
    cfg, weights = load_model(a.model)
    ref = TrainRef(cfg, weights)
    batches = np.load(a.batches)
    if batches.ndim != 3:
        raise SystemExit("train_ref: --batches: expected [steps, windows, T+1], got shape %s" % (batches.shape,))
    steps = batches.shape[0] if a.steps is None else min(a.steps, batches.shape[0])
    decay_start = a.decay_start if a.decay_start is not None else steps
    final = a.final_lr if a.final_lr is not None else a.lr
    if a.warmup > decay_start:
        raise SystemExit("train_ref: --warmup must be <= --decay-start")
    mats = [t for t in ref.params.values() if t.dim() == 2]
    vecs = [t for t in ref.params.values() if t.dim() != 2]
    opt = torch.optim.AdamW([{"params": mats, "weight_decay": a.weight_decay},
                             {"params": vecs, "weight_decay": 0.0}],
                            lr=a.lr, betas=(a.beta1, a.beta2), eps=a.eps)
    K = cfg.get("num_experts_per_tok", 0)
    params = list(ref.params.values())
    with open(a.out, "w") as out:
        for i in range(steps):
            s = i + 1
            lr = lr_at(s, a.lr, a.warmup, decay_start, a.decay_steps, final)
            for g in opt.param_groups:
                g["lr"] = lr
            ref.zero_grad()
            r = ref.losses(batches[i].tolist(), a.mtp_lambda, a.balance_alpha, a.aux_alpha)
            r["loss"].backward()
            for t in params:
                if t.grad is None:
                    t.grad = torch.zeros_like(t)
            if a.clip > 0:
                gn = float(torch.nn.utils.clip_grad_norm_(params, a.clip))
            else:
                gn = float(torch.sqrt(sum((t.grad * t.grad).sum() for t in params)))
            opt.step()
            vio = 0.0
            for p, ld in r["loads"].items():
                name = p + "gate." + BIAS
                mean = r["rows"][p] * K / ld.shape[0]
                vio = max(vio, float(ld.max() / mean - 1))
                if name in ref.bias32 and a.gamma != 0:
                    ref.set_bias(name, bias_step(ref.bias32[name], ld, r["rows"][p], K, a.gamma))
            rec = {"step": s, "loss": float(r["loss"]), "ce": r["ce"], "mtp_loss": r["mtp"],
                   "balance_loss": r["balance"], "aux_loss": r["aux"], "grad_norm": gn, "lr": lr,
                   "max_vio": vio, "routing_margin": r["margin"]}
            out.write(json.dumps(rec) + "\n")
            out.flush()
            if not a.quiet:
                print("step %d loss %.6f ce %.6f mtp %.6f bal %.6f gnorm %.4g lr %.3g" %
                      (s, rec["loss"], rec["ce"], rec["mtp_loss"], rec["balance_loss"], gn, lr), flush=True)
    if a.save:
        t = {n: ("F64", v.detach().numpy()) for n, v in sorted(ref.params.items())}
        t.update({n: ("F32", b.numpy()) for n, b in sorted(ref.bias32.items())})
        st.write_file(a.save, t)


# ---- compare-train
def read_jsonl(path):
    return [json.loads(l) for l in open(path) if l.strip()]


def cmd_compare_train(a):
    ref, got = read_jsonl(a.ref), read_jsonl(a.other)
    fields = [f for f in a.fields.split(",") if f]
    failures = []
    if len(got) < len(ref):
        failures.append("%s has %d steps, the reference %d" % (a.other, len(got), len(ref)))
    worst = {f: 0.0 for f in fields}
    for r, g in zip(ref, got):
        if r.get("step") != g.get("step"):
            failures.append("step numbers differ: %s vs %s" % (r.get("step"), g.get("step")))
            break
        line = ["step %4d" % r["step"]]
        for f in fields:
            if f not in g:
                failures.append("step %d: no %s" % (r["step"], f))
                continue
            x, y = float(r[f]), float(g[f])
            e = abs(y - x) / abs(x) if x != 0 else abs(y)
            worst[f] = max(worst[f], e)
            line.append("%s %.10g/%.10g rel %.2e%s" % (f, x, y, e, " FAIL" if not e <= a.rtol else ""))
            if not e <= a.rtol:
                failures.append("step %d %s" % (r["step"], f))
        if a.verbose or any("FAIL" in x for x in line):
            print("  ".join(line))
    print("%d steps; worst relative error: %s (tolerance %.0e)" %
          (min(len(ref), len(got)), ", ".join("%s %.3e" % kv for kv in worst.items()), a.rtol))
    if failures:
        print("FAILED: " + "; ".join(failures[:20]))
        sys.exit(1)
    print("OK")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def loss_flags(p):
        p.add_argument("--lambda", "--mtp-lambda", dest="mtp_lambda", type=float, default=0.3,
                       help="MTP loss weight (default 0.3)")
        p.add_argument("--alpha", "--balance-alpha", dest="balance_alpha", type=float, default=1e-4,
                       help="sequence-wise balance loss weight (default 1e-4)")
        p.add_argument("--aux-alpha", dest="aux_alpha", type=float, default=0.0,
                       help="V2-style expert-level balance loss weight over the batch (default 0)")

    g = sub.add_parser("grad", help="loss and gradients of windows")
    g.add_argument("--model", "-m", required=True)
    g.add_argument("--ids", action="append", required=True,
                   help="one window w[0..T] (T+1 comma-separated ids); repeat for a batch")
    loss_flags(g)
    g.add_argument("--dtype", choices=["f64", "f32"], default="f64")
    g.add_argument("--fp8", choices=["tile", "tensor"], default=None,
                   help="the FP8 recipe's Linears (fake-quantized, tests/ref/fp8_torch.py)")
    g.add_argument("--out", required=True)

    c = sub.add_parser("compare-grad", help="per-tensor relative error of two gradient files")
    c.add_argument("ref")
    c.add_argument("other")
    c.add_argument("--rtol", type=float, default=1e-5)
    c.add_argument("--loss-rtol", type=float, default=None, help="for the loss parts (default rtol)")
    c.add_argument("-v", "--verbose", action="store_true", help="print every tensor")

    t = sub.add_parser("train", help="AdamW trajectory over given batches")
    t.add_argument("--model", "-m", required=True)
    t.add_argument("--batches", required=True, help=".npy int [steps, windows, T+1]")
    t.add_argument("--out", required=True, help="metrics.jsonl")
    t.add_argument("--steps", type=int, default=None, help="at most this many steps (default all)")
    loss_flags(t)
    t.add_argument("--lr", type=float, default=3e-4, help="peak learning rate")
    t.add_argument("--warmup", type=int, default=0, help="linear warmup steps")
    t.add_argument("--decay-start", type=int, default=None, help="last step at the peak (default: steps)")
    t.add_argument("--decay-steps", type=int, default=0, help="cosine decay length")
    t.add_argument("--final-lr", type=float, default=None, help="learning rate after the decay (default lr)")
    t.add_argument("--weight-decay", type=float, default=0.1, help="on 2-D tensors only")
    t.add_argument("--beta1", type=float, default=0.9)
    t.add_argument("--beta2", type=float, default=0.95)
    t.add_argument("--eps", type=float, default=1e-8)
    t.add_argument("--clip", type=float, default=1.0, help="global-norm clip (0: none)")
    t.add_argument("--gamma", type=float, default=0.001, help="aux-loss-free bias update speed")
    t.add_argument("--save", default=None, help="write the final parameters (F64) and biases (F32)")
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("-q", "--quiet", action="store_true")

    ct = sub.add_parser("compare-train", help="per-step relative error of two metrics.jsonl")
    ct.add_argument("ref")
    ct.add_argument("other")
    ct.add_argument("--rtol", type=float, default=1e-4)
    ct.add_argument("--fields", default="loss", help="comma-separated (default loss)")
    ct.add_argument("-v", "--verbose", action="store_true")

    a = ap.parse_args(argv)
    {"grad": cmd_grad, "compare-grad": cmd_compare_grad, "train": cmd_train,
     "compare-train": cmd_compare_train}[a.cmd](a)


if __name__ == "__main__":
    main()

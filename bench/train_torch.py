"""PyTorch (CPU, float32) training throughput of a DeepSeek-V3-architecture model, the yardstick for
dsv3's trainer: the same model and step as tests/ref/train_ref.py (SPEC §1-§2, §5), written for
speed: batched matmuls, experts applied to the rows that chose them (one matmul per expert),
F.cross_entropy, torch.optim.AdamW.

  bench/train_torch.py (--model DIR | --config config.json) [-B 8] [-T 256] [--steps 8]
                       [--warmup 2] [--threads 2] [--lr 3e-4] [--lambda 0.3] [--alpha 1e-4]
                       [--gamma 0.001] [--clip 1.0] [--seed 0]

--model reads an HF folder's weights (safetensors via tests/ref/safetensors_np.py; BF16/F32/FP8
dequantised); --config draws every parameter from N(0, 0.006) (SPEC §1.2) with zero router biases.
Each step: B random windows of T+1 ids, forward (main + MTP), loss = CE + lambda MTP_CE + alpha
sequence-wise balance, backward, clip_grad_norm_, AdamW (weight decay 0.1 on 2-D tensors, betas
(0.9, 0.95)), then the aux-loss-free bias update. Prints one JSON object: training tokens/s
(B*T per step) over the steps after the first --warmup ones (mean; also from the median and the
fastest step, as other jobs on a shared machine slow some steps), and the step times.
"""
import argparse
import json
import math
import os
import resource
import sys
import time

# torch's OpenMP threads (elementwise ops) and OpenBLAS's own threads (matmuls; Debian's torch
# 1.13 uses OpenBLAS) both spin while idle; on 2 cores they then steal each other's time and a step
# can take 5-10x longer. Passive waiting keeps the step times steady (must precede import torch).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as Fn  # noqa: E402


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def linear(i, o):
    return nn.Linear(i, o, bias=False)


def yarn_m(s, mscale):
    return 1.0 if s <= 1 else 0.1 * mscale * math.log(s) + 1.0


def rope_tables(c, T):
    """cos, sin [T, d_r/2] (interleaved pairs, YaRN when rope_scaling.type == yarn; SPEC §1.4)
    and the softmax scale."""
    dr, base = c["qk_rope_head_dim"], c.get("rope_theta", 10000.0)
    f = 1.0 / base ** (torch.arange(0, dr, 2, dtype=torch.float64) / dr)
    scale = (c["qk_nope_head_dim"] + dr) ** -0.5
    mul = 1.0
    rs = c.get("rope_scaling") or {}
    if rs.get("type", rs.get("rope_type")) == "yarn":
        s, L0 = rs["factor"], rs["original_max_position_embeddings"]
        corr = lambda r: dr * math.log(L0 / (r * 2 * math.pi)) / (2 * math.log(base))
        lo = max(math.floor(corr(rs.get("beta_fast", 32))), 0)
        hi = min(math.ceil(corr(rs.get("beta_slow", 1))), dr - 1)
        if lo == hi:
            hi += 0.001
        ramp = ((torch.arange(dr // 2, dtype=torch.float64) - lo) / (hi - lo)).clamp(0, 1)
        f = f * (1 - ramp) + f / s * ramp
        mul = yarn_m(s, rs.get("mscale", 1.0)) / yarn_m(s, rs.get("mscale_all_dim", 0.0))
        if rs.get("mscale_all_dim", 0):
            scale *= yarn_m(s, rs["mscale_all_dim"]) ** 2
    ang = torch.arange(T, dtype=torch.float64)[:, None] * f[None, :]
    return (torch.cos(ang) * mul).float(), (torch.sin(ang) * mul).float(), scale


def rope(x, cos, sin):
    """x [..., T, heads, d_r], pairs (x[2i], x[2i+1]) rotated as complex numbers."""
    a, b = x[..., 0::2], x[..., 1::2]
    cos, sin = cos[:, None, :], sin[:, None, :]
    return torch.stack([a * cos - b * sin, b * cos + a * sin], -1).flatten(-2)


class MLA(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, H = c["hidden_size"], c["num_attention_heads"]
        self.H, self.dn, self.dr, self.dv, self.dc = (H, c["qk_nope_head_dim"], c["qk_rope_head_dim"],
                                                      c["v_head_dim"], c["kv_lora_rank"])
        dq = self.dn + self.dr
        if c.get("q_lora_rank"):
            self.q_a_proj = linear(d, c["q_lora_rank"])
            self.q_a_layernorm = RMSNorm(c["q_lora_rank"], c["rms_norm_eps"])
            self.q_b_proj = linear(c["q_lora_rank"], H * dq)
        else:
            self.q_proj = linear(d, H * dq)
        self.kv_a_proj_with_mqa = linear(d, self.dc + self.dr)
        self.kv_a_layernorm = RMSNorm(self.dc, c["rms_norm_eps"])
        self.kv_b_proj = linear(self.dc, H * (self.dn + self.dv))
        self.o_proj = linear(H * self.dv, d)

    def forward(self, x, cos, sin, scale, mask):
        B, T, _ = x.shape
        H, dn, dr, dv, dc = self.H, self.dn, self.dr, self.dv, self.dc
        if hasattr(self, "q_a_proj"):
            q = self.q_b_proj(self.q_a_layernorm(self.q_a_proj(x)))
        else:
            q = self.q_proj(x)
        q = q.view(B, T, H, dn + dr)
        kv = self.kv_a_proj_with_mqa(x)
        ckv, k_pe = kv.split([dc, dr], -1)
        k_pe = rope(k_pe.view(B, T, 1, dr), cos, sin)
        up = self.kv_b_proj(self.kv_a_layernorm(ckv)).view(B, T, H, dn + dv)
        k_nope, v = up.split([dn, dv], -1)
        q = torch.cat([q[..., :dn], rope(q[..., dn:], cos, sin)], -1).transpose(1, 2)  # B H T dq
        k = torch.cat([k_nope, k_pe.expand(B, T, H, dr)], -1).transpose(1, 2)
        att = torch.baddbmm(mask.expand(B * H, T, T), q.reshape(B * H, T, dn + dr),
                            k.reshape(B * H, T, dn + dr).transpose(1, 2), alpha=scale).softmax(-1)
        o = torch.bmm(att, v.transpose(1, 2).reshape(B * H, T, dv))
        return self.o_proj(o.view(B, H, T, dv).transpose(1, 2).reshape(B, T, H * dv))


class MLP(nn.Module):
    def __init__(self, d, inter):
        super().__init__()
        self.gate_proj, self.up_proj, self.down_proj = linear(d, inter), linear(d, inter), linear(inter, d)

    def forward(self, x):
        return self.down_proj(Fn.silu(self.gate_proj(x)) * self.up_proj(x))


class MoE(nn.Module):
    """DeepSeekMoE (noaux_tc / greedy / group_limited_greedy routers, SPEC §1.6). Experts are stored
    stacked ([E, I, d] gate/up, [E, d, I] down) and run on their gathered rows."""

    def __init__(self, c):
        super().__init__()
        d, I, E = c["hidden_size"], c["moe_intermediate_size"], c["n_routed_experts"]
        self.c, self.E, self.K = c, E, c["num_experts_per_tok"]
        self.gate = linear(d, E)
        self.register_buffer("e_score_correction_bias", torch.zeros(E))
        self.w_gate = nn.Parameter(torch.empty(E, I, d))
        self.w_up = nn.Parameter(torch.empty(E, I, d))
        self.w_down = nn.Parameter(torch.empty(E, d, I))
        ns = c.get("n_shared_experts") or 0
        self.shared_experts = MLP(d, I * ns) if ns else None
        self.method = c.get("topk_method", "noaux_tc" if c["model_type"] == "deepseek_v3" else "greedy")
        self.sigmoid = c.get("scoring_func", "sigmoid" if c["model_type"] == "deepseek_v3" else "softmax") == "sigmoid"
        self.norm = c.get("norm_topk_prob", c["model_type"] == "deepseek_v3")
        self.routed_scale = c.get("routed_scaling_factor", 1.0)

    def route(self, s):
        with torch.no_grad():
            choice = s + self.e_score_correction_bias if self.method == "noaux_tc" else s
            G = self.c.get("n_group", 1)
            if self.method in ("noaux_tc", "group_limited_greedy") and G > 1:
                g = choice.view(-1, G, self.E // G)
                gs = g.topk(2, -1).values.sum(-1) if self.method == "noaux_tc" else g.max(-1).values
                keep = torch.zeros_like(gs, dtype=torch.bool)
                keep.scatter_(1, gs.topk(self.c["topk_group"], -1).indices, True)
                choice = choice.masked_fill(~keep.repeat_interleave(self.E // G, 1), float("-inf"))
            return choice.topk(self.K, -1, sorted=False).indices

    def forward(self, x):
        """x [B, T, d] -> (out, scores [N, E], idx [N, K])."""
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        logits = self.gate(x)
        s = logits.sigmoid() if self.sigmoid else logits.softmax(-1)
        idx = self.route(s)
        w = s.gather(1, idx)
        if self.norm and self.K > 1:
            w = w / (w.sum(-1, keepdim=True) + 1e-20)
        w = w * self.routed_scale
        flat = idx.flatten()
        order = flat.argsort()
        token = order // self.K
        counts = torch.bincount(flat, minlength=self.E).tolist()
        xs = x.index_select(0, token)
        ys = []
        start = 0
        for e, n in enumerate(counts):
            if n:
                xe = xs[start:start + n]
                h = Fn.silu(xe @ self.w_gate[e].t()) * (xe @ self.w_up[e].t())
                ys.append(h @ self.w_down[e].t())
            start += n
        y = torch.cat(ys) * w.flatten().index_select(0, order).unsqueeze(1)
        out = torch.zeros_like(x).index_add(0, token, y)
        if self.shared_experts is not None:
            out = out + self.shared_experts(x)
        return out.view(shape), s, idx


class Layer(nn.Module):
    def __init__(self, c, moe):
        super().__init__()
        self.input_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.self_attn = MLA(c)
        self.post_attention_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.mlp = MoE(c) if moe else MLP(c["hidden_size"], c["intermediate_size"])

    def forward(self, x, rot, routing):
        h = x + self.self_attn(self.input_layernorm(x), *rot)
        y = self.post_attention_layernorm(h)
        if isinstance(self.mlp, MoE):
            out, s, idx = self.mlp(y)
            routing.append((self.mlp, s, idx))
            return h + out
        return h + self.mlp(y)


class MTP(nn.Module):
    def __init__(self, c, moe):
        super().__init__()
        d = c["hidden_size"]
        self.enorm, self.hnorm = RMSNorm(d, c["rms_norm_eps"]), RMSNorm(d, c["rms_norm_eps"])
        self.eh_proj = linear(2 * d, d)
        self.layer = Layer(c, moe)
        self.norm = RMSNorm(d, c["rms_norm_eps"])


class Model(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        d, V, L = c["hidden_size"], c["vocab_size"], c["num_hidden_layers"]
        self.embed_tokens = nn.Embedding(V, d)
        self.layers = nn.ModuleList([Layer(c, self.is_moe(l)) for l in range(L)])
        self.norm = RMSNorm(d, c["rms_norm_eps"])
        self.lm_head = linear(d, V)
        self.mtp = MTP(c, self.is_moe(L)) if c.get("num_nextn_predict_layers", 0) else None
        self.rot = None

    def is_moe(self, l):
        c = self.c
        return (c.get("n_routed_experts", 0) > 0 and l >= c.get("first_k_dense_replace", 0)
                and l % c.get("moe_layer_freq", 1) == 0)

    def forward(self, win, lam, alpha):
        """win [B, T+1] -> (loss, ce, mtp_ce, balance, routing)."""
        B, T1 = win.shape
        T = T1 - 1
        if self.rot is None or self.rot[0].shape[0] != T:
            cos, sin, scale = rope_tables(self.c, T)
            mask = torch.full((T, T), float("-inf")).triu(1)
            self.rot = (cos, sin, scale, mask)
        routing = []
        x = self.embed_tokens(win[:, :T])
        for layer in self.layers:
            x = layer(x, self.rot, routing)
        h = self.norm(x)
        V = self.c["vocab_size"]
        ce = Fn.cross_entropy(self.lm_head(h).view(-1, V), win[:, 1:].reshape(-1))
        loss = ce
        mtp_ce = torch.zeros(())
        n_main = len(routing)
        if self.mtp is not None:
            m = self.mtp
            e = self.embed_tokens(win[:, 1:])
            x = m.eh_proj(torch.cat([m.enorm(e), m.hnorm(h)], -1))
            x = m.norm(m.layer(x, self.rot, routing))
            if T >= 2:
                mtp_ce = Fn.cross_entropy(self.lm_head(x[:, :T - 1]).reshape(-1, V), win[:, 2:].reshape(-1))
                loss = loss + lam * mtp_ce
        bal = torch.zeros(())
        for moe, s, idx in routing:
            E, K = moe.E, moe.K
            sb = s.view(B, T, E)
            P = (sb / sb.sum(-1, keepdim=True)).mean(1)
            f = torch.zeros(B, E).scatter_add_(1, idx.view(B, T * K), torch.ones(B, T * K)) * (E / (K * T))
            bal = bal + (f * P).sum(-1).mean()
        if routing:
            loss = loss + alpha * bal
        return loss, ce, mtp_ce, bal, routing, n_main


def init_params(model, std, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("layernorm.weight") or n.endswith("norm.weight"):
                p.fill_(1.0)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * std)


def load_hf(model, c, folder):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))
    import safetensors_np as st
    w = st.dequantized_f64(st.read_folder(folder))
    L = c["num_hidden_layers"]
    sd = model.state_dict()
    new = {}
    for name, v in w.items():
        t = torch.from_numpy(v).float()
        n = name[len("model."):] if name.startswith("model.") else name
        n = n.replace("gate.e_score_correction_bias", "e_score_correction_bias")
        if n.startswith("layers.%d." % L):  # MTP module
            rest = n[len("layers.%d." % L):]
            if rest in ("embed_tokens.weight", "shared_head.head.weight"):
                continue  # the main embedding and head (shared, SPEC §1.7)
            n = "mtp." + (rest.replace("shared_head.norm", "norm") if rest.startswith(("enorm", "hnorm", "eh_proj", "shared_head"))
                          else "layer." + rest)
        if ".mlp.experts." in n:
            pre, rest = n.split(".mlp.experts.")
            e, proj = rest.split(".")[:2]
            key = pre + ".mlp." + {"gate_proj": "w_gate", "up_proj": "w_up", "down_proj": "w_down"}[proj]
            new.setdefault(key, {})[int(e)] = t
            continue
        new[n] = t
    for k, v in list(new.items()):
        if isinstance(v, dict):
            new[k] = torch.stack([v[e] for e in range(len(v))])
    missing = set(sd) - set(new)
    extra = set(new) - set(sd)
    if missing or extra:
        raise SystemExit("train_torch: names do not match: missing %s, extra %s" % (sorted(missing)[:5], sorted(extra)[:5]))
    model.load_state_dict(new)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", "-m", help="HF folder (config.json + safetensors)")
    src.add_argument("--config", help="config.json: random N(0, 0.006) weights")
    ap.add_argument("-B", "--batch", type=int, default=8, help="windows per step")
    ap.add_argument("-T", "--seq", type=int, default=256, help="tokens per window (inputs)")
    ap.add_argument("--steps", type=int, default=8, help="steps in all, warm-up included")
    ap.add_argument("--warmup", type=int, default=2, help="first steps left out of the figure")
    ap.add_argument("--threads", "-t", type=int, default=2)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--lambda", dest="lam", type=float, default=0.3)
    ap.add_argument("--alpha", type=float, default=1e-4)
    ap.add_argument("--gamma", type=float, default=0.001)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.steps <= a.warmup:
        raise SystemExit("train_torch: --steps must exceed --warmup")
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    cfg_path = os.path.join(a.model, "config.json") if a.model else a.config
    c = json.load(open(cfg_path))
    model = Model(c)
    t0 = time.time()
    if a.model:
        load_hf(model, c, a.model)
    else:
        init_params(model, 0.006, a.seed)
    load_s = time.time() - t0
    params = [p for p in model.parameters()]
    opt = torch.optim.AdamW([{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
                             {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8, foreach=True)
    gen = torch.Generator().manual_seed(a.seed)
    times, losses = [], []
    for step in range(a.steps):
        win = torch.randint(0, c["vocab_size"], (a.batch, a.seq + 1), generator=gen)
        t = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        loss, ce, mtp, bal, routing, _ = model(win, a.lam, a.alpha)
        loss.backward()
        if a.clip > 0:
            torch.nn.utils.clip_grad_norm_(params, a.clip)
        opt.step()
        with torch.no_grad():
            for moe, s, idx in routing:
                load = torch.bincount(idx.flatten(), minlength=moe.E)
                moe.e_score_correction_bias.add_(torch.sign(idx.numel() / moe.E - load.float()) * a.gamma)
        times.append(time.perf_counter() - t)
        losses.append(float(loss))
    timed = times[a.warmup:]
    tok = a.batch * a.seq
    print(json.dumps({
        "bench": "train_torch", "torch": torch.__version__, "model": a.model or a.config,
        "model_type": c["model_type"], "n_params": sum(p.numel() for p in params),
        "threads": a.threads, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "batch": a.batch, "seq": a.seq, "tokens_per_step": tok,
        "steps": a.steps, "warmup": a.warmup,
        "tokens_per_s": tok * len(timed) / sum(timed),
        "tokens_per_s_median": tok / sorted(timed)[len(timed) // 2],
        "tokens_per_s_best": tok / min(timed),
        "step_s": [round(x, 4) for x in times],
        "loss_first": losses[0], "loss_last": losses[-1], "load_s": round(load_s, 3),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))


if __name__ == "__main__":
    main()

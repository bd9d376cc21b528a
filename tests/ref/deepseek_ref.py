"""Independent float64 PyTorch forward of the architectures dsv3 runs, written from SPEC §1 and the
Hugging Face modeling files' semantics (no code shared with dsv3):

  deepseek_v3 / deepseek_v2: MLA (with/without q_lora, naive K/V), interleaved RoPE with YaRN and
    its mscale (HF: whenever rope_scaling.type == yarn), dense SwiGLU, DeepSeekMoE with shared
    experts, routers noaux_tc / greedy / group_limited_greedy, MTP (embedding first, h after
    model.norm, SPEC §9);
  qwen2 / llama: GQA with rotate-half RoPE, q/k/v biases (qwen2), llama3 frequency scaling.

Weights: {name: float64 numpy array} (see safetensors_np.dequantized_f64).
"""
import math

import numpy as np
import torch

F = torch.float64


class Reference:
    def __init__(self, cfg, weights):
        self.c = cfg
        self.w = {k: torch.from_numpy(np.asarray(v, dtype=np.float64)) for k, v in weights.items()}
        self.mla = cfg["model_type"] in ("deepseek_v3", "deepseek_v2")
        self.eps = cfg.get("rms_norm_eps", 1e-6)
        self.L = cfg["num_hidden_layers"]

    # ---- basics
    def lin(self, x, name):
        y = x @ self.w[name + ".weight"].T
        if name + ".bias" in self.w:
            y = y + self.w[name + ".bias"]
        return y

    def head_mm(self, x, w):
        """x @ w.T for the LM heads and MTP's eh_proj (a hook: the FP8 reference rounds them to BF16)."""
        return x @ w.T

    def norm(self, x, name):
        return self.w[name + ".weight"] * x / torch.sqrt((x * x).mean(-1, keepdim=True) + self.eps)

    def swiglu(self, x, p):
        g = self.lin(x, p + "gate_proj")
        return self.lin(torch.nn.functional.silu(g) * self.lin(x, p + "up_proj"), p + "down_proj")

    # ---- rotary frequencies
    @staticmethod
    def yarn_m(factor, mscale):
        return 1.0 if factor <= 1 else 0.1 * mscale * math.log(factor) + 1.0

    def inv_freq(self):
        c = self.c
        dim = c["qk_rope_head_dim"] if self.mla else c.get("head_dim", c["hidden_size"] // c["num_attention_heads"])
        base = c.get("rope_theta", 10000.0)
        f = 1.0 / base ** (torch.arange(0, dim, 2, dtype=F) / dim)
        rs = c.get("rope_scaling") or {}
        kind = rs.get("type", rs.get("rope_type", ""))
        scale = 1.0
        if kind == "yarn":
            s, L0 = rs["factor"], rs["original_max_position_embeddings"]
            corr = lambda r: dim * math.log(L0 / (r * 2 * math.pi)) / (2 * math.log(base))
            low = max(math.floor(corr(rs.get("beta_fast", 32))), 0)
            high = min(math.ceil(corr(rs.get("beta_slow", 1))), dim - 1)
            if low == high:
                high += 0.001
            ramp = ((torch.arange(dim // 2, dtype=F) - low) / (high - low)).clamp(0, 1)
            f = f * (1 - ramp) + f / s * ramp
            scale = self.yarn_m(s, rs.get("mscale", 1.0)) / self.yarn_m(s, rs.get("mscale_all_dim", 0.0))
        elif kind == "llama3":
            s, L0 = rs["factor"], rs["original_max_position_embeddings"]
            lo, hi = rs["low_freq_factor"], rs["high_freq_factor"]
            out = []
            for fi in f.tolist():
                wl = 2 * math.pi / fi
                if wl < L0 / hi:
                    out.append(fi)
                elif wl > L0 / lo:
                    out.append(fi / s)
                else:
                    sm = (L0 / wl - lo) / (hi - lo)
                    out.append((1 - sm) * fi / s + sm * fi)
            f = torch.tensor(out, dtype=F)
        elif kind == "linear":
            f = f / rs["factor"]
        return f, scale

    def softmax_scale(self):
        c = self.c
        if not self.mla:
            return c.get("head_dim", c["hidden_size"] // c["num_attention_heads"]) ** -0.5
        s = (c["qk_nope_head_dim"] + c["qk_rope_head_dim"]) ** -0.5
        rs = c.get("rope_scaling") or {}
        if rs.get("type", rs.get("rope_type")) == "yarn" and rs.get("mscale_all_dim", 0):
            m = self.yarn_m(rs["factor"], rs["mscale_all_dim"])
            s *= m * m
        return s

    def rope(self, x, pos, interleaved):
        """x [..., T, heads, dim] rotated by position."""
        f, scale = self.inv_freq()
        ang = pos.to(F)[:, None] * f[None, :]  # [T, dim/2]
        cos = (torch.cos(ang) * scale)[:, None, :]
        sin = (torch.sin(ang) * scale)[:, None, :]
        if interleaved:  # pairs (x[2i], x[2i+1]) as complex numbers (SPEC §1.4)
            a, b = x[..., 0::2], x[..., 1::2]
            out = torch.empty_like(x)
            out[..., 0::2] = a * cos - b * sin
            out[..., 1::2] = b * cos + a * sin
            return out
        h = x.shape[-1] // 2
        a, b = x[..., :h], x[..., h:]
        return torch.cat([a * cos - b * sin, b * cos + a * sin], -1)

    # ---- attention
    def attend(self, q, k, v):
        """q [T,H,dk], k [T,H,dk], v [T,H,dv]; causal softmax attention -> [T, H*dv]."""
        T = q.shape[0]
        s = torch.einsum("thd,shd->hts", q, k) * self.softmax_scale()
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
        s = s.masked_fill(mask, float("-inf")).softmax(-1)
        return torch.einsum("hts,shd->thd", s, v).reshape(T, -1)

    def mla_attn(self, x, p, pos):
        c = self.c
        T, H = x.shape[0], c["num_attention_heads"]
        dn, dr, dv, dc = c["qk_nope_head_dim"], c["qk_rope_head_dim"], c["v_head_dim"], c["kv_lora_rank"]
        if c.get("q_lora_rank"):
            q = self.lin(self.norm(self.lin(x, p + "q_a_proj"), p + "q_a_layernorm"), p + "q_b_proj")
        else:
            q = self.lin(x, p + "q_proj")
        q = q.view(T, H, dn + dr)
        q_pe = self.rope(q[..., dn:], pos, True)
        kv = self.lin(x, p + "kv_a_proj_with_mqa")
        ckv = self.norm(kv[:, :dc], p + "kv_a_layernorm")
        k_pe = self.rope(kv[:, None, dc:], pos, True)  # one key shared by all heads
        up = self.lin(ckv, p + "kv_b_proj").view(T, H, dn + dv)
        k = torch.cat([up[..., :dn], k_pe.expand(T, H, dr)], -1)
        qf = torch.cat([q[..., :dn], q_pe], -1)
        return self.lin(self.attend(qf, k, up[..., dn:]), p + "o_proj")

    def gqa_attn(self, x, p, pos):
        c = self.c
        T, H, kvh = x.shape[0], c["num_attention_heads"], c["num_key_value_heads"]
        hd = c.get("head_dim", c["hidden_size"] // H)
        q = self.rope(self.lin(x, p + "q_proj").view(T, H, hd), pos, False)
        k = self.rope(self.lin(x, p + "k_proj").view(T, kvh, hd), pos, False)
        v = self.lin(x, p + "v_proj").view(T, kvh, hd)
        rep = H // kvh
        k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
        return self.lin(self.attend(q, k, v), p + "o_proj")

    # ---- MoE
    def route(self, logits, bias):
        """Returns (idx [T,K], weights [T,K]) following HF MoEGate semantics (SPEC §1.6)."""
        c = self.c
        E, K = c["n_routed_experts"], c["num_experts_per_tok"]
        method = c.get("topk_method", "noaux_tc" if c["model_type"] == "deepseek_v3" else "greedy")
        func = c.get("scoring_func", "sigmoid" if c["model_type"] == "deepseek_v3" else "softmax")
        norm = c.get("norm_topk_prob", c["model_type"] == "deepseek_v3")
        s = logits.sigmoid() if func == "sigmoid" else logits.softmax(-1)
        choice = s + bias if method == "noaux_tc" else s.clone()
        if method in ("noaux_tc", "group_limited_greedy") and c.get("n_group", 1) > 1:
            G = c["n_group"]
            g = choice.view(-1, G, E // G)
            gs = g.topk(2, -1).values.sum(-1) if method == "noaux_tc" else g.max(-1).values
            keep = torch.zeros_like(gs, dtype=torch.bool)
            keep.scatter_(1, gs.topk(c["topk_group"], -1).indices, True)
            choice = choice.masked_fill(~keep.repeat_interleave(E // G, 1), float("-inf"))
        idx = choice.topk(K, -1).indices
        w = s.gather(1, idx)
        if norm and K > 1:
            w = w / (w.sum(-1, keepdim=True) + 1e-20)
        return idx, w * c.get("routed_scaling_factor", 1.0)

    def moe(self, x, p):
        c = self.c
        bias = self.w.get(p + "gate.e_score_correction_bias", torch.zeros(c["n_routed_experts"], dtype=F))
        idx, w = self.route(x @ self.w[p + "gate.weight"].T, bias)
        out = self.swiglu(x, p + "shared_experts.") if c.get("n_shared_experts", 0) else torch.zeros_like(x)
        for t in range(x.shape[0]):
            for j in range(idx.shape[1]):
                e = int(idx[t, j])
                out[t] = out[t] + w[t, j] * self.swiglu(x[t:t + 1], p + "experts.%d." % e)[0]
        return out

    def is_moe(self, layer):
        c = self.c
        return (c.get("n_routed_experts", 0) > 0 and layer >= c.get("first_k_dense_replace", 0)
                and layer % c.get("moe_layer_freq", 1) == 0)

    def layer(self, x, l, pos):
        p = "model.layers.%d." % l
        attn = self.mla_attn if self.mla else self.gqa_attn
        h = x + attn(self.norm(x, p + "input_layernorm"), p + "self_attn.", pos)
        y = self.norm(h, p + "post_attention_layernorm")
        return h + (self.moe(y, p + "mlp.") if self.is_moe(l) else self.swiglu(y, p + "mlp."))

    # ---- whole model
    def forward(self, ids):
        """logits [T, V] and the last hidden state after model.norm [T, d]."""
        pos = torch.arange(len(ids))
        x = self.w["model.embed_tokens.weight"][torch.tensor(ids)]
        for l in range(self.L):
            x = self.layer(x, l, pos)
        h = self.norm(x, "model.norm")
        head = self.w.get("lm_head.weight", self.w["model.embed_tokens.weight"])
        return self.head_mm(h, head), h

    def mtp(self, hidden, ids):
        """MTP logits [T-1, V]: row i from h_i and t_{i+1} predicts t_{i+2} (SPEC §1.7, §9)."""
        p = "model.layers.%d." % self.L
        emb = self.w.get(p + "embed_tokens.weight", self.w["model.embed_tokens.weight"])
        e = emb[torch.tensor(ids[1:])]
        x = torch.cat([self.norm(e, p + "enorm"), self.norm(hidden[:-1], p + "hnorm")], -1)
        x = self.head_mm(x, self.w[p + "eh_proj.weight"])
        x = self.layer(x, self.L, torch.arange(len(ids) - 1))
        head = self.w.get(p + "shared_head.head.weight", self.w["lm_head.weight"])
        return self.head_mm(self.norm(x, p + "shared_head.norm"), head)

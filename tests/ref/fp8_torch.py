"""The FP8 training recipe (SPEC §3.1, TR §3.3) as a float64 PyTorch emulation, written from the
recipe and the format definitions; shares no code with dsv3. Used by `train_ref.py grad --fp8`.

Every Linear but the LM heads, MTP's eh_proj (BF16 operands, FP32 sums) and the MoE gate (FP32):
  Fprop  y  = Q(x; 1x128) @ Q(W; 128x128).T
  Dgrad  dx = Q(dy; 1x128) @ Q(W; 128x128)
  Wgrad  dW = Q(dy; 128x1).T @ Q(C; 128x1), C the cached input: Q(x; 1x128) in E4M3, or for the
         attention output projection (o_proj) x in E5M6 with power-of-two scales; every scale of
         o_proj's input (Fprop, cache, regrouping) is a power of two.
Attention's backward reads its output as that E5M6 cache holds it (TR §3.3.3: the o_proj input
is also used in the backward pass of the attention operator): D = rowsum(dO * C) in
dS = P (dP - D), with tiles (scaling "tile"; per tensor it reads the exact output).
Q(t; br x bc): per tile s = max(amax, 1e-4) / fmt_max (a float32 number, as the recipe keeps its
scales; pow2: 2^ceil(log2 s)), value = round_fmt(t / s) * s with the quotient in float32 (the
recipe's arithmetic), nearest with ties to the even code, saturating. With scaling "tensor" every tile is the whole tensor. Products and sums float64 here
(dsv3: exact products, FP32 sums promoted every 128), so the two differ by FP32 rounding and by
the rare element whose float32 and float64 quotients round to different codes.
"""
import math

import numpy as np
import torch


def _table(exp_bits, mant_bits, bias, max_code):
    """Values of the non-negative codes 0..max_code (increasing), from the bit fields."""
    out = []
    for c in range(max_code + 1):
        e, m = c >> mant_bits, c & ((1 << mant_bits) - 1)
        frac = m / float(1 << mant_bits)
        out.append(frac * 2.0 ** (1 - bias) if e == 0 else (1 + frac) * 2.0 ** (e - bias))
    return np.array(out)


E4M3 = _table(4, 3, 7, 0x7E)  # largest 448
E5M6 = _table(5, 6, 15, (30 << 6) | 63)  # IEEE-like: exponent 31 reserved; largest 65024


def round_fmt(y, table):
    """Nearest value of the format, ties to the even code, saturating; y float64 numpy."""
    a = np.abs(y)
    hi = np.searchsorted(table, np.minimum(a, table[-1]), side="left").clip(0, len(table) - 1)
    lo = (hi - 1).clip(0, len(table) - 1)
    dlo, dhi = a - table[lo], table[hi] - a
    code = np.where(dlo < dhi, lo, np.where(dhi < dlo, hi, np.where(lo % 2 == 0, lo, hi)))
    return np.copysign(table[code], y)


def scale_of(amax, fmt_max, pow2):
    s = float(np.float32(max(float(amax), 1e-4)) / np.float32(fmt_max))
    if pow2:
        m, e = math.frexp(s)
        s = 2.0 ** (e - 1 if m == 0.5 else e)
    return s


def fake_quant(t, br, bc, table=E4M3, pow2=False):
    """t (2-D torch float64, no grad) replaced by its tile quantization, as float64."""
    x = t.detach().numpy()
    r, c = x.shape
    br, bc = min(br, r) or 1, min(bc, c) or 1
    out = np.empty_like(x)
    for i in range(0, r, br):
        for j in range(0, c, bc):
            blk = x[i:i + br, j:j + bc]
            s = scale_of(np.abs(blk).max() if blk.size else 0.0, table[-1], pow2)
            # The quotient in float32, as the recipe divides (act_quant's y = x / s): with
            # BF16 embeddings and unit norm gains, x / s often lands on a tie exactly in
            # float32 that float64 would break, so the division is not done in float64.
            y = (blk.astype(np.float32) / np.float32(s)).astype(np.float64)
            out[i:i + br, j:j + bc] = round_fmt(y, table) * s
    return torch.from_numpy(out)


class _Fp8Linear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, tensor, attn_out):
        T, n = x.shape
        act = (T, n) if tensor else (1, 128)
        wt = w.shape if tensor else (128, 128)
        xq = fake_quant(x, *act, pow2=attn_out)
        wq = fake_quant(w, *wt)
        ctx.save_for_backward(x, wq)
        ctx.tensor, ctx.attn_out = tensor, attn_out
        return xq @ wq.T

    @staticmethod
    def backward(ctx, dy):
        x, wq = ctx.saved_tensors
        tensor, attn_out = ctx.tensor, ctx.attn_out
        dyq = fake_quant(dy, *(dy.shape if tensor else (1, 128)))
        dx = dyq @ wq
        if tensor:
            cache = fake_quant(x, *x.shape, pow2=attn_out)
            xr, dyr = fake_quant(cache, *cache.shape, pow2=attn_out), fake_quant(dy, *dy.shape)
        else:
            cache = (fake_quant(x, 1, 128, E5M6, pow2=True) if attn_out
                     else fake_quant(x, 1, 128, pow2=False))
            xr = fake_quant(cache, 128, 1, pow2=attn_out)
            dyr = fake_quant(dy, 128, 1)
        return dx, dyr.T @ xr, None, None


class _AttendE5m6(torch.autograd.Function):
    """Causal softmax attention, q [T,H,dk], k [T,H,dk], v [T,H,dv] -> [T, H*dv], whose backward
    reads the output from o_proj's E5M6 cache (1x128 tiles of [T, H*dv], power-of-two scales)."""

    @staticmethod
    def forward(ctx, q, k, v, scale):
        T = q.shape[0]
        s = torch.einsum("thd,shd->hts", q, k) * scale
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
        p = s.masked_fill(mask, float("-inf")).softmax(-1)
        o = torch.einsum("hts,shd->thd", p, v).reshape(T, -1)
        cache = fake_quant(o, 1, 128, E5M6, pow2=True).view(T, q.shape[1], -1)
        ctx.save_for_backward(q, k, v, p, cache)
        ctx.scale = scale
        return o

    @staticmethod
    def backward(ctx, do):
        q, k, v, p, cache = ctx.saved_tensors
        do = do.reshape(cache.shape)
        dv = torch.einsum("hts,thd->shd", p, do)
        dp = torch.einsum("thd,shd->hts", do, v)
        d = (do * cache).sum(-1).transpose(0, 1)  # [H, T]
        ds = p * (dp - d[..., None]) * ctx.scale
        return (torch.einsum("hts,shd->thd", ds, k), torch.einsum("hts,thd->shd", ds, q), dv,
                None)


class _Bf16Mm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w):
        xb = x.float().bfloat16().double()
        wb = w.float().bfloat16().double()
        ctx.save_for_backward(xb, wb)
        return xb @ wb.T

    @staticmethod
    def backward(ctx, dy):
        xb, wb = ctx.saved_tensors
        dyb = dy.float().bfloat16().double()
        return dyb @ wb, dyb.T @ xb


def fp8_reference(base, scaling):
    """A subclass of the training reference `base` whose Linears follow the FP8 recipe."""
    tensor = scaling == "tensor"

    class Fp8Ref(base):
        def lin(self, x, name):
            w = self.w[name + ".weight"]
            shape = x.shape
            y = _Fp8Linear.apply(x.reshape(-1, shape[-1]), w, tensor, name.endswith("o_proj"))
            y = y.reshape(*shape[:-1], w.shape[0])
            if name + ".bias" in self.w:
                y = y + self.w[name + ".bias"]
            return y

        def head_mm(self, x, w):
            return _Bf16Mm.apply(x, w)

        def attend(self, q, k, v):
            if tensor:
                return super().attend(q, k, v)
            return _AttendE5m6.apply(q, k, v, self.softmax_scale())

    return Fp8Ref

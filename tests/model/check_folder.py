#!/usr/bin/python3
"""Independent check of a folder written by `dsv3 init`: reads it with numpy alone and compares it
with a tensor list rebuilt here from config.json by SPEC §6 (a second implementation of the
parameter table), then checks the initialisation of SPEC §1.2 and, for FP8 folders, the block
scales of SPEC §3.2.

  check_folder.py DIR [REF_DIR]

With REF_DIR (the same model and seed written as F32), every tensor must equal the reference after
rounding: BF16 within half a bf16 step (2^-8 relative), E4M3 within half an E4M3 step (2^-4
relative) plus half the smallest subnormal step of its block (2^-10 * scale_inv).
"""
import json
import math
import os
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "BF16": np.uint16, "F8_E4M3": np.uint8, "F16": np.float16}


def expected_tensors(c):
    """name -> shape, per SPEC §6 (deepseek_v3 / deepseek_v2 only)."""
    d, H, V, L = c["hidden_size"], c["num_attention_heads"], c["vocab_size"], c["num_hidden_layers"]
    qk = c["qk_nope_head_dim"] + c["qk_rope_head_dim"]
    t = {"model.embed_tokens.weight": [V, d], "model.norm.weight": [d], "lm_head.weight": [V, d]}

    def layer(p, i):
        t[p + "input_layernorm.weight"] = [d]
        t[p + "post_attention_layernorm.weight"] = [d]
        a = p + "self_attn."
        if c.get("q_lora_rank"):
            t[a + "q_a_proj.weight"] = [c["q_lora_rank"], d]
            t[a + "q_a_layernorm.weight"] = [c["q_lora_rank"]]
            t[a + "q_b_proj.weight"] = [H * qk, c["q_lora_rank"]]
        else:
            t[a + "q_proj.weight"] = [H * qk, d]
        t[a + "kv_a_proj_with_mqa.weight"] = [c["kv_lora_rank"] + c["qk_rope_head_dim"], d]
        t[a + "kv_a_layernorm.weight"] = [c["kv_lora_rank"]]
        t[a + "kv_b_proj.weight"] = [H * (c["qk_nope_head_dim"] + c["v_head_dim"]), c["kv_lora_rank"]]
        t[a + "o_proj.weight"] = [d, H * c["v_head_dim"]]
        moe = c["n_routed_experts"] and i >= c["first_k_dense_replace"] and i % c["moe_layer_freq"] == 0
        if not moe:
            f = c["intermediate_size"]
            t[p + "mlp.gate_proj.weight"] = [f, d]
            t[p + "mlp.up_proj.weight"] = [f, d]
            t[p + "mlp.down_proj.weight"] = [d, f]
            return
        E, f = c["n_routed_experts"], c["moe_intermediate_size"]
        t[p + "mlp.gate.weight"] = [E, d]
        if c["topk_method"] == "noaux_tc":
            t[p + "mlp.gate.e_score_correction_bias"] = [E]
        for e in range(E):
            x = "%smlp.experts.%d." % (p, e)
            t[x + "gate_proj.weight"], t[x + "up_proj.weight"], t[x + "down_proj.weight"] = [f, d], [f, d], [d, f]
        s = c["n_shared_experts"] * f
        if s:
            x = p + "mlp.shared_experts."
            t[x + "gate_proj.weight"], t[x + "up_proj.weight"], t[x + "down_proj.weight"] = [s, d], [s, d], [d, s]

    for i in range(L):
        layer("model.layers.%d." % i, i)
    for k in range(1, c.get("num_nextn_predict_layers", 0) + 1):
        p = "model.layers.%d." % (L + k - 1)
        layer(p, L + k - 1)
        t[p + "embed_tokens.weight"] = [V, d]
        t[p + "enorm.weight"] = [d]
        t[p + "hnorm.weight"] = [d]
        t[p + "eh_proj.weight"] = [d, 2 * d]
        t[p + "shared_head.norm.weight"] = [d]
        t[p + "shared_head.head.weight"] = [V, d]
    return t


def read_folder(d):
    files = sorted(f for f in os.listdir(d) if f.endswith(".safetensors"))
    out = {}
    for f in files:
        raw = open(os.path.join(d, f), "rb").read()
        n = struct.unpack("<Q", raw[:8])[0]
        header = json.loads(raw[8:8 + n])
        header.pop("__metadata__", None)
        data, pos = raw[8 + n:], 0
        for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
            b, e = info["data_offsets"]
            assert b == pos, "%s: %s does not start where the previous tensor ended" % (f, name)
            pos = e
            arr = np.frombuffer(data[b:e], dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
            assert name not in out, "duplicate " + name
            out[name] = (info["dtype"], arr)
        assert pos == len(data), f + ": trailing bytes"
    return out


def to_f32(dtype, a):
    if dtype == "BF16":
        return (a.astype(np.uint32) << 16).view(np.float32)
    return a.astype(np.float32)


def e4m3_table():
    """All 256 E4M3FN codes decoded from the OCP definition: bias 7, 0x7F/0xFF NaN."""
    t = np.zeros(256, dtype=np.float32)
    for code in range(256):
        s, e, m = code >> 7, (code >> 3) & 15, code & 7
        v = math.nan if (e == 15 and m == 7) else (m / 8 * 2.0 ** -6 if e == 0 else (1 + m / 8) * 2.0 ** (e - 7))
        t[code] = -v if s else v
    return t


def main(d, ref_dir=None):
    ref = read_folder(ref_dir) if ref_dir else None
    c = json.load(open(os.path.join(d, "config.json")))
    want = expected_tensors(c)
    got = read_folder(d)
    fp8 = "quantization_config" in c
    scales = {n for n in got if n.endswith("_scale_inv")}
    assert set(got) - scales == set(want), "names differ: missing %s, extra %s" % (
        sorted(set(want) - set(got))[:5], sorted(set(got) - scales - set(want))[:5])
    table = e4m3_table()
    normal = []
    for name, shape in want.items():
        dtype, a = got[name]
        assert list(a.shape) == shape, "%s: shape %s, expected %s" % (name, list(a.shape), shape)
        if dtype == "F8_E4M3":
            assert fp8, name + " is E4M3 but config.json has no quantization_config"
            sdt, s = got[name + "_scale_inv"]
            assert sdt == "F32" and list(s.shape) == [-(-shape[0] // 128), -(-shape[1] // 128)], name
            assert np.all(np.isfinite(s)) and np.all(s > 0), name
            block = np.repeat(np.repeat(s, 128, 0), 128, 1)[: shape[0], : shape[1]]
            w = table[a] * block
            tol = lambda r: np.abs(r) * 2.0 ** -4 + block * 2.0 ** -10
        else:
            w = to_f32(dtype, a)
            tol = lambda r: np.abs(r) * 2.0 ** -8 if dtype == "BF16" else 0
        if ref is not None:
            r = to_f32(*ref[name])
            bad = np.abs(w - r) > tol(r)
            assert not bad.any(), "%s: element %s is %g, reference %g" % (
                name, np.argwhere(bad)[0], w[bad][0], r[bad][0])
        if name.endswith("norm.weight") or name.endswith("layernorm.weight"):
            assert np.all(w == 1), name + ": norm weights must be 1"
        elif name.endswith("e_score_correction_bias"):
            assert dtype == "F32" and np.all(w == 0), name + ": F32 zeros expected"
        else:
            normal.append(w.ravel())
    w = np.concatenate(normal).astype(np.float64)
    # SPEC §1.2: N(0, 0.006). n is millions, so the sample std is within 0.1% of sigma; E4M3 adds
    # relative rounding noise of at most 2^-4 per value, about 4% in rms, so 5% covers all dtypes.
    assert abs(w.mean()) < 1e-4 and abs(w.std() / 0.006 - 1) < 0.05, (w.mean(), w.std())
    print("%s: %d tensors as SPEC §6 says, init mean %.2e std %.6f%s%s" % (
        d, len(want), w.mean(), w.std(), ", FP8 scales valid" if fp8 else "",
        ", equal to %s after rounding" % ref_dir if ref else ""))


if __name__ == "__main__":
    main(*sys.argv[1:3])

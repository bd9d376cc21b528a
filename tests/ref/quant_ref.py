"""Independent check of dsv3 quantize (docs/QUANTIZATION.md), written from the format definitions
with numpy alone (it shares no code with the C++): reads the source folder and the quantized one,
quantizes every tensor of the source again here under the recipe named in config.json, and
requires the stored quants, F16 scales and minimums to equal these bit for bit, every other
tensor to be the source's BF16 rounding, and the dequantized values to lie within each format's
error bound of the source.

usage: quant_ref.py SOURCE_DIR QUANTIZED_DIR
       quant_ref.py --logits DSV3 SOURCE_DIR QUANTIZED_DIR BOUND
The second form runs `dsv3 logits` on both folders (one prefill of 24 tokens) and requires
max|logits_q - logits_src| / max|logits_src| <= BOUND (docs/QUANTIZATION.md states the bounds and
how they were measured), and the quantized model's token-by-token decode to give its prefill's
logits bit for bit (every kernel's output row independent of the batch).
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np as st  # noqa: E402

F32 = np.float32


def to_f32(dt, arr):
    if dt == "BF16":
        return (arr.astype(np.uint32) << 16).view(F32)
    if dt in ("F32", "F16"):
        return arr.astype(F32)
    raise SystemExit(f"source dtype {dt} not handled here")


def bf16_bits(x):
    """float32 -> bf16 bits, round to nearest even (finite inputs)."""
    u = x.astype(F32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def rint_clip(v, lo, hi):
    return np.clip(np.rint(v), lo, hi)  # np.rint: ties to even, in the float32 of v


def quant_q8_0(x):
    """x [rows, cols] float32 -> (int8 quants, f16 scales [rows, cols/32])."""
    b = x.reshape(x.shape[0], -1, 32)
    d = (np.abs(b).max(axis=2) / F32(127)).astype(np.float16)
    df = d.astype(F32)[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(df == 0, F32(0), rint_clip(b / df, -127, 127))
    return q.astype(np.int8).reshape(x.shape), d, None


def pack4(q):
    """[rows, blocks, 32] in 0..15 -> [rows, blocks * 16] bytes: value j low nibble, j+16 high."""
    q = q.astype(np.uint8)
    return (q[..., :16] | (q[..., 16:] << 4)).reshape(q.shape[0], -1)


def quant_q4_0(x):
    b = x.reshape(x.shape[0], -1, 32)
    idx = np.abs(b).argmax(axis=2)  # the first value of largest magnitude
    v = np.take_along_axis(b, idx[..., None], axis=2)[..., 0]
    d = (v / F32(-8)).astype(np.float16)
    df = d.astype(F32)[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(df == 0, F32(8), rint_clip(b / df, -8, 7) + F32(8))
    return pack4(q), d, None


def quant_q4_1(x):
    b = x.reshape(x.shape[0], -1, 32)
    lo, hi = b.min(axis=2), b.max(axis=2)
    d = ((hi - lo) / F32(15)).astype(np.float16)
    m = lo.astype(np.float16)
    df, mf = d.astype(F32)[..., None], m.astype(F32)[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(df == 0, F32(0), rint_clip((b - mf) / df, 0, 15))
    return pack4(q), d, m


def unpack4(p, cols):
    b = p.reshape(p.shape[0], -1, 16)
    return np.concatenate([b & 15, b >> 4], axis=2).reshape(p.shape[0], cols).astype(F32)


def dequant(fmt, q, d, m, cols):
    ds = np.repeat(d.astype(F32), 32, axis=1)
    if fmt == "q8_0":
        return q.astype(F32) * ds
    u = unpack4(q, cols)
    if fmt == "q4_0":
        return (u - 8) * ds
    return u * ds + np.repeat(m.astype(F32), 32, axis=1)


QUANT = {"q8_0": quant_q8_0, "q4_0": quant_q4_0, "q4_1": quant_q4_1}


def recipe_format(name, shape, recipe):
    """The format dsv3 quantize gives a tensor (docs/QUANTIZATION.md), or None (BF16 / F32)."""
    if len(shape) != 2 or shape[1] % 32 or name.endswith("mlp.gate.weight"):
        return None
    if recipe in ("q8_0", "q4_0"):
        return recipe
    return "q4_1" if ".mlp." in name else "q8_0"


def main():
    src_dir, q_dir = sys.argv[1], sys.argv[2]
    src, qt = st.read_folder(src_dir), st.read_folder(q_dir)
    cfg = json.load(open(os.path.join(q_dir, "config.json")))
    qc = cfg["quantization_config"]
    assert qc["quant_method"] == "dsv3_blocks" and qc["block_size"] == 32, qc
    recipe = qc["fmt"]
    counts = {}
    for name, (dt, arr) in src.items():
        if name.endswith("_scale_inv"):
            continue
        x = to_f32(dt, arr)
        fmt = recipe_format(name, x.shape, recipe)
        if name.endswith("e_score_correction_bias"):
            assert qt[name][0] == "F32" and np.array_equal(qt[name][1], x), name
            continue
        if fmt is None:
            assert qt[name][0] == "BF16", (name, qt[name][0])
            assert np.array_equal(qt[name][1], bf16_bits(x)), name
            counts["bf16"] = counts.get("bf16", 0) + 1
            continue
        q, d, m = QUANT[fmt](x)
        want_dt = "I8" if fmt == "q8_0" else "U8"
        assert qt[name][0] == want_dt, (name, qt[name][0], want_dt)
        assert np.array_equal(qt[name][1], q), f"{name}: quants differ from the {fmt} definition"
        assert qt[name + "_scale"][0] == "F16", name
        assert np.array_equal(qt[name + "_scale"][1].view(np.uint16), d.view(np.uint16)), \
            f"{name}: scales differ"
        if m is not None:
            assert np.array_equal(qt[name + "_min"][1].view(np.uint16), m.view(np.uint16)), name
        else:
            assert name + "_min" not in qt, name
        # Error bound per value: |d| / 2 (q8_0, q4_1), |d| (q4_0: its grid stops at 7 d on the side
        # opposite the largest value), with a float32 slack.
        err = np.abs(dequant(fmt, q, d, m, x.shape[1]).astype(np.float64) - x)
        step = np.repeat(np.abs(d.astype(np.float64)), 32, axis=1)
        assert (err <= (1.0 if fmt == "q4_0" else 0.5) * step * (1 + 1e-6) + 1e-30).all(), name
        counts[fmt] = counts.get(fmt, 0) + 1
    print(f"quant_ref: {recipe}: {counts} tensors match the format definitions bit for bit")


def logits(dsv3, model, ids, out, *extra):
    subprocess.run([dsv3, "logits", "-m", model, "--ids", ids, "--out", out, "-t", "1", *extra],
                   check=True, stdout=subprocess.DEVNULL)
    return np.load(out).astype(np.float64)


def check_logits(dsv3, src_dir, q_dir, bound):
    ids = ",".join(str((7 * i * i + 3 * i + 1) % 200) for i in range(24))
    with tempfile.TemporaryDirectory() as tmp:
        ref = logits(dsv3, src_dir, ids, os.path.join(tmp, "src.npy"))
        q = logits(dsv3, q_dir, ids, os.path.join(tmp, "q.npy"))
        qd = logits(dsv3, q_dir, ids, os.path.join(tmp, "qd.npy"), "--decode")
    rel = np.abs(q - ref).max() / np.abs(ref).max()
    print(f"quant_ref: {q_dir}: max|dq - src| / max|src| = {rel:.3e} (bound {bound})")
    assert rel <= bound, f"logits of {q_dir} differ from {src_dir} by {rel:.3e} > {bound}"
    assert np.array_equal(q, qd), "the quantized model's decode differs from its prefill"


if __name__ == "__main__":
    if sys.argv[1] == "--logits":
        check_logits(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]))
    else:
        main()

#!/usr/bin/python3
"""Independent reference for the FP8 recipe's quantizer and FP8 checkpoints (SPEC §3.1, §3.2),
written from the format definitions in numpy float64; shares no code with dsv3. (Debian's torch
1.13 has no float8 dtypes, so E4M3 rounding is done here from its definition.)

  fp8_ref.py quantize DSV3 WORK    `dsv3 quantize --block 1x128` (f32 and ue8m0 scales) against
                                   this reference on crafted tensors: every one of the 256 E4M3
                                   codes, the ties between neighbours (to even) and one float32
                                   step either side, subnormals, +-inf (saturating to +-448), NaN,
                                   all-zero tiles (amax floor 1e-4), partial tiles, random rows
                                   over 12 decades: every code and every scale bit for bit; then
                                   the round trip within the E4M3 bound.
  fp8_ref.py checkpoint DSV3 WORK  `dsv3 init --preset tiny` (BF16) -> `dsv3 quantize --type fp8`:
                                   the official layout (exactly the Linear weights DeepSeek's
                                   release quantizes are F8_E4M3 with F32 NAME_scale_inv
                                   [ceil(r/128), ceil(c/128)], everything else BF16 or the F32
                                   gate bias, quantization_config, the other config values kept)
                                   and every weight within the E4M3 bound of the original.

E4M3 (OCP E4M3FN): bias 7, 3 mantissa bits, subnormals m * 2^-9, largest finite 448 (0x7E), 0x7F
NaN. The recipe (DeepSeek's act_quant): per 1x128 tile s = max(amax, 1e-4) / 448 in float32 (amax
over finite values), with ue8m0 s = 2^ceil(log2 s); q = nearest E4M3 of the float32 quotient x / s,
ties to the even code, saturating at +-448.
"""
import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np as st  # noqa: E402

POS = st.e4m3_table()[:127]  # codes 0..126: the non-negative finite values, increasing


def encode(y):
    """E4M3 codes of float64 values y (from float32), nearest, ties to the even code, saturating."""
    y = np.asarray(y, dtype=np.float64)
    a = np.abs(y)
    hi = np.searchsorted(POS, np.minimum(a, 448.0), side="left").clip(0, 126)  # POS[hi] >= a
    lo = (hi - 1).clip(0, 126)
    dlo, dhi = a - POS[lo], POS[hi] - a
    code = np.where(dlo < dhi, lo, np.where(dhi < dlo, hi, np.where(lo % 2 == 0, lo, hi)))
    code = np.where(a >= 448.0, 126, code)  # saturation (+-inf included)
    code = code.astype(np.uint8) | np.where(np.signbit(y), 0x80, 0).astype(np.uint8)
    return np.where(np.isnan(y), 0x7F, code).astype(np.uint8)


def tile_scale(amax, pow2):
    s = np.float32(max(np.float32(amax), np.float32(1e-4))) / np.float32(448.0)  # float32 division
    if pow2:
        m, e = math.frexp(float(s))  # s = m 2^e, m in [0.5, 1): 2^ceil(log2 s)
        s = np.float32(2.0 ** (e - 1 if m == 0.5 else e))
    return np.float32(s)


def quantize_1x128(x, pow2):
    """(codes uint8 [r, c], scales float32 [r, ceil(c/128)]) of float32 x."""
    r, c = x.shape
    tc = -(-c // 128)
    q = np.zeros((r, c), np.uint8)
    s = np.zeros((r, tc), np.float32)
    for i in range(r):
        for j in range(tc):
            t = x[i, j * 128:(j + 1) * 128]
            fin = np.abs(t[np.isfinite(t)])
            s[i, j] = tile_scale(fin.max() if fin.size else 0.0, pow2)
            y = (t / s[i, j]).astype(np.float32)  # the float32 quotient
            q[i, j * 128:(j + 1) * 128] = encode(y.astype(np.float64))
    return q, s


def crafted():
    """Tensors that exercise every code, tie and edge; s = 1 exactly where a row holds 448."""
    f32 = np.float32
    vals = POS.astype(np.float32)
    mids = ((POS[:-1] + POS[1:]) / 2).astype(np.float32)  # exact in float32 (5 significant bits)
    up = np.nextafter(mids, f32(np.inf))
    down = np.nextafter(mids, f32(0))
    edge = np.concatenate([vals, -vals, mids, -mids, up, down, -up,
                           np.float32([2.0 ** -10, 2.0 ** -11, 3 * 2.0 ** -11, 2.0 ** -30, 1e-40,
                                       np.inf, -np.inf, np.nan, -0.0])]).astype(np.float32)
    rows = []
    for k in range(0, len(edge), 127):  # 448 first in every row: the tile's scale is exactly 1
        row = np.zeros(128, np.float32)
        chunk = edge[k:k + 127]
        row[0] = 448.0
        row[1:1 + len(chunk)] = chunk
        rows.append(row)
    ties = np.stack(rows)
    rng = np.random.default_rng(0)
    mags = 10.0 ** rng.uniform(-8, 4, size=(64, 1))
    rand = (rng.standard_normal((64, 300)) * mags).astype(np.float32)
    rand[3] = 0.0  # all-zero row: the 1e-4 floor
    rand[5, :200] = 1e-7  # tiles far below the floor: subnormal codes
    rand[7, 150] = np.inf  # left out of amax, saturates
    return {"ties": ties, "random": rand}


def run(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.exit("command failed (%d): %s\n%s" % (r.returncode, " ".join(cmd), r.stderr[-3000:]))
    return r.stdout


def cmd_quantize(dsv3, work):
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    inputs = crafted()
    src = os.path.join(work, "in.safetensors")
    st.write_file(src, {k: ("F32", v) for k, v in inputs.items()})
    failures = 0
    for scale in ("f32", "ue8m0"):
        out = os.path.join(work, "out_%s.safetensors" % scale)
        run([dsv3, "quantize", "-m", src, "-o", out, "--type", "fp8", "--block", "1x128",
             "--scale", scale])
        got = st.read_file(out)
        for name, x in inputs.items():
            q, s = quantize_1x128(x, scale == "ue8m0")
            dt, gq = got[name]
            sdt, gs = got[name + "_scale_inv"]
            assert dt == "F8_E4M3" and sdt == "F32" and gs.shape == s.shape, (name, dt, sdt, gs.shape)
            bad = np.argwhere(gq != q)
            badc = int((gs.view(np.uint32) != s.view(np.uint32)).sum())
            print("%s %s: %d codes, %d differ; %d scales, %d differ" % (scale, name, q.size, len(bad),
                                                                        s.size, badc))
            for i, j in bad[:5]:
                print("  [%d,%d] x=%r: dsv3 0x%02x, reference 0x%02x" % (i, j, float(x[i, j]),
                                                                         gq[i, j], q[i, j]))
            failures += len(bad) + badc
            # Round trip: |x - q s| <= 2^-4 |x| (normal codes: half of 2^-3 relative) or 2^-10 s
            # (subnormal spacing 2^-9 s, half of it), for finite x.
            deq = st.e4m3_table()[gq] * np.repeat(gs.astype(np.float64), 128, axis=1)[:, :x.shape[1]]
            fin = np.isfinite(x)
            sfull = np.repeat(gs.astype(np.float64), 128, axis=1)[:, :x.shape[1]]
            err = np.abs(deq - x.astype(np.float64))[fin]
            bound = np.maximum(2.0 ** -4 * np.abs(x.astype(np.float64)), 2.0 ** -10 * sfull)[fin]
            worst = float((err / bound).max())
            print("  round trip: max error / bound %.4f" % worst)
            failures += int(worst > 1.0 + 1e-6)
    if failures:
        sys.exit("FAIL: %d mismatches" % failures)
    print("OK")


# The Linear weights of DeepSeek-V3's FP8 release (SPEC §3.2): attention and expert projections.
FP8_SUFFIXES = ("q_proj.weight", "q_a_proj.weight", "q_b_proj.weight", "kv_a_proj_with_mqa.weight",
                "kv_b_proj.weight", "o_proj.weight", "gate_proj.weight", "up_proj.weight",
                "down_proj.weight")


def official_fp8(name):
    return (name.startswith("model.layers.") and name.endswith(FP8_SUFFIXES)
            and ".eh_proj." not in name and ".shared_head." not in name)


def cmd_checkpoint(dsv3, work):
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    src, out = os.path.join(work, "tiny"), os.path.join(work, "tiny_fp8")
    run([dsv3, "init", "--preset", "tiny", "-o", src, "--seed", "1"])
    run([dsv3, "quantize", "-m", src, "-o", out, "--type", "fp8", "--force"])
    a, b = st.read_folder(src), st.read_folder(out)
    errors = []
    names = set(b) - {n for n in b if n.endswith("_scale_inv")}
    if names != set(a):
        errors.append("tensor names differ: %s" % sorted(names ^ set(a))[:5])
    n_fp8 = 0
    for name, (dt, arr) in sorted(a.items()):
        if name not in b:
            continue
        bdt, barr = b[name]
        x = st.to_f64(dt, arr)
        if official_fp8(name):
            n_fp8 += 1
            sc = name + "_scale_inv"
            want = (-(-arr.shape[0] // 128), -(-arr.shape[1] // 128))
            if bdt != "F8_E4M3" or sc not in b or b[sc][0] != "F32" or b[sc][1].shape != want:
                errors.append("%s: %s, scale %s (want F8_E4M3 + F32 %s)" % (
                    name, bdt, b[sc][:1] + (b[sc][1].shape,) if sc in b else None, want))
                continue
            s = np.repeat(np.repeat(b[sc][1].astype(np.float64), 128, 0), 128, 1)
            s = s[:arr.shape[0], :arr.shape[1]]
            deq = st.to_f64(bdt, barr) * s
            # E4M3 bound: half a normal spacing (2^-4 relative) or half the subnormal one (2^-10 s).
            err = np.abs(deq - x) / np.maximum(2.0 ** -4 * np.abs(x), 2.0 ** -10 * s)
            if err.max() > 1.0 + 1e-6:
                errors.append("%s: dequantized error %.3f x the E4M3 bound" % (name, err.max()))
        else:
            want = "F32" if name.endswith("e_score_correction_bias") else "BF16"
            if bdt != want or (name + "_scale_inv") in b:
                errors.append("%s: %s (want %s, no scale)" % (name, bdt, want))
            elif not np.array_equal(st.to_f64(bdt, barr), x):
                errors.append("%s: changed" % name)
    ca = json.load(open(os.path.join(src, "config.json")))
    cb = json.load(open(os.path.join(out, "config.json")))
    qc = cb.pop("quantization_config", None)
    if qc != {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
              "weight_block_size": [128, 128]}:
        errors.append("quantization_config: %r" % qc)
    if cb != ca:
        errors.append("config values changed: %s" % sorted(k for k in set(ca) | set(cb)
                                                             if ca.get(k) != cb.get(k)))
    print("%d tensors, %d quantized to E4M3" % (len(a), n_fp8))
    if errors or n_fp8 == 0:
        sys.exit("FAIL:\n  " + "\n  ".join(errors))
    print("OK")


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("quantize", "checkpoint"):
        sys.exit(__doc__)
    {"quantize": cmd_quantize, "checkpoint": cmd_checkpoint}[sys.argv[1]](sys.argv[2], sys.argv[3])


if __name__ == "__main__":
    main()

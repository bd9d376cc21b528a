"""dsv3 logits vs the float64 PyTorch reference (deepseek_ref.py) on a tiny random model.

  check_logits.py --dsv3 BIN --config CFG.json --work DIR [--fp8]

1. `dsv3 init --config CFG -o DIR/model --dtype f32` writes the folder (config, names, shapes).
2. Every tensor is redrawn here with scales that keep activations O(1) through the layers (the
   N(0, 0.006) training init makes attention near-uniform and logits tiny, which would hide
   errors): matrices N(0, 1/in), norm gains 1 + 0.1 N, biases 0.1 N, e_score_correction_bias 0.1 N
   (so it changes the routing). MTP copies of the embedding and head stay copies.
3. dsv3 logits runs as one prefill, token by token (--decode), with naive MLA (--naive) and --mtp.
4. Each is compared with the reference: max|dsv3 - ref| / max|ref| <= 1e-5.
   Why 1e-5: dsv3 computes in float32 with float32 accumulation over at most a few hundred terms
   per dot product; rounding gives relative errors of about sqrt(K) * 6e-8 per op, ~1e-6 at the
   logits after a few layers. A wrong formula (rope layout, scale, routing, norm) shows at 1e-2 or
   more, so 1e-5 separates the two with a 10x margin on each side.
With --fp8 the model's Linear weights are also quantised here to E4M3 with 128x128 scale_inv
(SPEC §3.2): dsv3 on the FP8 folder must give exactly the logits of dsv3 on a float32 folder of
the dequantised weights (both multiply the same float32 code value by the same float32 scale),
and match the reference on those dequantised weights to 1e-5.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np as st  # noqa: E402
from deepseek_ref import Reference  # noqa: E402

TOL = 1e-5
IDS = [3, 17, 0, 250, 42, 42, 99, 128, 7]


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("FAILED: %s\n%s%s" % (" ".join(cmd), r.stdout, r.stderr))
    return r.stdout


def redraw(tensors, cfg, seed):
    rng = np.random.default_rng(seed)
    out = {}
    L = cfg["num_hidden_layers"]
    for name in sorted(tensors):
        dt, arr = tensors[name]
        shape = arr.shape
        if name.endswith("norm.weight") or "layernorm" in name:
            v = 1.0 + 0.1 * rng.standard_normal(shape)
        elif name.endswith(".bias"):
            v = 0.1 * rng.standard_normal(shape)
        elif len(shape) == 2:
            v = rng.standard_normal(shape) / np.sqrt(shape[1])
        else:
            v = rng.standard_normal(shape)
        out[name] = ("F32", v.astype(np.float32))
    # The MTP layer's copies equal the tensors they copy (SPEC §6).
    p = "model.layers.%d." % L
    if p + "embed_tokens.weight" in out:
        out[p + "embed_tokens.weight"] = out["model.embed_tokens.weight"]
    if p + "shared_head.head.weight" in out:
        out[p + "shared_head.head.weight"] = out["lm_head.weight"]
    return out


def write_model(src_dir, dst_dir, tensors, config_update=None):
    os.makedirs(dst_dir, exist_ok=True)
    cfg = json.load(open(os.path.join(src_dir, "config.json")))
    if config_update:
        cfg.update(config_update)
    json.dump(cfg, open(os.path.join(dst_dir, "config.json"), "w"), indent=2)
    for f in os.listdir(src_dir):
        if f.endswith(".safetensors") or f.endswith(".index.json") or f == "config.json":
            continue
        shutil.copy(os.path.join(src_dir, f), dst_dir)
    st.write_file(os.path.join(dst_dir, "model.safetensors"), tensors)


FP8_SUFFIXES = ("q_a_proj.weight", "q_b_proj.weight", "q_proj.weight", "kv_a_proj_with_mqa.weight",
                "kv_b_proj.weight", "o_proj.weight", "gate_proj.weight", "up_proj.weight",
                "down_proj.weight")


def quantize(tensors):
    """FP8 release layout: Linear weights E4M3 + F32 weight_scale_inv; the rest unchanged."""
    q, deq = {}, {}
    for name, (dt, arr) in tensors.items():
        if name.endswith(FP8_SUFFIXES) and arr.ndim == 2:
            codes, scale = st.quantize_e4m3_128x128(arr)
            q[name] = ("F8_E4M3", codes)
            q[name + "_scale_inv"] = ("F32", scale)
            deq[name] = ("F32", st.dequantized_f64({"w": ("F8_E4M3", codes),
                                                    "w_scale_inv": ("F32", scale)})["w"]
                         .astype(np.float32))
        else:
            q[name] = deq[name] = (dt, arr)
    return q, deq


def rel_err(a, r):
    return float(np.abs(a - r).max() / np.abs(r).max())


def logits(dsv3, model, out, *flags):
    run([dsv3, "logits", "-m", model, "--ids", ",".join(map(str, IDS)), "--out", out, "-t", "2",
         *flags])
    return np.load(out)


def check_against(name, got, ref, failures, tol=TOL):
    e = rel_err(got, ref.numpy())
    print("%-28s max|dsv3-ref|/max|ref| = %.3g (tolerance %.0e)" % (name, e, tol))
    if not e <= tol:
        failures.append(name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsv3", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--fp8", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(1)
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    init_dir = os.path.join(a.work, "init")
    run([a.dsv3, "init", "--config", a.config, "-o", init_dir, "--dtype", "f32"])
    cfg = json.load(open(os.path.join(init_dir, "config.json")))
    tensors = redraw(st.read_folder(init_dir), cfg, seed=1)
    model = os.path.join(a.work, "model")
    write_model(init_dir, model, tensors)
    failures = []
    mla = cfg["model_type"].startswith("deepseek")
    mtp = mla and cfg.get("num_nextn_predict_layers", 0) > 0

    if a.fp8:
        fp8, deq = quantize(tensors)
        fp8_dir, deq_dir = os.path.join(a.work, "fp8"), os.path.join(a.work, "deq")
        qc = {"quantization_config": {"quant_method": "fp8", "fmt": "e4m3",
                                      "activation_scheme": "dynamic",
                                      "weight_block_size": [128, 128]}}
        write_model(init_dir, fp8_dir, fp8, qc)
        write_model(init_dir, deq_dir, deq)
        got_fp8 = logits(a.dsv3, fp8_dir, os.path.join(a.work, "fp8.npy"))
        got_deq = logits(a.dsv3, deq_dir, os.path.join(a.work, "deq.npy"))
        diff = float(np.abs(got_fp8 - got_deq).max())
        print("%-28s max|fp8 - dequantised| = %.3g (must be 0)" % ("fp8 vs dequantised f32", diff))
        if diff != 0.0:
            failures.append("fp8 vs dequantised")
        ref = Reference(cfg, st.dequantized_f64(st.read_folder(fp8_dir)))
        with torch.no_grad():
            ref_logits, _ = ref.forward(IDS)
        check_against("fp8 prefill", got_fp8, ref_logits, failures)
    else:
        ref = Reference(cfg, st.dequantized_f64(st.read_folder(model)))
        with torch.no_grad():
            ref_logits, ref_hidden = ref.forward(IDS)
            ref_mtp = ref.mtp(ref_hidden, IDS) if mtp else None
        out = os.path.join(a.work, "logits.npy")
        mtp_flag = ["--mtp"] if mtp else []
        check_against("prefill", logits(a.dsv3, model, out, *mtp_flag), ref_logits, failures)
        if mtp:
            check_against("prefill mtp", np.load(out[:-4] + ".mtp.npy"), ref_mtp, failures)
        check_against("decode", logits(a.dsv3, model, out, "--decode", *mtp_flag), ref_logits,
                      failures)
        if mtp:
            check_against("decode mtp", np.load(out[:-4] + ".mtp.npy"), ref_mtp, failures)
        if mla:
            check_against("naive prefill", logits(a.dsv3, model, out, "--naive"), ref_logits,
                          failures)
    if failures:
        sys.exit("FAILED: " + ", ".join(failures))
    print("OK")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""dsv3's backward pass and trainer against the float64 PyTorch reference (tests/ref/train_ref.py,
written independently from SPEC §1-§2, §5).

  torch_check.py CASE DSV3 SOURCE_DIR WORK_DIR

grad        `dsv3 grad` and `train_ref.py grad` on the same window of the tiny preset (MTP lambda
            0.3, sequence-wise balance alpha 1e-4, expert-level aux alpha 1e-3): every parameter's
            gradient within 1e-5 relative (||dsv3 - ref|| / ||ref||, FP32 against float64) and the
            loss parts within 1e-6.
fp8grad     `dsv3 grad --precision fp8` (tile, then --fp8-scaling tensor) against `train_ref.py grad
            --fp8` (tests/ref/fp8_torch.py: the recipe fake-quantized in float64) on a tiny-preset
            window initialised in F32 (BF16 embeddings with unit norm gains put many float32
            quotients x / s exactly on E4M3 ties, where a one-ulp difference in an activation
            picks the other code). Where float32 and float64 activations round a quotient to
            different codes, one element moves by one E4M3 step, so dsv3 and the emulation cannot
            agree to FP32 precision. Per tensor, r = ||dsv3 - emulation|| / ||exact float64 -
            emulation|| (how far dsv3 is from the emulation against how far FP8 moves the
            gradient); bounded: the loss within 1e-6, the median r under 0.01 and every r under
            0.8. Measured: median r 5e-5 and worst 0.23 (Intel, AMX), 0.54 (AMD EPYC, AVX512-BF16)
            and 0.43 (DSV3_KERNELS=ref), the worst always a layer-0 tensor, which every flipped
            code downstream reaches; since attention's backward reads o_proj's E5M6 cache (one
            more rounding whose float32 and float64 inputs can straddle a tie) median 2.2e-4,
            worst 0.56 (AMD EPYC), and the dsv3 before that change against this emulation:
            median 2.7e-2 (fails); with one GEMM left out of FP8 (dsv3 grad --fp8-gemms) the
            median r is 0.43 (Wgrad), 0.46 (Dgrad), 1.0 (Fprop), and a tensor whose own GEMMs are
            wrong sits near 1 - so a GEMM left out or quantized with another tiling fails. With
            --fp8-scaling tensor only the loss is bounded (1e-6; measured 6e-8): one scale for a
            whole tensor means an activation whose float32 and float64 amax differ by an ulp
            moves every quotient of the tensor, and the backward's codes then differ widely
            (test_model's Linear.Fp8RecipeTilesEachGemm checks the per-tensor GEMMs one by one).
trajectory  20 steps of `dsv3 train` (lr 1e-3, FP32 moments, warmup 5, cosine decay from step 10 over 10
            steps, clip 1.0, weight decay 0.1, gamma 1e-3, MTP and balance losses) from a tiny
            model; the reference replays the same batches (--dump-batches): the loss within 1e-4
            relative at every step (measured: 1.1e-5). The gradient norm is not bounded: a routing
            choice whose score margin is near float32 rounding flips at some step between float32
            and float64 and moves that step's norm by up to ~3e-3 (the loss barely).
"""
import os
import random
import shutil
import subprocess
import sys


def run(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    print(r.stdout[-3000:])
    if r.returncode != 0:
        sys.exit("command failed (%d): %s\n%s" % (r.returncode, " ".join(cmd), r.stderr[-3000:]))
    return r


def fp8_grad(dsv3, ref, work):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ref"))
    import numpy as np
    import safetensors_np as st

    model = os.path.join(work, "tiny32")
    run([dsv3, "init", "--preset", "tiny", "-o", model, "--seed", "0", "--dtype", "f32"])
    rng = random.Random(3)
    ids = ",".join(str(rng.randrange(4096)) for _ in range(33))
    ropts = ["--model", model, "--ids", ids, "--lambda", "0.3", "--alpha", "1e-4", "--aux-alpha", "1e-3"]
    dopts = ["-m", model, "--ids", ids, "--mtp-lambda", "0.3", "--balance-alpha", "1e-4",
             "--aux-alpha", "1e-3", "--precision", "fp8"]

    def load(name):
        return {n: st.to_f64(dt, v) for n, (dt, v) in st.read_file(os.path.join(work, name)).items()}

    run(ref + ["grad", "--out", os.path.join(work, "ref64.st")] + ropts)
    exact = load("ref64.st")
    failures = []
    for scaling in ("tile", "tensor"):
        run([dsv3, "grad", "--fp8-scaling", scaling, "--out", os.path.join(work, "dsv3_%s.st" % scaling)]
            + dopts)
        run(ref + ["grad", "--fp8", scaling, "--out", os.path.join(work, "ref_%s.st" % scaling)] + ropts)
        run(ref + ["compare-grad", os.path.join(work, "ref_%s.st" % scaling),
                   os.path.join(work, "dsv3_%s.st" % scaling), "--rtol", "1", "--loss-rtol", "1e-6"])
        if scaling == "tensor":
            continue
        got, emu = load("dsv3_%s.st" % scaling), load("ref_%s.st" % scaling)
        ratios = []
        for n, e in emu.items():
            d, fp8_effect = np.linalg.norm(got[n] - e), np.linalg.norm(exact[n] - e)
            if fp8_effect > 0:
                ratios.append((d / fp8_effect, n))
        med, worst = float(np.median([r for r, _ in ratios])), max(ratios)
        print("fp8 %s: distance to the emulation / FP8's distance from exact over %d tensors: "
              "median %.2e, worst %.3f (%s)" % (scaling, len(ratios), med, worst[0], worst[1]))
        if med > 0.01 or worst[0] > 0.8:
            failures.append(scaling)
    if failures:
        sys.exit("FAIL: " + ", ".join(failures))


def main():
    case, dsv3, src, work = sys.argv[1:5]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    ref = [sys.executable, os.path.join(src, "tests", "ref", "train_ref.py")]
    model = os.path.join(work, "tiny")
    run([dsv3, "init", "--preset", "tiny", "-o", model, "--seed", "0"])
    if case == "grad":
        rng = random.Random(3)
        ids = ",".join(str(rng.randrange(4096)) for _ in range(33))
        opts = ["--mtp-lambda", "0.3", "--balance-alpha", "1e-4", "--aux-alpha", "1e-3"]
        run([dsv3, "grad", "-m", model, "--ids", ids, "--out", os.path.join(work, "dsv3.st")] + opts)
        run(ref + ["grad", "--model", model, "--ids", ids, "--lambda", "0.3", "--alpha", "1e-4",
                   "--aux-alpha", "1e-3", "--out", os.path.join(work, "ref.st")])
        run(ref + ["compare-grad", os.path.join(work, "ref.st"), os.path.join(work, "dsv3.st"),
                   "--rtol", "1e-5", "--loss-rtol", "1e-6"])
    elif case == "fp8grad":
        fp8_grad(dsv3, ref, work)
    elif case == "trajectory":
        # A fixed text (the pinned corpus's validation split, scripts/fetch-assets.sh): the
        # tolerance holds for this input, and editing the docs must not change the test.
        text = os.path.join(src, ".cache", "corpus", "valid.txt")
        if not os.path.exists(text):
            sys.exit(text + " is missing: run scripts/fetch-assets.sh")
        data = os.path.join(work, "data")
        run([dsv3, "data", "prepare", "--tokenizer", model, "--input", text, "-o", data])
        hp = ["--lr", "1e-3", "--warmup", "5", "--decay-start", "10", "--decay-steps", "10",
              "--final-lr", "1e-4", "--clip", "1.0", "--weight-decay", "0.1", "--gamma", "1e-3"]
        out = os.path.join(work, "run")
        batches = os.path.join(work, "batches.npy")
        run([dsv3, "train", "--init", model, "--data", data, "-o", out, "--steps", "20",
             "--seq-len", "32", "--batch", "4", "--moments", "f32", "--val-every", "0",
             "--dump-batches", batches, "-t", "2"] + hp)
        run(ref + ["train", "--model", model, "--batches", batches, "--out",
                   os.path.join(work, "ref.jsonl"), "-q"] + hp)
        run(ref + ["compare-train", os.path.join(work, "ref.jsonl"),
                   os.path.join(out, "metrics.jsonl"), "--rtol", "1e-4", "--fields", "loss"])
    else:
        sys.exit("unknown case " + case)
    shutil.rmtree(work)  # passed: a failure keeps the runs to look at; CI's disk is small


if __name__ == "__main__":
    main()

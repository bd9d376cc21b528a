#!/usr/bin/python3
"""Data parallel over MPI (issue 18) against one process, each a run of dsv3 itself.

  dp_check.py CASE DSV3 SOURCE_DIR WORK_DIR MPIEXEC

ranks2, ranks4  `mpirun -np D dsv3 train --dp D` and one process `dsv3 train --dp D` (the same
                global batch of --accum 4 micro-batches, its D parts summed in the same order):
                every metrics line (loss, its parts, grad norm, MaxVio) and the final
                model.safetensors and optimizer.safetensors (the ZeRO-1 shards gathered) equal bit
                for bit. Against the plain one-process run (--dp 1: one accumulation, summed in
                another order) the losses agree within 1e-4 relative over the 3 steps: the parts'
                float sums are re-associated, ~1e-7 relative per step, and lr 3e-3 on random
                weights amplifies that (measured 6e-6 at step 3).
resume          a 4-rank run checkpointed at step 2 and resumed by one process (--dp 4) and by 2
                ranks (--dp 2) ends where a straight run of the same parts does, bit for bit: the
                checkpoint is one Hugging Face folder with the whole optimizer state, whatever
                the number of ranks that wrote or reads it.
refuse          mpirun -np 2 with --dp 4, --accum 3 with --dp 2, --ep 3 with --dp 2, --ep 2
                without mpirun and --node-limit without --ep fail with a message (exit 1).

Expert parallel inside data parallel (`mpirun -np 4 dsv3 train --dp 4 --ep E`: groups of E ranks
share the 16 routed experts, E_r/E each) against one process `--dp 4` (the same parts):
ep2, ep4        step 1's loss, CE, MTP, balance loss and MaxVio equal bit for bit (the forward of
                a token does not depend on where its experts run, and the loads are integers);
                the gradient norm within 1e-9 relative and the later losses within 1e-4 relative;
                the weights within 1 - 2Σxy/Σ(x²+y²) < 1e-8 after step 2 and < 1e-6 after step 3.
                Not bit for bit: an expert's weight gradient is one GEMM over the E ranks' rows
                where one process sums each rank's rows and then the ranks (float reassociation,
                ~1e-7 relative per element), and AdamW turns the sign noise of near-zero gradients
                into whole lr-sized steps (measured 2.0e-10 and 1.6e-9 at E = 2, 2.4e-10 and
                1.3e-9 at E = 4; the same reassociation in plain DP, one process --dp 1 against
                --dp 2, reaches 1.7e-7 at step 3). Rank 0 reports holding 1/E of the experts.
ep_fp8          --ep 2 --ep-dispatch fp8 (V3's payloads: E4M3 dispatch, BF16 combine) against the
                FP32-payload run: step 1's loss within 2^-9 relative (E4M3 moves a value by at
                most 2^-4 relative, the MoE share of the loss reaches it squared at most, see
                tests/dist/ep_check.cc; measured ~1e-5), and rank 0's MoE bytes between 0.25 and
                0.5 of FP32's: token rows towards the experts take d + ceil(d/128) bytes instead
                of 4d (0.252), slot rows back 2d instead of 4d (0.5), and the 12 bytes of words a
                slot (index, weight, its gradient) are the same in both.
ep_node_limit   --ep 4 --node-limit 1 (node-limited routing: a token's experts on 1 of the 4 ranks)
                writes n_group 4, topk_group 1 into its checkpoints' config.json, and a resume of
                its step-2 checkpoint in one process (no --ep, no --node-limit: the config
                routes) gives step 3's forward metrics bit for bit. The rule itself is checked
                against torch in tests/unit/model/test_router.cc.
ep_resume       a run at --ep 2 checkpointed at step 2 (one Hugging Face folder, every expert)
                resumes at --ep 2 bit for bit where the straight run ends, and at --ep 4 and in one
                process with step 3's forward metrics bit for bit those of the straight run (the
                checkpoint holds the weights exactly) and its weights within the bound above.
                All with --ema 0.9: the EMA file (the whole model's, gathered from the experts'
                owners) resumes at --ep 2 bit for bit too.
"""
import array
import json
import os
import re
import shutil
import struct
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train"))
import train_check  # noqa: E402  (prepare: token data from the source tree's docs)

ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_btl="self,vader,tcp")
KEYS = ("step", "loss", "ce", "mtp_loss", "balance_loss", "grad_norm", "lr", "maxvio")
FORWARD = ("step", "loss", "ce", "mtp_loss", "balance_loss", "lr", "maxvio")


def run(cmd, ok=True):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                       timeout=240)
    if ok and r.returncode != 0:
        sys.exit("command failed (%d): %s\n%s%s" % (r.returncode, " ".join(cmd), r.stdout,
                                                     r.stderr))
    return r


class Runs:
    def __init__(self, dsv3, src, work, mpiexec):
        self.dsv3, self.work, self.mpiexec = dsv3, work, mpiexec
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        self.data = train_check.prepare(dsv3, src, work)

    def args(self, out, steps, dp, *extra):
        # One thread per process: attention's backward sums its blocks in an order that depends
        # on the thread count (train_check.py threads), and the ranks share 2 cores anyway.
        return [self.dsv3, "train", "--preset", "tiny", "--data", self.data, "-o",
                os.path.join(self.work, out), "--steps", str(steps), "--seq-len", "32",
                "--batch", "2", "--accum", "4", "--dp", str(dp), "--val-every", "0",
                "--ckpt-every", "2", "--seed", "7", "--lr", "3e-3", "--warmup", "1",
                "-t", "1"] + list(extra)

    def one(self, out, steps, dp, *extra):
        return run(self.args(out, steps, dp, *extra))

    def mpi(self, n, out, steps, dp, *extra, ok=True):
        return run([self.mpiexec, "--oversubscribe", "-np", str(n)] +
                   self.args(out, steps, dp, *extra), ok)

    def metrics(self, out):
        with open(os.path.join(self.work, out, "metrics.jsonl")) as f:
            return [json.loads(l) for l in f if l.strip()]

    def file(self, out, step, name):
        p = os.path.join(self.work, out, "checkpoints", "step-%08d" % step, name)
        with open(p, "rb") as f:
            return f.read()


def same_runs(r, a, b, step):
    ma, mb = r.metrics(a), r.metrics(b)
    if len(ma) != len(mb):
        sys.exit("%s: %d metrics lines, %s: %d" % (a, len(ma), b, len(mb)))
    for x, y in zip(ma, mb):
        for k in KEYS:
            if x.get(k) != y.get(k):
                sys.exit("step %s: %s differs between %s and %s: %r vs %r" %
                         (x["step"], k, a, b, x.get(k), y.get(k)))
    for name in checkpoint_files(r, a, step):
        if r.file(a, step, name) != r.file(b, step, name):
            sys.exit("%s at step %d differs between %s and %s" % (name, step, a, b))


def checkpoint_files(r, out, step):
    """The state files of a checkpoint: weights, AdamW state, and the EMA when the run keeps one."""
    ema = os.path.exists(os.path.join(r.work, out, "checkpoints", "step-%08d" % step,
                                      "ema.safetensors"))
    return ("model.safetensors", "optimizer.safetensors") + (("ema.safetensors",) if ema else ())


def tensors(path):
    """A safetensors file of F32 tensors as {name: array('f')}."""
    with open(path, "rb") as f:
        b = f.read()
    n = struct.unpack("<Q", b[:8])[0]
    header, out = json.loads(b[8:8 + n]), {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] == "F32", name
        lo, hi = t["data_offsets"]
        out[name] = array.array("f", b[8 + n + lo:8 + n + hi])
    return out


def weights_error(r, a, b, step):
    """1 - 2Σxy/Σ(x²+y²) over every tensor of the two runs' model.safetensors at step."""
    name = os.path.join("checkpoints", "step-%08d" % step, "model.safetensors")
    x, y = tensors(os.path.join(r.work, a, name)), tensors(os.path.join(r.work, b, name))
    if sorted(x) != sorted(y):
        sys.exit("%s and %s hold different tensors at step %d" % (a, b, step))
    xy = xx = 0.0
    for k in x:
        for u, v in zip(x[k], y[k]):
            xy += u * v
            xx += u * u + v * v
    return 1 - 2 * xy / xx


def close_runs(r, a, b, first_exact):
    """Forward metrics bit for bit at step first_exact, the rest within the stated bounds."""
    for x, y in zip(r.metrics(a), r.metrics(b)):
        keys = FORWARD if x["step"] == first_exact else ("step",)
        for k in keys:
            if x.get(k) != y.get(k):
                sys.exit("step %s: %s differs between %s and %s: %r vs %r" %
                         (x["step"], k, a, b, x.get(k), y.get(k)))
        g = abs(x["grad_norm"] - y["grad_norm"]) / y["grad_norm"]
        loss = abs(x["loss"] - y["loss"]) / abs(y["loss"])
        if (x["step"] == first_exact and g > 1e-9) or loss > 1e-4:
            sys.exit("step %d: %s vs %s: grad norm %.2e, loss %.2e relative apart" %
                     (x["step"], a, b, g, loss))


def case_ep(r, e):
    res = r.mpi(4, "ep", 3, 4, "--ep", str(e))
    r.one("one", 3, 4)
    close_runs(r, "ep", "one", 1)
    err2, err3 = weights_error(r, "ep", "one", 2), weights_error(r, "ep", "one", 3)
    if err2 > 1e-8 or err3 > 1e-6:
        sys.exit("weights: 1 - 2Σxy/Σ(x²+y²) = %.2e after step 2, %.2e after step 3" %
                 (err2, err3))
    held = re.search(r"holds ([0-9.]+)M of the ([0-9.]+)M parameters \(routed experts (\d+) of "
                     r"(\d+)", res.stderr)
    if not held or int(held.group(3)) * e != int(held.group(4)):
        sys.exit("rank 0 does not report holding 1/%d of the experts:\n%s" % (e, res.stderr))
    print("ep%d: 4 ranks --ep %d vs one process: step 1 forward bit for bit, weights within "
          "%.1e (step 2), %.1e (step 3); rank 0 holds %sM of %sM parameters" %
          (e, e, err2, err3, held.group(1), held.group(2)))


def moe_mb(res):
    m = re.search(r"([0-9.]+) MB MoE all-to-all", res.stderr)
    if not m:
        sys.exit("no MoE traffic line:\n" + res.stderr)
    return float(m.group(1))


def case_ep_fp8(r):
    f32 = r.mpi(4, "f32", 1, 4, "--ep", "2")
    fp8 = r.mpi(4, "fp8", 1, 4, "--ep", "2", "--ep-dispatch", "fp8")
    a, b = r.metrics("fp8")[0]["loss"], r.metrics("f32")[0]["loss"]
    rel, ratio = abs(a - b) / abs(b), moe_mb(fp8) / moe_mb(f32)
    if not 0 < rel <= 2 ** -9 or not 0.25 < ratio < 0.5:
        sys.exit("fp8 dispatch: step 1 loss %.3e relative from FP32's, MoE bytes %.3f of FP32's"
                 % (rel, ratio))
    print("ep_fp8: step 1 loss %.2e relative from FP32 dispatch; MoE bytes %.3f of FP32's"
          % (rel, ratio))


def case_ep_node_limit(r):
    r.mpi(4, "limited", 3, 4, "--ep", "4", "--node-limit", "1")
    shutil.copytree(os.path.join(r.work, "limited"), os.path.join(r.work, "one_limited"),
                    symlinks=True)
    shutil.rmtree(os.path.join(r.work, "one_limited", "checkpoints", "step-%08d" % 3))
    with open(os.path.join(r.work, "one_limited", "checkpoints", "step-%08d" % 2,
                           "config.json")) as f:
        cfg = json.load(f)
    if (cfg["n_group"], cfg["topk_group"]) != (4, 1):
        sys.exit("checkpoint config: n_group %r, topk_group %r; expected 4, 1" %
                 (cfg["n_group"], cfg["topk_group"]))
    r.one("one_limited", 3, 4, "--resume")
    close_runs(r, "one_limited", "limited", 3)
    print("ep_node_limit: n_group 4, topk_group 1 in the checkpoint; one process resumes with "
          "step 3's forward bit for bit")


def case_ep_resume(r):
    # The straight run's own step-2 checkpoint is the one resumed (its step-3 one removed).
    ema = ("--ema", "0.9")
    r.mpi(4, "straight", 3, 4, "--ep", "2", *ema)
    for copy in ("split", "split_e4", "split_one"):
        shutil.copytree(os.path.join(r.work, "straight"), os.path.join(r.work, copy),
                        symlinks=True)
        shutil.rmtree(os.path.join(r.work, copy, "checkpoints", "step-%08d" % 3))
    r.mpi(4, "split", 3, 4, "--ep", "2", "--resume", *ema)
    r.mpi(4, "split_e4", 3, 4, "--ep", "4", "--resume", *ema)
    r.one("split_one", 3, 4, "--resume", *ema)
    same_runs(r, "split", "straight", 3)
    worst = 0.0
    for other in ("split_e4", "split_one"):
        close_runs(r, other, "straight", 3)
        worst = max(worst, weights_error(r, other, "straight", 3))
    if worst > 1e-6:
        sys.exit("resumed across E: weights 1 - 2Σxy/Σ(x²+y²) = %.2e" % worst)
    print("ep_resume: --ep 2 checkpoint resumed at --ep 2 bit for bit, at --ep 4 and in one "
          "process with step 3's forward bit for bit (weights within %.1e)" % worst)


def case_ranks(r, d):
    # 4 ranks reduce in buckets started during the backward (--overlap-reduce on), 2 after it.
    r.mpi(d, "mpi", 3, d, "--overlap-reduce", "on" if d == 4 else "off")
    r.one("one", 3, d)
    r.one("plain", 3, 1)
    same_runs(r, "mpi", "one", 3)
    worst = 0.0
    for x, y in zip(r.metrics("mpi"), r.metrics("plain")):
        rel = abs(x["loss"] - y["loss"]) / abs(y["loss"])
        worst = max(worst, rel)
        if rel > 1e-4:
            sys.exit("step %d: loss %r over %d ranks vs %r in one accumulation (%.2e relative)"
                     % (x["step"], x["loss"], d, y["loss"], rel))
    print("ranks%d: %d ranks == one process --dp %d bit for bit (metrics, weights, AdamW state);"
          " vs --dp 1 within %.1e relative" % (d, d, d, worst))


def case_resume(r):
    # Straight: parts of 4 for steps 1-2, then parts of 2 (one process) / of 4 (one process).
    r.one("straight4", 3, 4)
    r.one("mixed", 2, 4)
    r.one("mixed", 3, 2, "--resume")
    r.mpi(4, "split", 2, 4)
    shutil.copytree(os.path.join(r.work, "split"), os.path.join(r.work, "split_b"),
                    symlinks=True)
    r.one("split", 3, 4, "--resume")        # 4 ranks -> 1 process
    r.mpi(2, "split_b", 3, 2, "--resume")   # 4 ranks -> 2 ranks
    same_runs(r, "split", "straight4", 3)
    same_runs(r, "split_b", "mixed", 3)
    print("resume: a 4-rank checkpoint resumed by 1 process and by 2 ranks, bit for bit")


def case_refuse(r):
    for cmd, want in (
            (lambda: r.mpi(2, "bad1", 1, 4, ok=False), "2 MPI processes but --dp 4"),
            (lambda: run(r.args("bad2", 1, 2)[:-2] + ["--accum", "3", "-t", "1"], ok=False),
             "does not split into --dp 2"),
            (lambda: r.mpi(2, "bad3", 1, 2, "--ep", "3", ok=False), "--ep 3 does not divide"),
            (lambda: run(r.args("bad4", 1, 2, "--ep", "2"), ok=False), "--ep 2 needs MPI"),
            (lambda: run(r.args("bad5", 1, 2, "--node-limit", "1"), ok=False),
             "--node-limit needs --ep")):
        expect_refusal(cmd(), want)
    print("refuse: a rank count that is not --dp, an --accum that does not split and an --ep "
          "that does not divide --dp or lacks ranks are errors")


def expect_refusal(res, want):
    """A command that must fail with a message naming `want`."""
    out = res.stdout + res.stderr
    if res.returncode == 0 or want not in out:
        sys.exit("expected a failure naming %r, got exit %d:\n%s" % (want, res.returncode, out))


def main():
    case, dsv3, src, work, mpiexec = sys.argv[1:6]
    r = Runs(dsv3, src, work, mpiexec)
    if case == "ranks2":
        case_ranks(r, 2)
    elif case == "ranks4":
        case_ranks(r, 4)
    elif case == "resume":
        case_resume(r)
    elif case in ("ep2", "ep4"):
        case_ep(r, int(case[2]))
    elif case == "ep_fp8":
        case_ep_fp8(r)
    elif case == "ep_node_limit":
        case_ep_node_limit(r)
    elif case == "ep_resume":
        case_ep_resume(r)
    elif case == "refuse":
        case_refuse(r)
    else:
        sys.exit("unknown case " + case)
    shutil.rmtree(work)  # passed: the runs' checkpoints are a few hundred MB


if __name__ == "__main__":
    main()

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
refuse          mpirun -np 2 with --dp 4 and --accum 3 with --dp 2 fail with a message (exit 1).
"""
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train"))
import train_check  # noqa: E402  (prepare: token data from the source tree's docs)

ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_btl="self,vader,tcp")
KEYS = ("step", "loss", "ce", "mtp_loss", "balance_loss", "grad_norm", "lr", "maxvio")


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
    for name in ("model.safetensors", "optimizer.safetensors"):
        if r.file(a, step, name) != r.file(b, step, name):
            sys.exit("%s at step %d differs between %s and %s" % (name, step, a, b))


def case_ranks(r, d):
    r.mpi(d, "mpi", 3, d)
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
             "does not split into --dp 2")):
        res = cmd()
        out = res.stdout + res.stderr
        if res.returncode == 0 or want not in out:
            sys.exit("expected a failure naming %r, got exit %d:\n%s" % (want, res.returncode,
                                                                        out))
    print("refuse: a rank count that is not --dp and an --accum that does not split are errors")


def main():
    case, dsv3, src, work, mpiexec = sys.argv[1:6]
    r = Runs(dsv3, src, work, mpiexec)
    if case == "ranks2":
        case_ranks(r, 2)
    elif case == "ranks4":
        case_ranks(r, 4)
    elif case == "resume":
        case_resume(r)
    elif case == "refuse":
        case_refuse(r)
    else:
        sys.exit("unknown case " + case)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""The pipeline runner over MPI (issue 18, SPEC §4) against one process, each a run of dsv3 itself.

  pp_check.py CASE DSV3 SOURCE_DIR WORK_DIR MPIEXEC

The model is tests/dist/pp_config.json (8 layers, hidden 64, MTP, MoE from layer 1): enough
layers for DualPipe over 8 ranks and DualPipeV over 4 (8 stages), small enough for 8 ranks on 2
cores. FP32 GEMMs, FP32 AdamW moments, one thread a rank, 20 micro-batches of one 8-token window.

dualpipe2/4/8, dualpipev2/3/4, 1f1b4, dp2_dualpipe2, dp2_dualpipev2
    `mpirun -np N dsv3 train --pp N --pipeline S` (dpD_: `-np D*N --dp D --pp N`, D pipelines
    of 20/D micro-batches) for 2 steps against one process with `--dp D` (`--dp 2D` for
    DualPipe: its two directions are two parts, summed in that order):
    every metrics line (loss and its parts, grad norm, MaxVio) and the checkpoints after each step
    (model.safetensors, optimizer.safetensors) equal bit for bit. The gradients: AdamW's first
    moment after step 1 is (1 - beta1) x the clipped gradient, so 1 - 2Σxy/Σ(x²+y²) over it
    compares the gradients, bound 1e-13 (the DualPipe repository's test); bit-equal gives 0.
    Each rank reports holding only its stages' tensors (the layers of SPEC §4's layout, the
    embedding and head with the first and last stage), a pipeline the model once.
    Each rank's executed ops (RUN_DIR/pipeline.json) are its program, F&B pairs as F then B, and
    the micro-batches of each phase's F and B run in order; DualPipe runs C/2 of each of F0, F1,
    B0, B1 per rank (C: a pipeline's micro-batches).
ep2_1f1b2, ep2_dualpipe2, ep2_dualpipev2
    expert parallelism inside the pipelines: `mpirun -np 2D dsv3 train --dp D --ep 2 --pp 2
    --pipeline S` (the ranks of a position in two consecutive pipelines share the routed experts,
    4 of the 8 each) with D = 4 (D = 2 for DualPipe, whose partners hold the same stages), so
    that 2 ranks hold each expert and reduce its gradient, for 3 steps against the same pipelines
    without --ep (leaving the experts' reduction out fails): step 1's forward metrics bit for
    bit (the all-to-all moves rows exactly), and the weights within 1 - 2Σxy/Σ(x²+y²) < 1e-8 after
    step 2 and < 1e-6 after step 3 (an expert's weight gradient is one GEMM over both pipelines'
    rows where the reduction adds the pipelines' sums: dp_check.py's ep bound and reason). Each
    rank reports holding its stages and 4 of 8 experts a layer. One process resuming the step-2
    checkpoint (one HF folder) runs step 3's forward bit for bit.
1f1b4_cost, dualpipev2_cost
    the same with --pp-split cost (stages balanced by the cost model, the head's stage lighter):
    bit for bit with one process, the stages covering the model once, the first stage holding
    more layers than the last.
fp8_recompute
    DualPipe over 4 ranks with --precision fp8 --recompute, bit for bit as above.
overlap_dualpipe4, overlap_dualpipev2
    --overlap-fb on (each F&B pair's F and B at once on two threads): bit for bit with one
    process as above, every rank's executed ops its program with each F&B as one overlapped pair
    ("F0.3&B1.2"), the report's pair time set.
overlap_ep2_dualpipe2
    --overlap-fb on with --dp 2 --ep 2 --pp 2 (the pair's F and B each run all-to-alls, the B's
    through a communicator of their own, under MPI_THREAD_MULTIPLE): 2 steps bit for bit with
    the same run without --overlap-fb (metrics and checkpoints).
resume
    a DualPipeV run over 2 ranks checkpointed at step 1, resumed over 3 ranks and by one process,
    ends bit for bit where the straight one-process run ends: one HF folder whatever the layout.
    With --ema 0.9 throughout: the EMA file (the whole model's, gathered from the stages' owners)
    equal too.
refuse
    --pp without mpirun, dualpipe over an odd rank count, more stages than layers, a rank count
    that is not --dp x --pp, --overlap-fb with 1F1B: each fails with a message.
"""
import array
import json
import os
import re
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dp_check  # noqa: E402  (the runs, their environment and the bit-for-bit comparison)

run = dp_check.run
C = 20  # micro-batches per step


class Runs(dp_check.Runs):
    def __init__(self, dsv3, src, work, mpiexec):
        super().__init__(dsv3, src, work, mpiexec)
        self.model = os.path.join(work, "model")
        run([dsv3, "init", "--config", os.path.join(src, "tests", "dist", "pp_config.json"),
             "-o", self.model, "--dtype", "f32", "--seed", "3", "--tokenizer",
             os.path.join(src, "assets", "tokenizers", "dsv3-en-4k")])

    def args(self, out, steps, dp, *extra):
        return [self.dsv3, "train", "--init", self.model, "--data", self.data, "-o",
                os.path.join(self.work, out), "--steps", str(steps), "--seq-len", "8",
                "--batch", "1", "--accum", str(C), "--dp", str(dp), "--val-every", "0",
                "--ckpt-every", "1", "--keep", "3", "--moments", "f32", "--seed", "7", "--lr",
                "3e-3", "--warmup", "1", "-t", "1"] + list(extra)


def same_runs(r, a, b, steps):
    dp_check.same_runs(r, a, b, steps[-1])
    for step in steps[:-1]:
        for name in dp_check.checkpoint_files(r, a, step):
            if r.file(a, step, name) != r.file(b, step, name):
                sys.exit("%s at step %d differs between %s and %s" % (name, step, a, b))


def exp_avg(blob):
    """The first moment of an optimizer.safetensors (F32), as floats."""
    n = int.from_bytes(blob[:8], "little")
    t = json.loads(blob[8:8 + n])["exp_avg"]
    assert t["dtype"] == "F32"
    lo, hi = t["data_offsets"]
    return array.array("f", blob[8 + n + lo:8 + n + hi])


def grad_distance(r, a, b):
    x, y = exp_avg(r.file(a, 1, "optimizer.safetensors")), exp_avg(r.file(b, 1,
                                                                           "optimizer.safetensors"))
    sxy = sum(float(p) * float(q) for p, q in zip(x, y))
    sxx = sum(float(p) * float(p) for p in x) + sum(float(q) * float(q) for q in y)
    return 1 - 2 * sxy / sxx


def expand(program):
    """SPEC §4 notation to single ops: F&B pairs as the F then the B."""
    out = []
    for op in program.split():
        out.extend(op.split("&") if "&" in op else [op])
    return [o if o[0] == "W" or o[0] == "F" else o[:2] + ("z" if o.endswith("z") else "")
            for o in out]


def check_programs(r, out, n, schedule, c):
    with open(os.path.join(r.work, out, "pipeline.json")) as f:
        ranks = json.load(f)
    if len(ranks) != n:
        sys.exit("pipeline.json: %d ranks, expected %d" % (len(ranks), n))
    for rank in ranks:
        ex = rank["executed"].replace("&", " ").split()
        ops = [o.split(".")[0] for o in ex]
        want = expand(rank["program"])
        # The program's B and the executed B name the same phase; F&B's B is "B<phase>".
        if ops != want:
            sys.exit("rank %d executed %s\nits program is %s" % (rank["rank"], " ".join(ops),
                                                                  " ".join(want)))
        seen = {}
        for o in ex:
            if o == "W":
                continue
            key, mb = o[0] + o[1], int(o.split(".")[1])
            seen.setdefault(key, []).append(mb)
        for key, mbs in seen.items():
            if mbs != list(range(mbs[0], mbs[0] + len(mbs))):
                sys.exit("rank %d: %s ran micro-batches %s out of order" % (rank["rank"], key,
                                                                           mbs))
            if schedule == "dualpipe" and len(mbs) != c // 2:
                sys.exit("rank %d: %d %s ops, expected C/2 = %d" % (rank["rank"], len(mbs), key,
                                                                   c // 2))
        if rank["idle_s"] < 0 or rank["busy_s"] <= 0:
            sys.exit("rank %d: busy %r idle %r" % (rank["rank"], rank["busy_s"], rank["idle_s"]))


def held_stages(schedule, n, rank, layers=8):
    """The start-up report's text for what a rank holds, from SPEC §4's layouts written out again:
    DualPipe rank r holds stages r and n-1-r, DualPipeV r and 2n-1-r, 1F1B r; stages of
    consecutive layers, the first layers % S one layer more; the embedding with stage 0 (and with
    the last under 1F1B, whose MTP module embeds), the head and MTP module with the last."""
    S = 2 * n if schedule == "dualpipev" else n
    stages = sorted({rank, n - 1 - rank} if schedule == "dualpipe" else
                    {rank, 2 * n - 1 - rank} if schedule == "dualpipev" else {rank})
    base, extra = divmod(layers, S)
    first = lambda s: s * base + min(s, extra)
    text = "layers " + ", ".join("%d-%d" % (first(s), first(s + 1) - 1) for s in stages)
    if 0 in stages or (schedule == "1f1b" and S - 1 in stages):
        text += ", the embedding"
    if S - 1 in stages:
        text += ", the final norm, head and MTP module"
    return text


def check_holdings(log, schedule, n, d):
    """Every rank reports holding its stages only; one pipeline's ranks hold the model once
    (DualPipe: each tensor on the two partners; 1F1B: the embedding on the last rank too)."""
    held = {int(m[0]): (m[1], float(m[2]), float(m[3])) for m in re.findall(
        r"rank (\d+) holds (.*?): ([\d.]+)M of the ([\d.]+)M parameters", log)}
    if sorted(held) != list(range(d * n)):
        sys.exit("the start-up report names ranks %s, not 0..%d" % (sorted(held), d * n - 1))
    for rank, (text, _, _) in held.items():
        want = held_stages(schedule, n, rank % n)
        if text != want:
            sys.exit("rank %d holds %r, expected %r" % (rank, text, want))
    total = sum(held[r][1] for r in range(n)) / (2 if schedule == "dualpipe" else 1)
    whole = held[0][2]
    # The report rounds to 0.01M; 1F1B's last rank holds the embedding a second time.
    if schedule != "1f1b" and abs(total - whole) > 0.01 * n:
        sys.exit("a pipeline's ranks hold %.2fM parameters, the model %.2fM" % (total, whole))


def check_cost_split(log, n, layers=8):
    """--pp-split cost over one pipeline (1F1B, DualPipeV): the ranks' layers cover the model once,
    in consecutive stages, and the stage with the head (the last layer) holds fewer layers than
    the first stage: the split moved layers away from the head."""
    stages = []
    for m in re.findall(r"rank \d+ holds layers ([\d, -]+?)(?:, the|:)", log):
        stages += [tuple(int(x) for x in part.split("-")) for part in m.split(", ")]
    stages.sort()
    if [a for a, _ in stages] != [0] + [b + 1 for _, b in stages[:-1]] or stages[-1][1] != layers - 1:
        sys.exit("the stages %s do not cover layers 0-%d once:\n%s" % (stages, layers - 1, log))
    first, last = stages[0][1] - stages[0][0] + 1, stages[-1][1] - stages[-1][0] + 1
    if not last < first:
        sys.exit("the cost split gave the last stage %d layers, the first %d" % (last, first))
    return stages


def case_schedule(r, schedule, n, d, cost=False):
    extra = ("--pp-split", "cost") if cost else ()
    out = r.mpi(d * n, "pp", 2, d, "--pp", str(n), "--pipeline", schedule, *extra)
    if cost:
        stages = check_cost_split(out.stderr, n)
    else:
        check_holdings(out.stderr, schedule, n, d)
    r.one("one", 2, 2 * d if schedule == "dualpipe" else d)
    same_runs(r, "pp", "one", (1, 2))
    dist = grad_distance(r, "pp", "one")
    if dist >= 1e-13:
        sys.exit("gradients: 1 - 2Σxy/Σ(x²+y²) = %.3e >= 1e-13" % dist)
    check_programs(r, "pp", d * n, schedule, C // d)
    print("%d x %s over %d ranks, %d micro-batches%s: == one process bit for bit (metrics, "
          "weights, AdamW state; gradient distance %.1e); every rank ran its program" %
          (d, schedule, n, C, ", stages %s by cost" % stages if cost else "", dist))


def case_ep(r, schedule, n):
    d = 2 if schedule == "dualpipe" else 4
    layout = ("--pp", str(n), "--pipeline", schedule)
    out = r.mpi(d * n, "epp", 3, d, "--ep", "2", *layout)
    r.mpi(d * n, "pp", 3, d, *layout)
    dp_check.close_runs(r, "epp", "pp", 1)
    err2, err3 = dp_check.weights_error(r, "epp", "pp", 2), dp_check.weights_error(r, "epp", "pp",
                                                                                   3)
    if err2 > 1e-8 or err3 > 1e-6:
        sys.exit("weights: 1 - 2Σxy/Σ(x²+y²) = %.2e after step 2, %.2e after step 3" %
                 (err2, err3))
    held = re.findall(r"rank (\d+) holds layers .*\(routed experts (\d+) of (\d+) a layer\)",
                      out.stderr)
    if sorted(int(h[0]) for h in held) != list(range(d * n)) or any(
            2 * int(h[1]) != int(h[2]) for h in held):
        sys.exit("not every rank reports holding half of the experts:\n" + out.stderr)
    shutil.copytree(os.path.join(r.work, "epp"), os.path.join(r.work, "one"), symlinks=True)
    shutil.rmtree(os.path.join(r.work, "one", "checkpoints", "step-%08d" % 3))
    r.one("one", 3, 4, "--resume")  # D pipelines' parts (DualPipe: 2 directions each)
    dp_check.close_runs(r, "one", "epp", 3)
    print("%d pipelines, ep2 x %s over %d stages: step 1 forward bit for bit with the pipelines without --ep, "
          "weights within %.1e (step 2), %.1e (step 3); each rank holds half of the experts; one "
          "process resumes step 3 bit for bit" % (d, schedule, n, err2, err3))


def check_pairs(r, out, overlapped):
    with open(os.path.join(r.work, out, "pipeline.json")) as f:
        ranks = json.load(f)
    for rank in ranks:
        pairs = [o for o in rank["executed"].split() if "&" in o]
        want = [o for o in rank["program"].split() if "&" in o]
        if rank["overlap_fb"] != overlapped or len(pairs) != (len(want) if overlapped else 0) or (
                overlapped and rank["op_s"]["FB"] <= 0):
            sys.exit("rank %d: overlap_fb %r, %d overlapped pairs of the program's %d, pair time "
                     "%r" % (rank["rank"], rank["overlap_fb"], len(pairs), len(want),
                             rank["op_s"]["FB"]))
    return sum(len([o for o in rank["executed"].split() if "&" in o]) for rank in ranks)


def case_overlap(r, schedule, n):
    on = ("--overlap-fb", "on")
    r.mpi(n, "pp", 2, 1, "--pp", str(n), "--pipeline", schedule, *on)
    r.one("one", 2, 2 if schedule == "dualpipe" else 1)
    same_runs(r, "pp", "one", (1, 2))
    check_programs(r, "pp", n, schedule, C)
    pairs = check_pairs(r, "pp", True)
    print("overlap: %s over %d ranks with --overlap-fb on (%d F&B pairs a step overlapped) == "
          "one process bit for bit" % (schedule, n, pairs))


def case_overlap_ep(r):
    layout = ("--ep", "2", "--pp", "2", "--pipeline", "dualpipe")
    r.mpi(4, "on", 2, 2, *layout, "--overlap-fb", "on")
    r.mpi(4, "off", 2, 2, *layout)
    same_runs(r, "on", "off", (1, 2))
    pairs = check_pairs(r, "on", True)
    check_pairs(r, "off", False)
    print("overlap_ep2: --dp 2 --ep 2 --pp 2 dualpipe with --overlap-fb on (%d F&B pairs a step, "
          "each F and B running all-to-alls at once) == off, bit for bit" % pairs)


def case_fp8_recompute(r):
    # The B/W split copies each Linear's input for its W: the FP8 recipe's quantization and the
    # recomputed activations must see the same values there as in one process.
    extra = ("--precision", "fp8", "--recompute")
    r.mpi(4, "pp", 2, 1, "--pp", "4", "--pipeline", "dualpipe", *extra)
    r.one("one", 2, 2, *extra)
    same_runs(r, "pp", "one", (1, 2))
    print("fp8_recompute: DualPipe over 4 ranks with the FP8 recipe and recomputation == one "
          "process bit for bit")


def case_resume(r):
    ema = ("--ema", "0.9")
    r.one("straight", 2, 1, *ema)
    r.mpi(2, "split", 1, 1, "--pp", "2", "--pipeline", "dualpipev", *ema)
    shutil.copytree(os.path.join(r.work, "split"), os.path.join(r.work, "split_b"),
                    symlinks=True)
    r.mpi(3, "split", 2, 1, "--pp", "3", "--pipeline", "dualpipev", "--resume", *ema)
    r.one("split_b", 2, 1, "--resume", *ema)
    same_runs(r, "split", "straight", (2,))
    same_runs(r, "split_b", "straight", (2,))
    print("resume: a 2-rank DualPipeV checkpoint resumed over 3 ranks and by one process, bit "
          "for bit (weights, AdamW state, EMA)")


def case_refuse(r):
    for args, n, want in (
            (("bad1", 1, 1, "--pp", "3"), 4, "4 MPI processes but --dp 1 x --pp 3"),
            (("bad2", 1, 1, "--pp", "2"), 0, "needs MPI ranks"),
            (("bad3", 1, 1, "--pp", "3", "--pipeline", "dualpipe"), 3, "even number of ranks"),
            (("bad4", 1, 1, "--pp", "5", "--pipeline", "dualpipev"), 5,
             "at least one layer per stage"),
            (("bad5", 1, 1, "--pp", "2", "--pipeline", "1f1b", "--overlap-fb", "on"), 2,
             "needs a pipeline with F&B pairs")):
        dp_check.expect_refusal(r.mpi(n, *args, ok=False) if n else run(r.args(*args), ok=False),
                                want)
    print("refuse: --pp without mpirun, odd dualpipe, too few layers, a wrong rank count, "
          "--overlap-fb without F&B pairs are errors")


def main():
    case, dsv3, src, work, mpiexec = sys.argv[1:6]
    r = Runs(dsv3, src, work, mpiexec)
    d, name = (int(case[2:case.index("_")]), case[case.index("_") + 1:]) if case.startswith(
        "dp") else (1, case)
    cost = name.endswith("_cost")
    name = name[:-len("_cost")] if cost else name
    for schedule in ("dualpipev", "dualpipe", "1f1b"):
        if name.startswith(schedule) and name[len(schedule):].isdigit():
            return case_schedule(r, schedule, int(name[len(schedule):]), d, cost)
        if name.startswith("ep2_" + schedule) and name[len(schedule) + 4:].isdigit():
            return case_ep(r, schedule, int(name[len(schedule) + 4:]))
    if name.startswith("overlap_dualpipe"):
        schedule = "dualpipev" if name.startswith("overlap_dualpipev") else "dualpipe"
        return case_overlap(r, schedule, int(name[len("overlap_") + len(schedule):]))
    cases = {"resume": case_resume, "refuse": case_refuse, "fp8_recompute": case_fp8_recompute,
             "overlap_ep2_dualpipe2": case_overlap_ep}
    if case not in cases:
        sys.exit("unknown case " + case)
    cases[case](r)


if __name__ == "__main__":
    main()
    shutil.rmtree(sys.argv[4])  # passed: a failure keeps the runs to look at; CI's disk is small

#!/usr/bin/python3
"""CLI checks of dsv3 data and dsv3 eval, each result recomputed here by other means.

  data_check.py CASE DSV3 SOURCE_DIR WORK_DIR

prepare    builds WORK_DIR/{train,valid}.txt from the source tree's docs, a tiny model, and
           WORK_DIR/data with `dsv3 data prepare` (-t 2; again with -t 1: the same bytes); then
           reads the shards with numpy: headers, sizes, FNV-1a 64 checksums, and the tokens equal
           to `dsv3 tokenize --no-bos` of each document followed by EOS.
eval_data  `dsv3 eval --data` on the first val windows against cross-entropy computed with numpy
           from `dsv3 logits --out` of the same windows read from the shard (and a random model's
           loss near ln(vocab)).
eval_file  the same for `dsv3 eval --file`, the ids from `dsv3 tokenize`.
damaged    a corrupt and a truncated shard, data from a larger tokenizer, a non-empty -o: each
           refused with exit code 1 and a message naming the problem.
corpus     `dsv3 data corpus` copies the cached corpus (skipped, exit 77, without
           .cache/corpus/); without node on PATH it names the packages to install.
"""
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys

import numpy as np

SEQ = 64


def run(cmd, ok=True, env=None):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if ok and r.returncode != 0:
        sys.exit("command failed (%d): %s\n%s%s" % (r.returncode, " ".join(cmd), r.stdout,
                                                     r.stderr))
    return r


def expect_fail(cmd, *patterns, env=None):
    r = run(cmd, ok=False, env=env)
    out = r.stdout + r.stderr
    print(out)
    if r.returncode != 1:
        sys.exit("expected exit code 1, got %d: %s" % (r.returncode, " ".join(cmd)))
    for p in patterns:
        if not re.search(p, out):
            sys.exit("output does not match %r" % p)


def fnv1a64(data):
    # Vectorised FNV-1a 64 is not possible (each step depends on the last); bytes are few here.
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def read_shard(path, vocab):
    raw = open(path, "rb").read()
    assert raw[:8] == b"DSV3TOK\0", path
    version, v, n, checksum = struct.unpack("<IIQQ", raw[8:32])
    assert version == 1 and v == vocab, (version, v)
    assert len(raw) == 32 + 4 * n, (path, len(raw), n)
    assert fnv1a64(raw[32:]) == checksum, path + ": checksum"
    return np.frombuffer(raw[32:], dtype="<u4").astype(np.int64), checksum


def read_split(data_dir, split):
    meta = json.load(open(os.path.join(data_dir, "meta.json")))
    parts = []
    for s in meta[split]["shards"]:
        t, checksum = read_shard(os.path.join(data_dir, s["file"]), meta["vocab_size"])
        assert len(t) == s["tokens"] and "%016x" % checksum == s["fnv1a64"]
        parts.append(t)
    return meta, np.concatenate(parts) if parts else np.zeros(0, np.int64)


def documents(path):
    # The corpus layout: each document followed by a line holding only U+001E.
    text = open(path, encoding="utf-8").read()
    return [d for d in text.split("\n\x1e\n") if d.strip("\n")]


def tokenize(dsv3, tok, text, work):
    p = os.path.join(work, "doc-%d.txt" % os.getpid())  # cases share `work` and run in parallel
    with open(p, "w", encoding="utf-8") as f:
        f.write(text)
    out = run([dsv3, "tokenize", "-m", tok, "--file", p, "--no-bos"]).stdout.split()
    return [int(x) for x in out]


def cross_entropy(dsv3, model, window, work):
    """Mean -log softmax over the window's first SEQ rows, from `dsv3 logits` (float64)."""
    out = os.path.join(work, "window-%d.npy" % os.getpid())  # cases share `work` (ctest -j)
    run([dsv3, "logits", "-m", model, "--ids", ",".join(map(str, window[:-1])), "--out", out])
    logits = np.load(out).astype(np.float64)
    m = logits.max(axis=1, keepdims=True)
    lse = (m[:, 0] + np.log(np.exp(logits - m).sum(axis=1)))
    return lse - logits[np.arange(len(window) - 1), np.asarray(window[1:])]


def eval_json(dsv3, args):
    line = run([dsv3, "eval"] + args + ["--json", "-t", "2"]).stdout.strip().splitlines()[-1]
    return json.loads(line)


def case_prepare(dsv3, src, work):
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    docs = [open(os.path.join(src, "docs", f), encoding="utf-8").read()
            for f in sorted(os.listdir(os.path.join(src, "docs"))) if f.endswith(".md")]
    paras = [p for d in docs for p in d.split("\n\n") if p.strip()]
    with open(os.path.join(work, "train.txt"), "w", encoding="utf-8") as f:
        f.write("".join(p + "\n\x1e\n" for p in paras))
    with open(os.path.join(work, "valid.txt"), "w", encoding="utf-8") as f:
        f.write(open(os.path.join(src, "README.md"), encoding="utf-8").read().strip("\n") +
                "\n\x1e\n")
    tok = os.path.join(src, "assets/tokenizers/dsv3-en-4k")
    run([dsv3, "init", "--preset", "tiny", "-o", os.path.join(work, "tiny"), "--seed", "3",
         "--dtype", "f32", "--force"])
    base = [dsv3, "data", "prepare", "--tokenizer", tok, "--input", os.path.join(work, "train.txt"),
            "--valid", os.path.join(work, "valid.txt")]
    r = run(base + ["-o", os.path.join(work, "data"), "-t", "2"])
    print(r.stdout + r.stderr)
    run(base + ["-o", os.path.join(work, "data_t1"), "-t", "1", "--shard-tokens", "1000"])
    run(base + ["-o", os.path.join(work, "data_t2"), "-t", "2", "--shard-tokens", "1000"])
    for f in os.listdir(os.path.join(work, "data_t1")):
        a = open(os.path.join(work, "data_t1", f), "rb").read()
        b = open(os.path.join(work, "data_t2", f), "rb").read()
        assert a == b, f + " differs between -t 1 and -t 2"

    for split, path in (("train", "train.txt"), ("val", "valid.txt")):
        meta, tokens = read_split(os.path.join(work, "data"), split)
        _, small = read_split(os.path.join(work, "data_t1"), split)
        assert np.array_equal(tokens, small), split + ": 1000-token shards hold another stream"
        docs = documents(os.path.join(work, path))
        eos = meta["eos_id"]
        # A document that spells the EOS token encodes to it (reported by prepare).
        added = json.load(open(os.path.join(tok, "tokenizer.json")))["added_tokens"]
        spelled = sum(d.count(next(t["content"] for t in added if t["id"] == eos)) for d in docs)
        assert meta[split]["documents"] == len(docs), split
        assert int((tokens == eos).sum()) == len(docs) + spelled, split
        assert meta["special_tokens_in_text"] >= spelled
        assert (meta["special_tokens_in_text"] > 0) == ("spells special tokens" in r.stderr)
        want = []
        # Every document of val, the first 20 of train (each is one dsv3 tokenize call).
        for d in docs[:20]:
            want += tokenize(dsv3, tok, d, work) + [eos]
        assert tokens[:len(want)].tolist() == want, split + ": tokens differ from dsv3 tokenize"
        print("%s: %d documents, %d tokens, checksums and ids checked" % (split, len(docs),
                                                                        len(tokens)))


def case_eval_data(dsv3, src, work):
    model = os.path.join(work, "tiny")
    r = eval_json(dsv3, ["-m", model, "--data", os.path.join(work, "data"), "--seq-len", str(SEQ),
                         "--max-windows", "3"])
    _, val = read_split(os.path.join(work, "data"), "val")
    losses = [cross_entropy(dsv3, model, val[i * SEQ:i * SEQ + SEQ + 1].tolist(), work)
              for i in range(3)]
    ref = float(np.concatenate(losses).mean())
    print("eval %.6f, numpy from dsv3 logits %.6f, ln(4096) %.4f" % (r["loss"], ref,
                                                                    math.log(4096)))
    assert r["windows"] == 3 and r["tokens"] == 3 * SEQ and r["split_tokens"] == len(val), r
    assert abs(r["loss"] - ref) < 1e-4, "eval's loss disagrees with the reference"
    assert abs(r["perplexity"] - math.exp(r["loss"])) < 1e-6 * r["perplexity"]
    assert abs(r["loss"] - math.log(4096)) < 0.3, "a random model should be near ln(vocab)"
    out = run([dsv3, "eval", "-m", model, "--data", os.path.join(work, "data"), "-t", "2"]).stdout
    print(out)
    assert re.search(r"loss [0-9.]+ nats/token, perplexity [0-9.]+", out)


def case_eval_file(dsv3, src, work):
    model = os.path.join(work, "tiny")
    text = "It was the best of times, it was the worst of times.\n\x1e\nCall me Ishmael. " * 3
    path = os.path.join(work, "file.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    r = eval_json(dsv3, ["-m", model, "--file", path, "--seq-len", "16"])
    meta = json.load(open(os.path.join(work, "data", "meta.json")))
    ids = []
    for d in [d for d in text.split("\n\x1e\n") if d]:
        ids += tokenize(dsv3, model, d, work) + [meta["eos_id"]]
    n = (len(ids) - 1) // 16
    losses = [cross_entropy(dsv3, model, ids[i * 16:i * 16 + 17], work) for i in range(n)]
    ref = float(np.concatenate(losses).mean())
    print("eval --file %.6f over %d windows, numpy %.6f" % (r["loss"], n, ref))
    assert r["split_tokens"] == len(ids) and r["windows"] == n, (r, len(ids))
    assert abs(r["loss"] - ref) < 1e-4


def flip(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x40]))


def case_damaged(dsv3, src, work):
    model = os.path.join(work, "tiny")
    bad = os.path.join(work, "bad")
    shutil.rmtree(bad, ignore_errors=True)
    shutil.copytree(os.path.join(work, "data"), bad)
    flip(os.path.join(bad, "train-00000.bin"), 32 + 4 * 100 + 1)
    expect_fail([dsv3, "eval", "-m", model, "--data", bad], r"train-00000\.bin is corrupt")
    shutil.rmtree(bad)
    shutil.copytree(os.path.join(work, "data"), bad)
    val = os.path.join(bad, "val-00000.bin")
    os.truncate(val, os.path.getsize(val) - 6)
    expect_fail([dsv3, "eval", "-m", model, "--data", bad], r"val-00000\.bin is truncated")
    # Tokens of a 16k tokenizer given to a 4k model.
    big = os.path.join(work, "data16k")
    run([dsv3, "data", "prepare", "--tokenizer", os.path.join(src, "assets/tokenizers/dsv3-en-16k"),
         "--input", os.path.join(work, "train.txt"), "-o", big, "--force"])
    expect_fail([dsv3, "eval", "-m", model, "--data", big],
                r"holds token id [0-9]+ .* the model's vocabulary has 4096 ids")
    expect_fail([dsv3, "data", "prepare", "--tokenizer", model, "--input",
                 os.path.join(work, "train.txt"), "-o", os.path.join(work, "data")],
                r"data is not empty", r"--force")
    expect_fail([dsv3, "eval", "-m", model, "--data", os.path.join(work, "data"), "--seq-len",
                 "100000"], r"longer than the model's context")
    expect_fail([dsv3, "data", "prepare", "--tokenizer", model, "--input",
                 os.path.join(work, "missing.txt"), "-o", os.path.join(work, "never")],
                r"missing\.txt")


def case_corpus(dsv3, src, work):
    os.makedirs(work, exist_ok=True)
    empty = os.path.join(work, "empty_cache")
    shutil.rmtree(empty, ignore_errors=True)
    expect_fail([dsv3, "data", "corpus", "--cache", empty, "-o", os.path.join(work, "never.txt")],
                r"'node' is not on PATH", r"apt-get install nodejs npm",
                env=dict(os.environ, PATH="/nonexistent"))
    cache = os.path.join(src, ".cache/corpus")
    if not all(os.path.exists(os.path.join(cache, f)) for f in ("train.txt", "valid.txt")):
        print("no %s/{train,valid}.txt (scripts/fetch-corpus.sh): skipped" % cache)
        sys.exit(77)
    t, v = os.path.join(work, "corpus_train.txt"), os.path.join(work, "corpus_valid.txt")
    for f in (t, v):
        if os.path.exists(f):
            os.remove(f)
    print(run([dsv3, "data", "corpus", "-o", t, "--valid", v]).stdout)
    for mine, theirs in ((t, "train.txt"), (v, "valid.txt")):
        assert open(mine, "rb").read() == open(os.path.join(cache, theirs), "rb").read()
    expect_fail([dsv3, "data", "corpus", "-o", t], r"already exists", r"--force")


if __name__ == "__main__":
    case, dsv3, src, work = sys.argv[1:5]
    globals()["case_" + case](dsv3, src, work)
    print("ok")

#!/usr/bin/env python3
"""CLI checks of `dsv3 generate` on a tiny random model (tests/generation.cmake).

usage: generate_check.py DSV3 MODEL_DIR (greedy | seed | stop)

greedy: greedy generation equals the argmax chain of `dsv3 logits` over prompt + generated ids,
        and the streamed text is the detokenized ids (strict UTF-8).
seed:   the same seed gives the same tokens and text; another seed gives other tokens.
stop:   a stop string that spans a token boundary cuts the text exactly before it.
reasoning: with --chat on an R1-style template (the prompt ends inside <think>), the reasoning is
        marked with <think> tags off a terminal (</think> only where the model wrote it; a note
        when -n cut the reasoning), dimmed (ANSI SGR 2) on one, and left out with
        --hide-reasoning (a note when that hides everything).
interrupt: Ctrl-C on a terminal stops an endless generation; the figures still follow, exit code 130.
interrupt_write: a SIGINT that lands while the output is blocked (a full pipe) stops the generation
        the same way, and the interrupted write goes on: nothing written is lost, no write error.
"""
import fcntl
import json
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time

import numpy as np

PROMPT = "The model of the"
REF = {**os.environ, "DSV3_KERNELS": "ref"}  # the reference kernel table in every command


def generate(dsv3, model, *flags, env=None):
    p = subprocess.run([dsv3, "generate", "-m", model, "-p", PROMPT, "-v", "-t", "1", *flags],
                       capture_output=True, check=True, env=env)
    text = p.stdout.decode("utf-8")  # strict: a split character fails here
    assert text.endswith("\n"), "generate ends its output with a newline"
    err = p.stderr.decode("utf-8")
    ids = {}
    for line in err.splitlines():
        for key in ("prompt ids", "generated ids"):
            if line.startswith(key + ":"):
                ids[key] = [int(x) for x in line.split(":", 1)[1].split()]
    return text[:-1], ids["prompt ids"], ids["generated ids"], err


def detokenize(dsv3, model, ids):
    if not ids:
        return ""
    p = subprocess.run([dsv3, "detokenize", "-m", model, "--skip-special", "--ids",
                        ",".join(map(str, ids))], capture_output=True, check=True)
    return p.stdout.decode("utf-8")


def detokenize_special(dsv3, model, ids):
    """The text of ids with the special tokens (<think>, </think>) spelled out."""
    if not ids:
        return ""
    p = subprocess.run([dsv3, "detokenize", "-m", model, "--ids", ",".join(map(str, ids))],
                       capture_output=True, check=True)
    return p.stdout.decode("utf-8", "replace")


def tokenizer_vocab(model):
    with open(os.path.join(model, "tokenizer.json")) as f:
        t = json.load(f)
    ids = list(t["model"]["vocab"].values()) + [a["id"] for a in t.get("added_tokens", [])]
    return max(ids) + 1


def argmax_chain_check(dsv3, model, env, near_tie):
    """Greedy generate vs the argmax of dsv3 logits (reference kernels) at every step. A step may
    differ only where the two best logits are within near_tie of each other."""
    text, prompt, gen, _ = generate(dsv3, model, "-n", "16", "--greedy", "--ignore-eos", env=env)
    assert len(gen) == 16, gen
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "logits.npy")
        ids = prompt + gen[:-1]
        subprocess.run([dsv3, "logits", "-m", model, "--ids", ",".join(map(str, ids)), "--out",
                        out], check=True, capture_output=True, env=REF)
        logits = np.load(out)
    # generate never samples the embedding's padding rows past the tokenizer's vocabulary.
    rows = logits[len(prompt) - 1:, :tokenizer_vocab(model)]
    for i, g in enumerate(gen):
        c = int(rows[i].argmax())
        if g == c:
            continue
        top2 = np.sort(rows[i])[-2:]
        assert top2[1] - top2[0] < near_tie and rows[i][g] == top2[0], (
            f"step {i}: generate chose {g}, the argmax of dsv3 logits is {c} (top two {top2})")
        return text, gen  # the chains part here; what follows depends on the choice
    want = detokenize(dsv3, model, gen)
    assert text == want, f"streamed {text!r}, detokenized {want!r}"
    return text, gen


def check_greedy(dsv3, model):
    # The same kernels in both commands: the chains must agree exactly.
    argmax_chain_check(dsv3, model, REF, near_tie=0.0)
    # dsv3's default kernels (AVX-512 where the CPU has it) against the reference logits: float32
    # sums in another order move logits of magnitude ~1 by ~1e-5, so only a near tie may differ.
    argmax_chain_check(dsv3, model, None, near_tie=1e-3)
    print("greedy: 16 tokens equal the argmax chain of dsv3 logits (reference and default kernels)")


def check_seed(dsv3, model):
    flags = ["-n", "24", "--temp", "1", "--top-k", "0", "--top-p", "1", "--min-p", "0",
             "--ignore-eos"]
    a = generate(dsv3, model, *flags, "--seed", "11")
    b = generate(dsv3, model, *flags, "--seed", "11")
    c = generate(dsv3, model, *flags, "--seed", "12")
    assert a[2] == b[2] and a[0] == b[0], "the same seed gave different tokens"
    assert "seed 11" in a[3], "the statistics name the seed"
    assert a[2] != c[2], "seeds 11 and 12 gave the same 24 tokens"
    print("seed: same seed same text; another seed other tokens")


def check_stop(dsv3, model):
    text, _, gen, _ = generate(dsv3, model, "-n", "24", "--greedy", "--ignore-eos")
    # Character offsets where one token's text ends and the next begins.
    bounds = []
    for j in range(1, len(gen)):
        head = detokenize(dsv3, model, gen[:j])
        if text.startswith(head) and 2 <= len(head) <= len(text) - 3:
            bounds.append(len(head))
    for b in bounds[len(bounds) // 2:] + bounds[:len(bounds) // 2]:
        stop = text[b - 2:b + 3]  # 2 characters of one token, 3 of the next
        if text.find(stop) == b - 2 and stop.strip() and "\ufffd" not in stop:
            break
    else:
        raise AssertionError(f"no stop string spanning a token boundary in {text!r}")
    cut, _, _, err = generate(dsv3, model, "-n", "24", "--greedy", "--ignore-eos", "--stop",
                              "no such text", "--stop", stop)
    assert cut == text[:b - 2], f"stop {stop!r}: got {cut!r}, want {text[:b - 2]!r}"
    assert "stop: stop string" in err, err
    print(f"stop: {stop!r} across a token boundary cut the text at character {b - 2}")


def check_reasoning(dsv3, model):
    flags = ["--chat", "-n", "12", "--greedy", "--ignore-eos"]
    shown, _, gen, err = generate(dsv3, model, *flags)
    assert "loading [" not in err, "no progress bar off a terminal"
    # A </think> appears only where the model wrote one: output cut by -n inside the reasoning
    # ends there, and a note on stderr says so.
    closed = "</think>" in detokenize_special(dsv3, model, gen)
    assert shown.startswith("<think>") and ("</think>" in shown) == closed, shown
    if not closed:
        assert "ended inside the reasoning: the model wrote no </think>" in err, err
    hidden, _, gen2, err2 = generate(dsv3, model, *flags, "--hide-reasoning")
    assert gen2 == gen
    want = re.sub(r"<think>.*?(</think>|$)", "", shown, flags=re.S)
    assert hidden == want, f"--hide-reasoning printed {hidden!r}, want {want!r}"
    if not want:  # everything was reasoning: hidden, and said so
        assert "--hide-reasoning hid everything generated" in err2, err2
    # On a terminal: the reasoning is dimmed and no tag is printed.
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(dsv3, [dsv3, "generate", "-m", model, "-p", PROMPT, "-t", "1", *flags])
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert b"\x1b[2m" in out and b"\x1b[22m" in out, out
    assert b"<think>" not in out, out
    # Loading draws a progress bar on a terminal and reports the time taken.
    assert re.search(rb"loading \[#+\] 100%", out) and re.search(rb"loaded .* in [0-9.]+ s", out)
    print("reasoning: tagged off a terminal, dimmed on one, hidden with --hide-reasoning")


def run_in_pty(argv, on_output):
    """Runs argv on a new pseudo-terminal; on_output(fd, output so far) after each read."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(argv[0], argv)
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
        on_output(fd, out)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out


def check_interrupt(dsv3, model):
    sent = []

    def interrupt_once_streaming(fd, out):
        # The first 40 bytes of text after the loading line, then Ctrl-C.
        at = out.find(b"loaded ")
        if not sent and at >= 0 and len(out) - out.find(b"\n", at) > 40:
            os.write(fd, b"\x03")
            sent.append(True)

    code, out = run_in_pty([dsv3, "generate", "-m", model, "-p", PROMPT, "-t", "1", "-n", "-1",
                            "--ignore-eos", "--seed", "1"], interrupt_once_streaming)
    assert sent, out
    assert code == 130, (code, out)
    m = re.search(rb"generation: (\d+) tokens.*stop: interrupted", out)
    assert m and 0 < int(m.group(1)) < 4000, out
    print(f"interrupt: Ctrl-C stopped the generation after {int(m.group(1))} tokens")


def check_interrupt_write(dsv3, model):
    r, w = os.pipe()
    fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 4096)  # one page: the text fills it in a few hundred tokens
    p = subprocess.Popen([dsv3, "generate", "-m", model, "-p", PROMPT, "-t", "1", "-n", "-1",
                          "--ignore-eos", "--seed", "1"], stdout=w, stderr=subprocess.PIPE)
    os.close(w)
    # Wait until the pipe is full and dsv3 sleeps in a write to it, then interrupt that write.
    deadline = time.monotonic() + 60
    while True:
        full = struct.unpack("i", fcntl.ioctl(r, termios.FIONREAD, b"\0" * 4))[0] >= 4096 - 64
        with open(f"/proc/{p.pid}/wchan") as f:
            if full and "pipe" in f.read():
                break
        assert p.poll() is None and time.monotonic() < deadline, "the output never filled the pipe"
        time.sleep(0.01)
    p.send_signal(signal.SIGINT)
    time.sleep(0.2)  # the handler has run and the write was interrupted, before anything is read
    out = b""
    while chunk := os.read(r, 65536):
        out += chunk
    err = p.stderr.read().decode("utf-8", "replace")
    code = p.wait()
    assert code == 130, (code, err)
    assert "writing the output failed" not in err, err
    m = re.search(r"generation: (\d+) tokens.*stop: interrupted", err)
    assert m and len(out) > 4096, (err, len(out))
    out.decode("utf-8")  # whole characters: the write that was interrupted went on
    print(f"interrupt_write: SIGINT during a blocked write stopped the generation after "
          f"{m.group(1)} tokens; {len(out)} bytes written, none lost")


def main():
    dsv3, model, what = sys.argv[1:4]
    {"greedy": check_greedy, "seed": check_seed, "stop": check_stop,
     "reasoning": check_reasoning, "interrupt": check_interrupt,
     "interrupt_write": check_interrupt_write}[what](dsv3, model)


if __name__ == "__main__":
    main()

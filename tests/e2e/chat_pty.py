#!/usr/bin/env python3
"""`dsv3 chat` driven through a pseudo-terminal, as a person would use it (tests/generation.cmake).

usage: chat_pty.py DSV3 PLAIN_MODEL R1_MODEL

plain: three turns with a template that keeps the history verbatim. Turns 2 and 3 must reuse every
       cached token (the -v counter "N tokens reused" equals the cache size after the previous
       turn) and prefill only the new message, the template's tokens around it and the last
       sampled token of the previous reply (sampled, shown, never fed to the model).
r1:    DeepSeek-R1's template drops "<think>\\n" from earlier turns: turn 2 must reuse the previous
       prompt up to that tag and no further. Ctrl-C stops a reply without leaving (twice), Ctrl-C at
       the prompt only reminds how to leave, and Ctrl-D exits with status 0.
"""
import json
import os
import pty
import re
import select
import subprocess
import sys
import time

TURN = re.compile(rb"\[turn (\d+): (\d+) tokens reused from the cache, (\d+) prefilled, "
                  rb"(\d+) generated; cache (\d+) tokens\]")


class Session:
    def __init__(self, argv):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the pty is its controlling terminal
            os.execv(argv[0], argv)
        self.out = b""

    def read_until(self, pattern, timeout=60.0, start=0):
        """Reads until `pattern` (bytes regex) matches output after `start`; returns the match."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            m = rx.search(self.out, start)
            if m:
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {pattern!r}; output so far:\n"
                                     + self.out.decode("utf-8", "replace"))
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:  # EIO: the child closed the terminal
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"the chat ended while waiting for {pattern!r}:\n"
                                         + self.out.decode("utf-8", "replace"))
                self.out += chunk

    def prompt(self, start):
        """Waits for the "> " input prompt at the start of a line (after the terminal's echo of
        a Ctrl-C, "^C", which may arrive late); returns where it ends."""
        return self.read_until(rb"(^|\n)(\^C)?> ", start=start).end()

    def send(self, data):
        os.write(self.fd, data)

    def wait_exit(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
            r, _, _ = select.select([self.fd], [], [], 0.1)
            if r:
                try:
                    self.out += os.read(self.fd, 65536)
                except OSError:
                    pass
        os.kill(self.pid, 9)
        raise AssertionError("dsv3 chat did not exit after Ctrl-D")


def n_tokens(dsv3, model, text):
    p = subprocess.run([dsv3, "tokenize", "-m", model, "--no-bos", "--text", text],
                       capture_output=True, check=True)
    return len(p.stdout.split())


def detokenize(dsv3, model, ids):
    p = subprocess.run([dsv3, "detokenize", "-m", model, "--skip-special", "--ids",
                        ",".join(map(str, ids)) or "0"], capture_output=True, check=True)
    return p.stdout.decode("utf-8") if ids else ""


def token_bytes(model):
    """id -> the token's raw bytes, read from tokenizer.json (GPT-2 byte-level alphabet)."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    unicode_to_byte, n = {}, 0
    for b in range(256):
        if b in printable:
            unicode_to_byte[chr(b)] = b
        else:
            unicode_to_byte[chr(256 + n)] = b
            n += 1
    with open(os.path.join(model, "tokenizer.json")) as f:
        t = json.load(f)
    out = {a["id"]: a["content"].encode() for a in t.get("added_tokens", [])}
    for tok, i in t["model"]["vocab"].items():
        if i not in out:  # added tokens are spelled as they are
            out[i] = bytes(unicode_to_byte[c] for c in tok)
    return out


def turn(s, text, start):
    s.send(text.encode() + b"\r")
    m = s.read_until(TURN, start=start)
    n, reused, prefilled, generated, cache = (int(x) for x in m.groups())
    ids = s.read_until(rb"generated ids:([ 0-9]*)\r?\n", start=m.end())
    gen = [int(x) for x in ids.group(1).split()]
    assert len(gen) == generated
    return dict(n=n, reused=reused, prefilled=prefilled, generated=generated, cache=cache,
                ids=gen), s.prompt(ids.end())


def check_plain(dsv3, model):
    """Expected counts from the template's layout (tests/e2e/gen_fixture.py) and the tokenizer
    alone: turn k's rendering is turn k-1's prompt, the reply, <eos>, <User> message <Assistant>.
    The cache holds turn k-1's prompt and its reply but the last sampled token. Of the reply's
    cached tokens, those whose raw bytes the new rendering repeats are reused (up to a character
    boundary); everything after is encoded anew and prefilled."""
    bos, eos, user, assistant = ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>",
                                 "<｜Assistant｜>")
    s = Session([dsv3, "chat", "-m", model, "-v", "-n", "6", "--greedy", "--ignore-eos", "-t",
                 "1"])
    at = s.prompt(0)
    messages = ["hello there", "tell me about the model", "and the cache?"]
    turns = []
    for msg in messages:
        t, at = turn(s, msg, at)
        turns.append(t)
    s.send(b"\x04")
    code = s.wait_exit()
    assert code == 0, f"Ctrl-D exits with status 0, not {code}; output:\n" + s.out.decode(
        "utf-8", "replace")

    raw = token_bytes(model)
    first = turns[0]
    assert first["reused"] == 0
    assert first["prefilled"] == n_tokens(dsv3, model, bos + user + messages[0] + assistant)
    for k in (1, 2):
        prev, t = turns[k - 1], turns[k]
        assert prev["cache"] == prev["reused"] + prev["prefilled"] + prev["generated"] - 1
        reply = detokenize(dsv3, model, prev["ids"])  # the text shown, kept in the history
        rest = (reply + eos + user + messages[k] + assistant).encode()
        matched, j = 0, 0
        for tok in prev["ids"][:-1]:  # the cached part of the reply
            b = raw[tok]
            if rest[matched:matched + len(b)] != b:
                break
            matched, j = matched + len(b), j + 1
        while j > 0 and matched < len(rest) and rest[matched] & 0xC0 == 0x80:
            j -= 1
            matched -= len(raw[prev["ids"][j]])
        want_reused = prev["reused"] + prev["prefilled"] + j
        want_prefilled = n_tokens(dsv3, model, rest[matched:].decode())
        assert t["reused"] == want_reused, (k + 1, t, want_reused)
        assert t["prefilled"] == want_prefilled, (k + 1, t, want_prefilled)
        if j == len(prev["ids"]) - 1:
            assert t["reused"] == prev["cache"]  # the whole cache
    print("plain template:", "; ".join(
        f"turn {t['n']}: reused {t['reused']} of the cache, prefilled {t['prefilled']}"
        for t in turns))


def check_r1_and_interrupts(dsv3, model):
    s = Session([dsv3, "chat", "-m", model, "-v", "-n", "-1", "--temp", "1", "--seed", "3",
                 "--ignore-eos", "-t", "1"])
    at = s.prompt(0)
    # Ctrl-C at the prompt reminds how to leave and asks again.
    s.send(b"\x03")
    at = s.prompt(s.read_until(rb"Ctrl-D or /exit leaves", start=at).end())

    turns = []
    for msg in ("tell me a long story", "and then?"):
        s.send(msg.encode() + b"\r")
        # Wait for the reply to stream (the reasoning opens with <think> off a terminal... here
        # on one, so any 40 bytes of output), then interrupt it.
        s.read_until(rb"(?s).{40}", start=at + len(msg) + 2)
        s.send(b"\x03")
        m = s.read_until(rb"\[interrupted\]", start=at)
        m = s.read_until(TURN, start=m.end())
        n, reused, prefilled, generated, cache = (int(x) for x in m.groups())
        turns.append(dict(reused=reused, prefilled=prefilled, generated=generated, cache=cache))
        assert generated > 0 and cache < 4096, "the reply was cut short by Ctrl-C"
        at = s.prompt(m.end())
    s.send(b"\x04")
    code = s.wait_exit()
    assert code == 0, f"Ctrl-D exits with status 0, not {code}; output:\n" + s.out.decode(
        "utf-8", "replace")
    # Turn 2 reuses turn 1's prompt except "<think>\n", which the template leaves out of the
    # history, and nothing of the reply after it.
    think = n_tokens(dsv3, model, "<think>\n")
    assert turns[0]["reused"] == 0
    assert turns[1]["reused"] == turns[0]["prefilled"] - think, (turns, think)
    print(f"R1 template: turn 2 reused {turns[1]['reused']} = turn 1's prompt minus {think} "
          f"tokens of <think>; Ctrl-C stopped replies of {turns[0]['generated']} and "
          f"{turns[1]['generated']} tokens and the session went on")


def main():
    dsv3, plain, r1 = sys.argv[1:4]
    check_plain(dsv3, plain)
    check_r1_and_interrupts(dsv3, r1)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Runs one dsv3 command and checks its exit code and output; optionally first copies a model
folder and damages it (the bad-input tests of RELIABILITY §1 for model folders).

  cli_check.py [--copy SRC DST] [--edit OP ...]... [--stdout-to PATH] (--ok | --fail)
               [--match REGEX]... [--no-match REGEX]... -- DSV3 ARGS...

--ok expects exit code 0; --fail expects exit code 1 (an error message, not a crash). Every
--match regex must occur in stdout+stderr (only stderr with --stdout-to, which sends the command's
stdout to PATH, e.g. /dev/full for a write error); no --no-match regex may occur. Edits, applied to DST in order:
  drop NAME             remove tensor NAME from the safetensors files
  reshape NAME D0,D1    give tensor NAME another shape with the same element count
  index-missing NAME    write model.safetensors.index.json placing NAME in a shard that does not exist
  config KEY JSON       set config.json's KEY to the JSON value (null deletes the key)
Uses only the standard library: a safetensors file is an 8-byte little-endian header length, a JSON
header and the data, so tensors are edited by rewriting the header and copying byte ranges.
"""
import json
import os
import re
import shutil
import struct
import subprocess
import sys


def read_st(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    return header, data


def link_or_copy(src, dst):
    if src.endswith(".safetensors"):
        os.link(src, dst)
    else:
        shutil.copy2(src, dst)


def write_st(path, header, data):
    meta = header.pop("__metadata__", None)
    # Rebuild the data section in header order so offsets stay contiguous.
    out, parts, pos = {}, [], 0
    if meta is not None:
        out["__metadata__"] = meta
    for name, t in header.items():
        b, e = t["data_offsets"]
        parts.append(data[b:e])
        out[name] = dict(t, data_offsets=[pos, pos + (e - b)])
        pos += e - b
    h = json.dumps(out).encode()
    h += b" " * (-len(h) % 8)
    os.unlink(path)  # a hard link to the source model's file: never write through it
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(parts))


def shard_files(d):
    return sorted(f for f in os.listdir(d) if f.endswith(".safetensors"))


def edit_tensor(d, name, fn):
    for f in shard_files(d):
        path = os.path.join(d, f)
        header, data = read_st(path)
        if name in header:
            fn(header, name)
            write_st(path, header, data)
            return
    sys.exit("cli_check: no tensor %s in %s" % (name, d))


def apply_edit(d, op, args):
    if op == "drop":
        edit_tensor(d, args[0], lambda h, n: h.pop(n))
    elif op == "reshape":
        shape = [int(x) for x in args[1].split(",")]
        edit_tensor(d, args[0], lambda h, n: h[n].update(shape=shape))
    elif op == "index-missing":
        weight_map = {}
        for f in shard_files(d):
            header, _ = read_st(os.path.join(d, f))
            weight_map.update({n: f for n in header if n != "__metadata__"})
        weight_map[args[0]] = "model-00002-of-00002.safetensors"
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f)
    elif op == "config":
        path = os.path.join(d, "config.json")
        with open(path) as f:
            cfg = json.load(f)
        value = json.loads(args[1])
        if value is None:
            cfg.pop(args[0], None)
        else:
            cfg[args[0]] = value
        with open(path, "w") as f:
            json.dump(cfg, f, indent=2)
    else:
        sys.exit("cli_check: unknown edit " + op)


def main(argv):
    sep = argv.index("--")
    opts, cmd = argv[:sep], argv[sep + 1:]
    expect_ok, matches, absent, stdout_to, i = None, [], [], None, 0
    while i < len(opts):
        o = opts[i]
        if o == "--copy":
            src, dst = opts[i + 1], opts[i + 2]
            shutil.rmtree(dst, ignore_errors=True)
            # Weights are hard-linked, not copied (a tiny model is 46 MB and dozens of tests copy
            # one); every edit below replaces a file rather than writing into it.
            shutil.copytree(src, dst, copy_function=link_or_copy)
            i += 3
        elif o == "--edit":
            arity = {"drop": 1, "reshape": 2, "index-missing": 1, "config": 2}[opts[i + 1]]
            apply_edit(dst, opts[i + 1], opts[i + 2:i + 2 + arity])
            i += 2 + arity
        elif o in ("--ok", "--fail"):
            expect_ok = o == "--ok"
            i += 1
        elif o == "--stdout-to":
            stdout_to = opts[i + 1]
            i += 2
        elif o == "--match":
            matches.append(opts[i + 1])
            i += 2
        elif o == "--no-match":
            absent.append(opts[i + 1])
            i += 2
        else:
            sys.exit("cli_check: unknown option " + o)
    if stdout_to:
        with open(stdout_to, "w") as sink:
            r = subprocess.run(cmd, stdout=sink, stderr=subprocess.PIPE, text=True)
        out = r.stderr
    else:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        out = r.stdout
    print(out)
    want = 0 if expect_ok else 1
    if r.returncode != want:
        sys.exit("cli_check: exit code %d, expected %d" % (r.returncode, want))
    for m in matches:
        if not re.search(m, out):
            sys.exit("cli_check: output does not match %r" % m)
    for m in absent:
        if re.search(m, out):
            sys.exit("cli_check: output matches %r" % m)


if __name__ == "__main__":
    main(sys.argv[1:])

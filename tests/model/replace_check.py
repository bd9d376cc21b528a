#!/usr/bin/python3
"""Commands that replace an existing output must never lose it (issue 19): a failure, or a kill, at
any point while the new files are written leaves the old output whole and loadable.

  replace_check.py CASE DSV3 WORK_DIR MODEL_DIR

MODEL_DIR is a good model folder (copied, never written). Faults are made without root or a small
disk: RLIMIT_FSIZE caps the size of any file the command writes; with SIGXFSZ ignored the write
fails (EFBIG, as on a full disk), with SIGXFSZ at its default the process is killed mid-write.

init, convert  --force over a copy of MODEL_DIR: a failing write leaves the folder byte-identical; a
               killed one leaves it loadable plus its staging folder, which a plain rerun names
               (with how to remove it) and --force removes; a link among the files is refused.
tokenizer      tokenizer train --force whose second file cannot be written keeps the first.
prepare        data prepare --force that fails (an empty train split, found after the shards are
               written) or is killed leaves the old data set; leftovers as for init.
logits         --out through a symlink writes the link's target; with --mtp, an output that cannot
               be written is refused before the other replaces its old file.
"""
import filecmp
import os
import re
import resource
import shutil
import signal
import subprocess
import sys

LIMIT = 1 << 20  # bytes: every model file of the tiny preset is larger


def run(cmd, fsize=None, killed=False):
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL if killed else signal.SIG_IGN)

    r = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=limit if fsize else None)
    print("$", " ".join(cmd), "->", r.returncode)
    print(r.stdout + r.stderr)
    return r


def expect(cond, what):
    if not cond:
        sys.exit("replace_check: " + what)


def same_tree(a, b, ignore=()):
    c = filecmp.dircmp(a, b, ignore=list(ignore))
    if c.left_only or c.right_only or c.diff_files or c.funny_files:
        return False
    # dircmp compares by stat signature; compare contents too.
    return all(filecmp.cmp(os.path.join(a, f), os.path.join(b, f), shallow=False)
               for f in c.common_files)


def staging_dirs(d):
    return [f for f in os.listdir(d) if f.startswith("dsv3-tmp.")]


def fresh_copy(src, dst):
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)


def model_case(dsv3, work, model, write):
    """write(out_dir, *extra) -> command line replacing out_dir's model."""
    victim = os.path.join(work, "victim")
    fresh_copy(model, victim)
    # 1. A write that fails (EFBIG, like a full disk): the old folder is exactly as it was.
    r = run(write(victim, "--force"), fsize=LIMIT)
    expect(r.returncode == 1 and "File too large" in r.stderr, "the failing write did not fail")
    expect(same_tree(model, victim), "a failed --force write changed the old model")
    # 2. Killed mid-write: the old model still loads; the staging folder is left.
    r = run(write(victim, "--force"), fsize=LIMIT, killed=True)
    expect(r.returncode == -signal.SIGXFSZ, "the write was not killed")
    left = staging_dirs(victim)
    expect(len(left) == 1, "no staging folder left by the killed run: %s" % os.listdir(victim))
    expect(same_tree(model, victim, ignore=left), "the killed write changed the old files")
    expect(run([dsv3, "inspect", "-m", victim]).returncode == 0, "the old model no longer loads")
    # 3. A plain rerun names the leftover and says how to remove it.
    r = run(write(victim))
    expect(r.returncode == 1, "a plain rerun over leftovers did not fail")
    for m in ["temporary files of an unfinished dsv3 run", re.escape(left[0]), "--force",
              "rm -r '" + re.escape(os.path.join(victim, left[0])) + "'"]:
        expect(re.search(m, r.stderr), "the refusal does not say %r" % m)
    # 4. --force removes it and writes the new model.
    r = run(write(victim, "--force"))
    expect(r.returncode == 0, "--force over leftovers failed")
    expect(not staging_dirs(victim), "--force left the staging folder")
    expect(run([dsv3, "inspect", "-m", victim]).returncode == 0, "the new model does not load")
    # 5. A link among the files a new model replaces is refused, the link and its target intact.
    fresh_copy(model, victim)
    weights = os.path.join(victim, "model.safetensors")
    os.remove(weights)
    os.symlink(os.path.join(model, "model.safetensors"), weights)
    r = run(write(victim, "--force"))
    expect(r.returncode == 1 and "is a symbolic link" in r.stderr, "a linked weight file was not refused")
    expect(os.path.islink(weights), "the link was replaced")


def check_init(dsv3, work, model):
    model_case(dsv3, work, model, lambda out, *extra: [
        dsv3, "init", "--preset", "tiny", "--dtype", "f32", "--seed", "9", "-o", out, *extra])


def check_convert(dsv3, work, model):
    model_case(dsv3, work, model, lambda out, *extra: [
        dsv3, "convert", "-m", model, "-o", out, "--dtype", "f32", *extra])


def check_tokenizer(dsv3, work, model):
    out = os.path.join(work, "tok")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(os.path.join(out, "tokenizer_config.json"))  # the second file cannot be written
    shutil.copy(os.path.join(model, "tokenizer.json"), out)
    corpus = os.path.join(work, "corpus.txt")
    with open(corpus, "w") as f:
        f.write("the cat sat on the mat; the dog sat on the log.\n" * 50)
    r = run([dsv3, "tokenizer", "train", "--input", corpus, "--vocab-size", "300", "-o", out,
             "--force"])
    expect(r.returncode == 1 and "is a directory" in r.stderr.lower(), "the failing train did not fail")
    expect(filecmp.cmp(os.path.join(model, "tokenizer.json"), os.path.join(out, "tokenizer.json"),
                       shallow=False), "tokenizer.json was replaced although its pair failed")
    expect(sorted(os.listdir(out)) == ["tokenizer.json", "tokenizer_config.json"],
           "temporary files left: %s" % os.listdir(out))


def check_prepare(dsv3, work, model):
    d = os.path.join(work, "prepare")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    text, empty, data = (os.path.join(d, n) for n in ("text.txt", "empty.txt", "data"))
    with open(text, "w") as f:
        f.write("".join("document %d: the cat sat on the mat.\n\x1e\n" % i for i in range(400)))
    open(empty, "w").close()
    prepare = [dsv3, "data", "prepare", "--tokenizer", model, "-o", data]
    r = run(prepare + ["--input", text])
    expect(r.returncode == 0, "the first data set was not written")
    good = os.path.join(work, "prepare_good")
    fresh_copy(data, good)
    # Fails after writing its shards: the train split is empty.
    r = run(prepare + ["--input", empty, "--valid", text, "--force"])
    expect(r.returncode == 1 and "the train split is empty" in r.stderr, "the failing run did not fail")
    expect(same_tree(good, data), "a failed --force run changed the old data set")
    r = run(prepare + ["--input", text, "--force", "--shard-tokens", "64"], fsize=4096, killed=True)
    expect(r.returncode == -signal.SIGXFSZ, "the run was not killed")
    left = staging_dirs(data)
    expect(len(left) == 1, "no staging folder left: %s" % os.listdir(data))
    expect(same_tree(good, data, ignore=left), "the killed run changed the old data set")
    r = run(prepare + ["--input", text])
    expect(r.returncode == 1 and "temporary files of an unfinished dsv3 run" in r.stderr,
           "a plain rerun did not name the leftovers")
    r = run(prepare + ["--input", text, "--force"])
    expect(r.returncode == 0 and not staging_dirs(data), "--force did not clean up")
    expect(same_tree(good, data), "the rewritten data set differs from the first")


def check_logits(dsv3, work, model):
    d = os.path.join(work, "logits")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    target, link = os.path.join(d, "target.npy"), os.path.join(d, "link.npy")
    os.symlink("target.npy", link)
    r = run([dsv3, "logits", "-m", model, "--ids", "5,7,9", "--out", link])
    expect(r.returncode == 0, "logits --out LINK failed")
    expect(os.path.islink(link), "the link was replaced by a file")
    with open(target, "rb") as f:
        expect(f.read(6) == b"\x93NUMPY", "the link's target holds no .npy")
    before = open(target, "rb").read()
    os.makedirs(os.path.join(d, "target.mtp.npy"))  # --mtp's second output cannot be written
    r = run([dsv3, "logits", "-m", model, "--ids", "1,2,3,4", "--mtp", "--out", target])
    expect(r.returncode == 1 and "is a directory" in r.stderr, "the unwritable output was accepted")
    expect(open(target, "rb").read() == before, "the first output was replaced anyway")


def main():
    case, dsv3, work, model = sys.argv[1:5]
    os.makedirs(work, exist_ok=True)
    {"init": check_init, "convert": check_convert, "tokenizer": check_tokenizer,
     "logits": check_logits, "prepare": check_prepare}[case](dsv3, work, model)
    print("replace_check %s: ok" % case)


if __name__ == "__main__":
    main()

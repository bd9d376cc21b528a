#!/usr/bin/env python3
"""Model folders for the generation tests (tests/generation.cmake).

usage: gen_fixture.py DSV3 OUT_DIR REPO_ROOT

OUT_DIR/r1:    `dsv3 init --preset tiny` (random weights) with its tokenizer, whose chat template is
               DeepSeek-R1's layout (the generation prompt ends with "<think>\\n", earlier replies
               lose their reasoning).
OUT_DIR/plain: the same weights and tokenizer with a template that keeps the history verbatim, so a
               new turn's rendering starts with everything the cache holds.
When `dsv3 init` writes no tokenizer, one is trained here on the repository's README (1024 tokens,
DeepSeek-V3's special-token layout).
"""
import json
import os
import shutil
import subprocess
import sys

PLAIN_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}"
    "{% if m['role'] == 'system' %}{{ m['content'] }}"
    "{% elif m['role'] == 'user' %}{{ '<｜User｜>' + m['content'] }}"
    "{% else %}{{ '<｜Assistant｜>' + m['content'] + eos_token }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<｜Assistant｜>' }}{% endif %}")


def run(*args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)


def main():
    dsv3, out, repo = sys.argv[1:4]
    r1, plain = os.path.join(out, "r1"), os.path.join(out, "plain")
    run(dsv3, "init", "--preset", "tiny", "-o", r1, "--seed", "5", "--force")
    if not os.path.exists(os.path.join(r1, "tokenizer.json")):
        tok = os.path.join(out, "tokenizer")
        run(dsv3, "tokenizer", "train", "--input", os.path.join(repo, "README.md"), "--vocab-size",
            "1024", "-o", tok)
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(tok, f), r1)
    shutil.rmtree(plain, ignore_errors=True)
    os.makedirs(plain)
    for f in os.listdir(r1):
        if f.endswith(".safetensors"):  # the weights are shared
            os.symlink(os.path.abspath(os.path.join(r1, f)), os.path.join(plain, f))
        else:
            shutil.copy(os.path.join(r1, f), plain)
    cfg_path = os.path.join(plain, "tokenizer_config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg["chat_template"] = PLAIN_TEMPLATE
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Model folders for the generation tests (tests/generation.cmake).

usage: gen_fixture.py DSV3 OUT_DIR

OUT_DIR/r1:    `dsv3 init --preset tiny` (random weights) with the preset's tokenizer (dsv3-en-4k),
               whose chat template is DeepSeek-R1's layout (the generation prompt ends with
               "<think>\\n", earlier replies lose their reasoning).
OUT_DIR/plain: the same weights and tokenizer with a template that keeps the history verbatim, so a
               new turn's rendering starts with everything the cache holds.
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
    dsv3, out = sys.argv[1:3]
    r1, plain = os.path.join(out, "r1"), os.path.join(out, "plain")
    run(dsv3, "init", "--preset", "tiny", "-o", r1, "--seed", "5", "--force")
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

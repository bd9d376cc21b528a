"""Modules depend only downward (ARCHITECTURE.md): fails on an include of a module above or beside.

  check_layers.py SOURCE_DIR

Every src/<module> library has src/ on its include path (dsv3_base exports it), so an upward
include of a header-only piece compiles and links; this check is what makes it fail. The allowed
sets mirror the target_link_libraries of each src/<module>/CMakeLists.txt.
"""
import os
import re
import sys

ALLOWED = {
    "base": {"base"},
    "tensor": {"base", "tensor"},
    "kernels": {"base", "tensor", "kernels"},
    "model": {"base", "tensor", "kernels", "model"},
    "tokenizer": {"base", "tokenizer"},
    "runtime": {"base", "tensor", "kernels", "model", "tokenizer", "runtime"},
    "train": {"base", "tensor", "kernels", "model", "tokenizer", "train"},
    "dist": {"base", "tensor", "kernels", "model", "tokenizer", "train", "dist"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s*"([A-Za-z0-9_]+)/')


def main():
    src = os.path.join(sys.argv[1], "src")
    found = sorted(d for d in os.listdir(src) if os.path.isdir(os.path.join(src, d)))
    unknown = [d for d in found if d not in ALLOWED]
    bad = ["src/%s: a module this check does not know; add it to ALLOWED" % d for d in unknown]
    files = 0
    for module in found:
        if module in unknown:
            continue
        for root, _, names in os.walk(os.path.join(src, module)):
            for name in names:
                if not name.endswith((".h", ".cc", ".inc")):
                    continue
                path = os.path.join(root, name)
                files += 1
                with open(path, encoding="utf-8") as f:
                    for n, line in enumerate(f, 1):
                        m = INCLUDE.match(line)
                        if m and m.group(1) not in ALLOWED[module]:
                            bad.append("%s:%d: %s includes %s/ (allowed: %s)" % (
                                os.path.relpath(path, sys.argv[1]), n, module, m.group(1),
                                ", ".join(sorted(ALLOWED[module]))))
    for b in bad:
        print(b)
    print("%d files in %d modules, %d upward or sideways includes" % (files, len(found), len(bad)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

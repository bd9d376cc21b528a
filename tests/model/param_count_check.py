#!/usr/bin/python3
"""One parameter count for a model across the commands that print one (issue 19).

  param_count_check.py DSV3 WORK_DIR README

init, inspect, generate and bench print the same "N parameters + M MTP" for the tiny preset (the
main model without the MTP module, then the module's own parameters), bench --json's n_params and
n_params_mtp are those numbers, and the README's figure for the small preset is what inspect prints.
"""
import json
import re
import subprocess
import sys

SUMMARY = r"([0-9.]+[KMB]?) parameters(?: \+ ([0-9.]+[KMB]?) MTP)?"


def run(*cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    print("$", " ".join(cmd), "->", r.returncode)
    print(r.stdout + r.stderr)
    if r.returncode != 0:
        sys.exit("param_count_check: the command failed")
    return r.stdout + r.stderr


def summary(text, what):
    m = re.search(SUMMARY, text)
    if not m:
        sys.exit("param_count_check: %s prints no parameter count" % what)
    return m.group(0)


def fmt(n):  # format_params
    if n >= 100e9:
        return "%.1fB" % (n / 1e9)
    for scale, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= scale:
            return "%.2f%s" % (n / scale, unit)
    return str(n)


def main():
    dsv3, work, readme = sys.argv[1:4]
    model = work + "/tiny"
    got = {
        "init": summary(run(dsv3, "init", "--preset", "tiny", "-o", model, "--force"), "init"),
        "inspect": summary(run(dsv3, "inspect", "-m", model), "inspect"),
        "inspect --preset": summary(run(dsv3, "inspect", "--preset", "tiny"), "inspect --preset"),
        "generate": summary(run(dsv3, "generate", "-m", model, "-p", "a", "-n", "1"), "generate"),
        "bench": None,
    }
    bench = json.loads(subprocess.run([dsv3, "bench", "-m", model, "-p", "4", "-n", "2", "-r", "1",
                                       "--json"], capture_output=True, text=True,
                                      check=True).stdout)
    got["bench"] = "%s parameters + %s MTP" % (fmt(bench["model"]["n_params"]),
                                               fmt(bench["model"]["n_params_mtp"]))
    table = run(dsv3, "bench", "-m", model, "-p", "4", "-n", "2", "-r", "1")
    print(got)
    if len(set(got.values())) != 1:
        sys.exit("param_count_check: the commands disagree: %s" % got)
    main_count = got["init"].split()[0]
    if "| %s |" % main_count not in table:
        sys.exit("param_count_check: bench's table does not show %s" % main_count)
    # The README's figure for the small preset.
    small = summary(run(dsv3, "inspect", "--preset", "small"), "inspect --preset small")
    with open(readme) as f:
        text = " ".join(f.read().split())
    if small not in text:
        sys.exit("param_count_check: README.md does not say %r" % small)
    print("param_count_check: every command prints %r; README says %r" % (got["init"], small))


if __name__ == "__main__":
    main()

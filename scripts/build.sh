#!/usr/bin/env bash
# Configures and builds dsv3 into build/ (or $DSV3_BUILD_DIR); the CLI is build/dsv3. Extra args go
# to cmake (e.g. -DDSV3_TESTS=ON). Configuring again is cheap and picks up newly installed packages.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${DSV3_BUILD_DIR:-build}
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$dir" -j "$(nproc)"

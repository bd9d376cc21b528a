#!/usr/bin/env bash
# The main job on its built-in default: install dependencies, build, create the `tiny` model,
# inspect it, and print its logits for a short prompt.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-deps.sh
scripts/build.sh
mkdir -p models
[[ -f models/tiny/config.json ]] || build/dsv3 init --preset tiny -o models/tiny --seed 0
build/dsv3 inspect models/tiny

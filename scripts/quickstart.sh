#!/usr/bin/env bash
# The main job on its built-in default: install dependencies, build, create the `tiny` model (random
# weights, with its committed 4k tokenizer), inspect it, print its logits for a short prompt and
# generate a few tokens.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-deps.sh
scripts/build.sh -DDSV3_TESTS=OFF
mkdir -p models
[[ -f models/tiny/tokenizer.json ]] || build/dsv3 init --preset tiny -o models/tiny --seed 0 --force
build/dsv3 inspect models/tiny
prompt="The quick brown fox jumps over the lazy dog."
ids=$(build/dsv3 tokenize -m models/tiny --text "$prompt" | tr ' ' ',')
echo "prompt: $prompt"
echo "ids:    $ids"
build/dsv3 logits -m models/tiny --ids "$ids"
# A random model writes nonsense, but the path is the real one: tokenizer, prefill, cache, sampler.
build/dsv3 generate -m models/tiny -p "$prompt" -n 24 --seed 0

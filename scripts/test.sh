#!/usr/bin/env bash
# Runs every test: installs what the tests need, builds the release tree and the sanitizer tree,
# and runs ctest in both. Exit code non-zero on any failure. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-deps.sh --test
scripts/fetch-assets.sh  # npm tokenizers, reference libraries and the corpus, into .cache/
scripts/build.sh
(cd build && ctest --output-on-failure -j "$(nproc)" --timeout 600)

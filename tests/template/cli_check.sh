#!/usr/bin/env bash
# dsv3 template: prints exactly the prompt the reference renders (no newline added) with the model's
# own template and with --template plus extra variables; --help; an unknown option and an
# unsupported construct fail with exit code 1 and a message naming them.
#   cli_check.sh DSV3 SOURCE_DIR WORK_DIR
set -euo pipefail
dsv3=$1 root=$2 work=$3
model=$root/.cache/assets/deepseek_v3
fix=$root/tests/fixtures/chat_templates
mkdir -p "$work"
fail() { echo "cli_check: $*" >&2; exit 1; }

"$dsv3" template -m "$model" --messages "$fix/cli_messages.json" --add-generation-prompt >"$work/v3.txt"
cmp "$work/v3.txt" "$fix/cli_expected_v3.txt" || fail "DeepSeek-V3 prompt differs from cli_expected_v3.txt"
"$dsv3" template -m "$model" --messages - --add-generation-prompt <"$fix/cli_messages.json" >"$work/v3_stdin.txt"
cmp "$work/v3_stdin.txt" "$fix/cli_expected_v3.txt" || fail "--messages - (stdin) differs"

"$dsv3" template -m "$model" --messages "$fix/cli_messages_vars.json" --add-generation-prompt \
  --template "$root/.cache/assets/templates/deepseek_r1_distill_qwen.jinja" >"$work/qwen.txt"
cmp "$work/qwen.txt" "$fix/cli_expected_r1_distill_qwen.txt" || fail "R1-Distill-Qwen prompt differs"

# The derived R1-Distill-Qwen folder (scripts/fetch-assets.sh) carries that template itself, with
# bos_token and eos_token as plain strings.
"$dsv3" template -m "$root/.cache/assets/qwen2.5-r1-distill" --messages "$fix/cli_messages_vars.json" \
  --add-generation-prompt >"$work/qwen_own.txt"
cmp "$work/qwen_own.txt" "$fix/cli_expected_r1_distill_qwen.txt" || fail "R1-Distill-Qwen folder prompt differs"

"$dsv3" template --help | grep -q -- "--add-generation-prompt" || fail "--help lacks the options"

if "$dsv3" template -m "$model" --messages "$fix/cli_messages.json" --bogus 2>"$work/err1.txt"; then
  fail "an unknown option was accepted"
fi
grep -q -- "--bogus" "$work/err1.txt" || fail "the unknown-option error does not name it"

printf '{%% for m in messages %%}{%% filter upper %%}x{%% endfilter %%}{%% endfor %%}' >"$work/filter.jinja"
set +e
"$dsv3" template -m "$model" --messages "$fix/cli_messages.json" --template "$work/filter.jinja" \
  >/dev/null 2>"$work/err2.txt"
rc=$?
set -e
[[ $rc == 1 ]] || fail "an unsupported construct gave exit code $rc, not 1"
grep -q "unsupported construct '{% filter %}' at line 1, column 24" "$work/err2.txt" ||
  fail "unexpected error text: $(cat "$work/err2.txt")"
echo "cli_check: ok"

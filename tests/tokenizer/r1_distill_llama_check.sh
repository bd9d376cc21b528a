#!/usr/bin/env bash
# The derived DeepSeek-R1-Distill-Llama-8B tokenizer (.cache/assets/llama3-r1-distill, made by
# scripts/fetch-assets.sh) installed by `dsv3 init` into a tiny Llama model folder, then used by
# `dsv3 tokenize`: BOS 128000 from its post_processor and config ("Hi" is 13347 in Llama-3, the Hugging
# Face library gives [128000, 13347]), R1's chat tokens as single ids (docs/DATA.md).
#   tests/tokenizer/r1_distill_llama_check.sh DSV3 SOURCE_DIR WORK
set -euo pipefail
dsv3=$1 tok=$2/.cache/assets/llama3-r1-distill work=$3
rm -rf "$work" && mkdir -p "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
[[ -f $tok/tokenizer.json ]] || fail "missing $tok: run scripts/fetch-assets.sh"
cat > "$work/config.json" <<'JSON'
{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 128256, "hidden_size": 16,
 "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
 "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
 "tie_word_embeddings": false, "bos_token_id": 128000, "eos_token_id": 128001, "hidden_act": "silu"}
JSON
"$dsv3" init --config "$work/config.json" --tokenizer "$tok" -o "$work/model" > "$work/init.log"
m=$work/model
[[ $("$dsv3" tokenize -m "$m" --text Hi) == "128000 13347" ]] || fail "Hi: $("$dsv3" tokenize -m "$m" --text Hi)"
[[ $("$dsv3" tokenize -m "$m" --text Hi --no-bos) == "13347" ]] || fail "Hi --no-bos"
got=$("$dsv3" tokenize -m "$m" --no-bos --text $'<｜User｜>Hi<｜Assistant｜><think>\nx</think><｜end▁of▁sentence｜>')
[[ $got == "128011 13347 128012 128013 198 87 128014 128001" ]] || fail "chat tokens: $got"
echo "R1-Distill-Llama tokenizer checks passed"

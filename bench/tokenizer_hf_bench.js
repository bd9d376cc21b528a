// Encode throughput of the Hugging Face tokenizers library (npm `tokenizers`, the Rust core via N-API)
// on the same corpus, one document per call, no special tokens:
//   node bench/tokenizer_hf_bench.js TOKENIZER.json CORPUS [REPEATS]
'use strict';
const fs = require('fs');
const {Tokenizer} = require('../tests/js/node_modules/tokenizers');

async function main() {
  const [tokPath, corpus, repeatsArg] = process.argv.slice(2);
  const docs = fs.readFileSync(corpus, 'utf8').split('\n\x1e\n').filter((d) => d.length);
  const bytes = docs.reduce((n, d) => n + Buffer.byteLength(d), 0);
  const repeats = Number(repeatsArg || 3);
  let best = Infinity, tokens = 0, load = 0;
  for (let r = 0; r < repeats; r++) {
    const t0 = process.hrtime.bigint();
    const tok = Tokenizer.fromFile(tokPath);
    const t1 = process.hrtime.bigint();
    load = Number(t1 - t0) / 1e9;
    tokens = 0;
    for (const d of docs) tokens += (await tok.encode(d, null, {addSpecialTokens: false})).getIds().length;
    best = Math.min(best, Number(process.hrtime.bigint() - t1) / 1e9);
  }
  console.log(`HF tokenizers: ${docs.length} documents, ${(bytes / 1e6).toFixed(2)} MB, ${tokens} tokens, ` +
              `encode ${best.toFixed(3)} s (best of ${repeats}) = ${(bytes / 1e6 / best).toFixed(2)} MB/s; ` +
              `load ${load.toFixed(2)} s`);
}
main().catch((e) => { console.error(e); process.exit(1); });

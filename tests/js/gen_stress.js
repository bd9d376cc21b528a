// Writes deterministic random stress strings for the tokenizer tests, one JSON string per line:
//   node gen_stress.js OUT.jsonl COUNT SEED [TOKENIZER.json...]
// Each string joins random fragments: ASCII prose, digits, whitespace runs, CJK, kana, Hangul, emoji
// (ZWJ sequences, skin tones, flags), combining marks (NFC-composable and not), RTL scripts, symbols,
// contractions, random code points, and the added tokens of the given tokenizers (whole and broken).
'use strict';
const fs = require('fs');
const {execFileSync} = require('child_process');
const [out, countArg, seedArg, ...tokFiles] = process.argv.slice(2);
let state = Number(seedArg) >>> 0;
function rand() {  // mulberry32: small, deterministic across Node versions
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (n) => Math.floor(rand() * n);
const pick = (a) => a[int(a.length)];
// Code points unassigned in Unicode 14.0 (Debian 12's Python, and its PCRE2 10.42 tables) are left out:
// Hugging Face's Oniguruma classifies by Unicode 16, so characters assigned since then (e.g. U+1FAAE)
// can split differently. docs/DATA.md states this limit.
const unassigned14 = JSON.parse(execFileSync('/usr/bin/python3', ['-c', `
import json, sys, unicodedata
assert unicodedata.unidata_version == "14.0.0", unicodedata.unidata_version
print(json.dumps([c for c in range(0x30000) if unicodedata.category(chr(c)) in ("Cn", "Cs")]))`]));
const skip = new Set(unassigned14);
const range = (lo, hi) => {
  for (;;) {
    const c = lo + int(hi - lo + 1);
    if (!skip.has(c)) return String.fromCodePoint(c);
  }
};
const repeat = (f, n) => Array.from({length: n}, f).join('');

const specials = [];
for (const f of tokFiles)
  for (const t of JSON.parse(fs.readFileSync(f, 'utf8')).added_tokens) specials.push(t.content);
const words = ['the', 'The', 'of', 'and', 'whale', 'Congress', 'naïve', 'café', 'über', 'don\'t', 'I\'m',
               'HE\'LL', 'we\'ve', 'it\'s', 'they\'RE', 'state-of-the-art', 'e.g.', 'U.S.A.', 'hello', 'world',
               'tokenizer', 'BPE', 'DeepSeek', 'x86_64', 'foo_bar', 'CamelCase', 'ALLCAPS', 'a', 'I'];
const spaces = [' ', '  ', '   ', '\t', '\n', '\n\n', '\r\n', '\r', ' \n ', '\u00a0', '\u3000', '\u2028', '\u2029',
                '\u200b', '\u180e', '\u0085', '\u000b', '\u000c', '\u2003', '\u202f', '\u205f', '\ufeff'];
const emoji = ['😀', '👍🏽', '👨‍👩‍👧‍👦', '🏳️‍🌈', '🇯🇵', '🇺🇸', '❤️', '🤖', '🧪', '✨', '🫠', '👩🏿‍💻', '1️⃣', '#️⃣'];
const fragments = [
  () => pick(words),
  () => ' ' + pick(words),
  () => repeat(() => pick(words), 1 + int(4)),
  () => repeat(() => range(0x30, 0x39), 1 + int(12)),          // digit runs
  () => repeat(() => range(0x660, 0x669), 1 + int(5)),         // Arabic-Indic digits
  () => repeat(() => range(0xff10, 0xff19), 1 + int(4)),       // fullwidth digits
  () => pick(['½', '²', '³', 'Ⅻ', '①', '٣', '९', '〇', '𝟙']),    // other \p{N}
  () => repeat(() => pick(spaces), 1 + int(6)),
  () => ' '.repeat(1 + int(40)),
  () => repeat(() => range(0x4e00, 0x9fff), 1 + int(8)),       // CJK (DeepSeek splits 4E00-9FA5)
  () => repeat(() => range(0x3400, 0x4dbf), 1 + int(3)),       // CJK extension A
  () => repeat(() => range(0x20000, 0x2a6df), 1 + int(3)),     // CJK extension B (astral)
  () => repeat(() => range(0x3040, 0x30ff), 1 + int(8)),       // hiragana + katakana
  () => repeat(() => range(0xac00, 0xd7a3), 1 + int(6)),       // Hangul syllables
  () => range(0x1100, 0x1112) + range(0x1161, 0x1175) + (rand() < .5 ? range(0x11a8, 0x11c2) : ''),  // jamo
  () => repeat(() => pick(emoji), 1 + int(4)),
  () => repeat(() => range(0x1f300, 0x1faff), 1 + int(4)),
  () => pick('aeiouAEIOUnc') + repeat(() => range(0x300, 0x36f), 1 + int(3)),  // combining marks
  () => 'e\u0301' + 'A\u030a' + 'n\u0303',                     // NFC composes these
  () => '\u1e9b\u0323' + 'q\u0307\u0323' + 'ḍ̇',              // canonical reordering
  () => '\u212b\u2126\u00c5',                                   // singletons (Angstrom, Ohm)
  () => repeat(() => range(0x5d0, 0x5ea), 1 + int(8)),         // Hebrew
  () => repeat(() => range(0x627, 0x64a), 1 + int(8)) + (rand() < .5 ? range(0x64b, 0x652) : ''),  // Arabic
  () => '\u202e' + pick(words) + '\u202c' + '\u200f',          // bidi controls
  () => repeat(() => range(0x900, 0x97f), 1 + int(6)),         // Devanagari
  () => repeat(() => range(0xe01, 0xe5b), 1 + int(6)),         // Thai
  () => repeat(() => range(0x410, 0x44f), 1 + int(8)),         // Cyrillic
  () => repeat(() => range(0x391, 0x3c9), 1 + int(6)),         // Greek
  () => repeat(() => pick('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~'), 1 + int(5)),
  () => pick('.,;:!?') + pick(words),                            // punctuation glued to letters
  () => repeat(() => range(0x2200, 0x22ff), 1 + int(4)),       // math symbols
  () => repeat(() => pick('€£¥₹₿©®™°±×÷§¶•…–—‘’“”«»'), 1 + int(4)),
  () => repeat(() => range(0xff01, 0xff5e), 1 + int(5)),       // fullwidth forms
  () => repeat(() => range(0x20, 0x7e), 1 + int(20)),          // printable ASCII soup
  () => repeat(() => range(0x1, 0x1f), 1 + int(3)),            // control characters
  () => repeat(() => range(0xa0, 0x2fff), 1 + int(5)),         // random BMP, lower blocks
  () => repeat(() => range(0, 0x2ffff), 1 + int(4)),          // any assigned code point
  () => 'x'.repeat(100 + int(400)),                              // long runs without whitespace
  () => repeat(() => pick(words), 30 + int(30)),
  () => specials.length ? pick(specials) : '',
  () => specials.length ? ' ' + pick(specials) + ' ' : '',
  () => specials.length ? pick(specials).slice(0, 1 + int(4)) : '',  // broken special tokens
  () => '<think>\n' + pick(words) + '\n</think>\n\n',
  () => '<｜User｜>' + pick(words) + '<｜Assistant｜>',
];

const lines = [];
for (let i = 0; i < Number(countArg); i++) {
  const n = 1 + int(i % 10 === 0 ? 40 : 8);
  let s = '';
  for (let k = 0; k < n; k++) s += pick(fragments)();
  lines.push(JSON.stringify(s));
}
fs.writeFileSync(out, lines.join('\n') + '\n');

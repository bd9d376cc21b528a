// Renders every chat-template fixture with the JavaScript references and writes the expected
// prompts for dsv3's test (tests/unit/tokenizer/test_chat_template_reference.cc).
//
//   node tests/js/template_reference.mjs ASSETS_DIR FIXTURES_DIR OUT.json [MODEL_DIR...]
//
// MODEL_DIRs add the chat_template of their tokenizer_config.json (named by the folder).
//
// References: @huggingface/jinja (the engine of transformers.js' apply_chat_template) for every
// template, and, for DeepSeek-V3's template, also @lenml/tokenizers' apply_chat_template on the real
// tokenizer; the two must agree or this script fails. (@lenml's older Jinja copy cannot parse R1's
// `content.split('</think>')[-1]`, so it checks V3 only.)
import { Template } from "@huggingface/jinja";
import { TokenizerLoader } from "@lenml/tokenizers";
import fs from "node:fs";
import path from "node:path";

const [assetsDir, fixturesDir, outPath, ...modelDirs] = process.argv.slice(2);
if (!outPath) {
  console.error("usage: node template_reference.mjs ASSETS_DIR FIXTURES_DIR OUT.json");
  process.exit(2);
}

const readJson = (p) => JSON.parse(fs.readFileSync(p, "utf8"));
const v3Dir = path.join(assetsDir, "deepseek_v3");
const v3Config = readJson(path.join(v3Dir, "tokenizer_config.json"));
const tokenText = (t) => (typeof t === "string" ? t : t.content);
const baseVars = { bos_token: tokenText(v3Config.bos_token), eos_token: tokenText(v3Config.eos_token) };

const templates = { deepseek_v3: v3Config.chat_template };
// Committed fixtures, then the published templates that scripts/fetch-assets.sh fetches.
for (const dir of [fixturesDir, path.join(assetsDir, "templates")]) {
  for (const f of fs.readdirSync(dir).sort()) {
    if (f.endsWith(".jinja")) templates[f.slice(0, -6)] = fs.readFileSync(path.join(dir, f), "utf8");
  }
}
for (const dir of modelDirs) {
  templates[path.basename(dir)] = readJson(path.join(dir, "tokenizer_config.json")).chat_template;
}
const conversations = readJson(path.join(fixturesDir, "conversations.json"));

const lenml = TokenizerLoader.fromPreTrained({
  tokenizerJSON: readJson(path.join(v3Dir, "tokenizer.json")),
  tokenizerConfig: v3Config,
});

function attempt(fn) {
  try {
    return { expected: fn() };
  } catch (e) {
    return { error: String(e.message ?? e) };
  }
}

const cases = [];
let disagreements = 0;
for (const [name, source] of Object.entries(templates)) {
  const compiled = new Template(source);
  for (const conv of conversations) {
    for (const addGenerationPrompt of [false, true]) {
      const vars = { ...baseVars, ...(conv.vars ?? {}) };
      const context = { ...vars, messages: conv.messages, add_generation_prompt: addGenerationPrompt };
      const result = attempt(() => compiled.render(context));
      if (name === "deepseek_v3") {
        const other = attempt(() =>
          lenml.apply_chat_template(conv.messages, {
            tokenize: false,
            add_generation_prompt: addGenerationPrompt,
            ...(conv.vars ?? {}),
          }),
        );
        if (JSON.stringify(other) !== JSON.stringify(result)) {
          ++disagreements;
          console.error(`references disagree on ${name}/${conv.name}/gen=${addGenerationPrompt}:`);
          console.error("  @huggingface/jinja:", JSON.stringify(result));
          console.error("  @lenml/tokenizers: ", JSON.stringify(other));
        }
      }
      cases.push({ template: name, conversation: conv.name, add_generation_prompt: addGenerationPrompt,
                   messages: conv.messages, vars, ...result });
    }
  }
}
if (disagreements) process.exit(1);

const out = { reference: "@huggingface/jinja 0.5.11 (DeepSeek-V3 also @lenml/tokenizers 3.7.2)", templates, cases };
fs.mkdirSync(path.dirname(outPath), { recursive: true });
fs.writeFileSync(outPath, JSON.stringify(out, null, 1));
const errors = cases.filter((c) => c.error).length;
console.log(`template_reference.mjs: ${cases.length} renders of ${Object.keys(templates).length} templates ` +
            `(${errors} raised errors) -> ${outPath}`);

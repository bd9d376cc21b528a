// dsv3 serve --speculative mtp (issue 17): streamed greedy replies are the same text as without
// speculation, for several requests decoding together, with the draft counts in each response's
// usage (completion_tokens_details) and the speculative counters in /metrics; a seeded sampled
// request repeats its text. The tiny model of `dsv3 init` has a random MTP module, so its drafts
// are rarely accepted: every step rolls the caches back, the path that must be exact (the
// accepting path is BatchScheduler.SpeculativeSamplingMatchesTheSpeculativeGenerator's). A model
// without MTP is refused at start-up.
//   node speculative_check.mjs DSV3 MODEL_DIR
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { startServer, requireJs, check, fail, metric, waitFor } from "./harness.mjs";

const OpenAI = requireJs("openai").default;
const [dsv3, model] = process.argv.slice(2);
const TOKENS = 20;
const prompts = Array.from({ length: 3 }, (_, i) => "Question " + i + ": " + "why is the sky blue? ".repeat(1 + 2 * i));

async function streamed(url, content, sampling = { temperature: 0 }) {
  const client = new OpenAI({ baseURL: url + "/v1", apiKey: "none", maxRetries: 0 });
  const stream = await client.chat.completions.create({
    model: "tiny", messages: [{ role: "user", content }], max_tokens: TOKENS, ignore_eos: true,
    stream: true, stream_options: { include_usage: true }, ...sampling });
  let text = "", usage = null;
  for await (const ch of stream) {
    if (ch.usage) usage = ch.usage;
    if (!ch.choices.length) continue;
    const d = ch.choices[0].delta;
    text += (d.reasoning_content || "") + (d.content || "");
  }
  return { text, usage };
}

async function serveAll(args) {
  const srv = await startServer(dsv3, ["-m", model, "--slots", "3", "--ctx", "512", ...args]);
  try {
    const replies = await Promise.all(prompts.map((p) => streamed(srv.url, p)));
    // Sampled: a seed gives the same text again (the drafts are seeded from it too), whichever
    // slot it runs in and whatever that slot ran before.
    const hot = { temperature: 2, seed: 5 };
    replies.push(await streamed(srv.url, prompts[0], hot), await streamed(srv.url, prompts[0], hot));
    // The counters move at the end of a step, after its tokens went out: wait for it.
    await waitFor(async () => (await metric(srv.url, "dsv3_slots_busy")) === 0, 10000, "idle slots");
    const m = {};
    for (const name of ["steps_total", "drafts_total", "drafts_accepted_total", "tokens_total", "tokens_per_step"])
      m[name] = await metric(srv.url, "dsv3_speculative_" + name);
    const { code } = await srv.stop();
    check(code === 0, "exit code " + code);
    return { replies, m, stderr: srv.stderr() };
  } catch (e) {
    fail(e.stack + "\nserver stderr:\n" + srv.stderr());
  }
}

const plain = await serveAll([]);
const spec = await serveAll(["--speculative", "mtp", "--draft", "2"]);
const [hot1, hot2] = spec.replies.slice(prompts.length);
check(hot1.text === hot2.text, "a seeded request repeats:\n" + hot1.text + "\n" + hot2.text);
for (let i = 0; i < prompts.length; ++i) {
  const a = plain.replies[i], b = spec.replies[i];
  check(a.usage.completion_tokens === TOKENS && b.usage.completion_tokens === TOKENS, "20 tokens each");
  check(a.text === b.text, "request " + i + ": speculative text differs\n" + JSON.stringify(b.text) +
        "\nwithout\n" + JSON.stringify(a.text));
  check(a.usage.completion_tokens_details === undefined, "no draft counts without speculation");
  const d = b.usage.completion_tokens_details;
  check(d && d.accepted_prediction_tokens >= 0 && d.rejected_prediction_tokens > 0,
        "usage has the draft counts: " + JSON.stringify(b.usage));
}
check(plain.m.steps_total === 0 && plain.m.drafts_total === 0, "no speculative counts without it");
// Every token but each reply's first comes from a speculative step.
check(spec.m.tokens_total === (prompts.length + 2) * (TOKENS - 1), "tokens_total " + spec.m.tokens_total);
check(spec.m.steps_total > 0 && spec.m.drafts_total >= spec.m.steps_total,
      "steps and drafts: " + JSON.stringify(spec.m));
check(spec.m.drafts_accepted_total <= spec.m.drafts_total, "accepted <= drafted");
check(spec.m.tokens_per_step >= 1, "tokens per step " + spec.m.tokens_per_step);
check(/speculative \(mtp\): \d+ of \d+ drafts accepted/.test(spec.stderr), "the exit log line: " + spec.stderr);

// A model without an MTP module is refused at start-up, with the error named.
const work = fs.mkdtempSync(path.join(os.tmpdir(), "dsv3-serve-spec-"));
const cfg = JSON.parse(fs.readFileSync(path.join(model, "config.json"), "utf8"));
cfg.num_nextn_predict_layers = 0;
fs.writeFileSync(path.join(work, "config.json"), JSON.stringify(cfg));
const init = spawnSync(dsv3, ["init", "--config", path.join(work, "config.json"), "-o", path.join(work, "model"),
                              "--tokenizer", model], { encoding: "utf8" });
check(init.status === 0, "dsv3 init: " + init.stderr);
const refused = spawnSync(dsv3, ["serve", "-m", path.join(work, "model"), "--port", "0", "--speculative", "mtp"],
                          { encoding: "utf8", timeout: 60000 });
fs.rmSync(work, { recursive: true, force: true });
check(refused.status === 1 && /no MTP module/.test(refused.stderr) && /hint:/.test(refused.stderr),
      "a model without MTP is refused: " + refused.status + " " + refused.stderr);
console.log("speculative = plain: 3 concurrent streamed requests x " + TOKENS + " tokens; hot: " +
            JSON.stringify(hot1.usage.completion_tokens_details) + "; " +
            JSON.stringify(spec.m));

// Batched = alone (issue 16): under greedy decoding a request's tokens are the same whether it runs
// alone or among 8 concurrent requests (one forward pass per step, prompts prefilled in chunks
// beside other sequences' decode rows, prefixes reused from earlier requests' caches). The token
// ids are compared through logprobs' bytes, and the log-probabilities to 1e-5: the inference GEMMs
// are row-independent, so they should match bit for bit; 1e-5 only allows for the JSON round trip.
//   node batched_check.mjs DSV3 MODEL_DIR
import { startServer, check, fail } from "./harness.mjs";

const [dsv3, model] = process.argv.slice(2);
// --batch-rows 48: a step holds 8 decode rows and 40 prompt rows, so the longer prompts are
// prefilled in several chunks while the others decode.
const srv = await startServer(dsv3, ["-m", model, "--slots", "8", "--ctx", "1024", "--batch-rows", "48"]);
const prompts = Array.from({ length: 8 }, (_, i) =>
  "Request " + i + ": " + "the quick brown fox jumps over the lazy dog ".repeat(1 + 3 * i));
async function run(content) {
  const res = await fetch(srv.url + "/v1/chat/completions", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ messages: [{ role: "user", content }], temperature: 0, max_tokens: 24,
                           ignore_eos: true, logprobs: true }) });
  const j = await res.json();
  if (res.status !== 200) fail("status " + res.status + ": " + JSON.stringify(j));
  const c = j.choices[0];
  return { text: (c.message.reasoning_content || "") + "|" + c.message.content,
           tokens: c.logprobs.content.map((e) => e.bytes.join(",")),
           logprobs: c.logprobs.content.map((e) => e.logprob), usage: j.usage };
}
try {
  const alone = [];
  for (const p of prompts) alone.push(await run(p));
  check(alone.every((a) => a.tokens.length === 24), "24 tokens each");
  check(alone.some((a) => a.usage.prompt_tokens > 48), "some prompts need several chunks");
  for (let round = 0; round < 2; ++round) {  // the second round reuses cached prefixes
    const together = await Promise.all(prompts.map(run));
    for (let i = 0; i < 8; ++i) {
      check(JSON.stringify(together[i].tokens) === JSON.stringify(alone[i].tokens),
            "round " + round + ", request " + i + ": tokens differ batched\n" + together[i].text + "\nalone\n" + alone[i].text);
      for (let k = 0; k < 24; ++k)
        check(Math.abs(together[i].logprobs[k] - alone[i].logprobs[k]) <= 1e-5,
              "request " + i + " token " + k + ": logprob " + together[i].logprobs[k] + " vs " + alone[i].logprobs[k]);
    }
    if (round === 1)
      check(together.some((t) => t.usage.prompt_tokens_details.cached_tokens > 0),
            "the repeated prompts reuse cached prefixes");
  }
} catch (e) {
  fail(e.stack + "\nserver stderr:\n" + srv.stderr());
}
const { code } = await srv.stop();
check(code === 0, "exit code " + code);
console.log("batched = alone: 8 requests x 24 tokens identical, twice");

// The official `openai` npm client against dsv3 serve on a tiny model (issue 16): chat completions
// whole and streamed, reasoning_content, logprobs, usage, seeds, /v1/completions, /v1/models,
// /health, /metrics and errors as the client raises them.
//   node openai_check.mjs DSV3 MODEL_DIR
import { startServer, requireJs, check, fail, metric } from "./harness.mjs";

const OpenAI = requireJs("openai").default;
const [dsv3, model] = process.argv.slice(2);
const KEY = "test-key-123";
const srv = await startServer(dsv3, ["-m", model, "--slots", "2", "--ctx", "512", "--api-key", KEY]);
const client = new OpenAI({ baseURL: srv.url + "/v1", apiKey: KEY, maxRetries: 0 });
const ask = { model: "tiny", messages: [{ role: "system", content: "Be brief." },
                                        { role: "user", content: "Hello there" }] };
try {
  // /v1/models and /health
  const models = await client.models.list();
  check(models.data.length === 1 && typeof models.data[0].id === "string", "models: " + JSON.stringify(models.data));
  const health = await fetch(srv.url + "/health");
  check(health.status === 200 && (await health.json()).status === "ok", "/health");

  // A whole reply, greedy: the R1-style template of `dsv3 init` opens <think>, so the text is
  // reasoning until the model writes </think>.
  const whole = await client.chat.completions.create({ ...ask, temperature: 0, max_tokens: 12 });
  const c0 = whole.choices[0];
  check(whole.object === "chat.completion" && whole.id.startsWith("chatcmpl-"), "object/id: " + JSON.stringify(whole));
  check(c0.message.role === "assistant", "role");
  check(typeof c0.message.content === "string" && typeof c0.message.reasoning_content === "string",
        "content and reasoning_content are strings: " + JSON.stringify(c0.message));
  check(["stop", "length"].includes(c0.finish_reason), "finish_reason " + c0.finish_reason);
  const u = whole.usage;
  check(u.prompt_tokens > 5 && u.completion_tokens >= 1 && u.completion_tokens <= 12 &&
        u.total_tokens === u.prompt_tokens + u.completion_tokens, "usage " + JSON.stringify(u));
  check(c0.finish_reason === "stop" || u.completion_tokens === 12, "length means 12 tokens");

  // The same request streamed: the same text, in reasoning_content/content deltas; the role
  // first, finish_reason last, then usage (stream_options.include_usage).
  const stream = await client.chat.completions.create({ ...ask, temperature: 0, max_tokens: 12, stream: true,
                                                        stream_options: { include_usage: true } });
  let reasoning = "", content = "", finish = null, usage = null, chunks = 0, role = null;
  for await (const ch of stream) {
    ++chunks;
    check(ch.object === "chat.completion.chunk", "chunk object " + ch.object);
    if (ch.usage) usage = ch.usage;
    if (!ch.choices.length) continue;
    const d = ch.choices[0].delta;
    if (d.role) role = d.role;
    reasoning += d.reasoning_content || "";
    content += d.content || "";
    if (ch.choices[0].finish_reason) finish = ch.choices[0].finish_reason;
  }
  check(role === "assistant", "streamed role");
  check(chunks >= 3, "streamed in " + chunks + " chunks");
  check(reasoning === c0.message.reasoning_content && content === c0.message.content,
        "streamed text equals the whole reply:\n" + JSON.stringify([reasoning, content]) + "\n" +
        JSON.stringify([c0.message.reasoning_content, c0.message.content]));
  check(finish === c0.finish_reason, "streamed finish_reason " + finish);
  check(usage && usage.completion_tokens === u.completion_tokens, "streamed usage " + JSON.stringify(usage));
  check(reasoning.length > 0 || content.length > 0, "some text came");

  // The raw stream ends with data: [DONE].
  const raw = await fetch(srv.url + "/v1/chat/completions", {
    method: "POST", headers: { "Content-Type": "application/json", Authorization: "Bearer " + KEY },
    body: JSON.stringify({ ...ask, max_tokens: 3, stream: true }) });
  check(raw.headers.get("content-type").startsWith("text/event-stream"), "SSE content type");
  const rawText = await raw.text();
  check(rawText.trimEnd().endsWith("data: [DONE]"), "stream ends with [DONE]: " + rawText.slice(-80));

  // logprobs: the chosen token's log-probability and the top 3, most likely first; greedy picks
  // the most likely; probabilities are at most 1 and sum to at most 1.
  const lp = await client.chat.completions.create({ ...ask, temperature: 0, max_tokens: 5, logprobs: true, top_logprobs: 3 });
  const entries = lp.choices[0].logprobs.content;
  check(entries.length === lp.usage.completion_tokens, "one logprobs entry per token");
  for (const e of entries) {
    check(e.top_logprobs.length === 3, "3 top_logprobs");
    check(e.logprob <= 0 && Array.isArray(e.bytes), "logprob <= 0 with bytes");
    check(e.top_logprobs[0].logprob >= e.top_logprobs[1].logprob && e.top_logprobs[1].logprob >= e.top_logprobs[2].logprob, "sorted");
    check(Math.abs(e.top_logprobs[0].logprob - e.logprob) < 1e-6, "greedy takes the likeliest: " + JSON.stringify(e));
    check(e.top_logprobs.reduce((s, t) => s + Math.exp(t.logprob), 0) <= 1 + 1e-5, "probabilities sum <= 1");
  }

  // Seeds: the same seed samples the same text at temperature 1; penalties and top_p are accepted.
  const sampled = (seed) => client.chat.completions.create({ ...ask, temperature: 1, top_p: 0.9, seed, max_tokens: 16,
                                                              frequency_penalty: 0.5, presence_penalty: 0.5 });
  const [s1, s2] = await Promise.all([sampled(7), sampled(7)]);
  check(JSON.stringify(s1.choices[0].message) === JSON.stringify(s2.choices[0].message), "same seed, same text");

  // /v1/completions: the raw text; a stop string cuts it exactly (taken from the greedy text).
  const comp = await client.completions.create({ model: "tiny", prompt: "Once upon a time", temperature: 0, max_tokens: 24, ignore_eos: true });
  const text = comp.choices[0].text;
  check(comp.object === "text_completion" && comp.usage.completion_tokens === 24, "completions " + JSON.stringify(comp));
  if (text.length >= 8) {
    const stop = text.slice(4, 8);
    const cut = await client.completions.create({ model: "tiny", prompt: "Once upon a time", temperature: 0, max_tokens: 24, stop: [stop], ignore_eos: true });
    check(cut.choices[0].text === text.slice(0, text.indexOf(stop)) && cut.choices[0].finish_reason === "stop",
          "stop string cuts: " + JSON.stringify([text, stop, cut.choices[0].text]));
  }
  // A huge max_tokens is capped by the context: finish_reason length at --ctx.
  const capped = await client.completions.create({ model: "tiny", prompt: "a", temperature: 0, max_tokens: 100000, ignore_eos: true });
  check(capped.choices[0].finish_reason === "length" &&
        capped.usage.prompt_tokens + capped.usage.completion_tokens === 512, "capped by --ctx: " + JSON.stringify(capped.usage));

  // Errors as the client raises them: status, OpenAI's error shape, the message.
  const expectError = async (what, status, re, p) => {
    try { await p; } catch (e) {
      check(e.status === status, what + ": status " + e.status + " not " + status);
      check(re.test(e.message) && e.error && typeof e.error.message === "string", what + ": message " + e.message);
      return;
    }
    fail(what + ": no error");
  };
  await expectError("temperature 3", 400, /temperature must be in \[0, 2\]/,
                    client.chat.completions.create({ ...ask, temperature: 3 }));
  await expectError("bad role", 400, /role 'robot' is not supported/,
                    client.chat.completions.create({ ...ask, messages: [{ role: "robot", content: "x" }] }));
  await expectError("n = 2", 400, /n must be/, client.chat.completions.create({ ...ask, n: 2 }));
  const wrongKey = new OpenAI({ baseURL: srv.url + "/v1", apiKey: "nope", maxRetries: 0 });
  await expectError("wrong key", 401, /API key/, wrongKey.models.list());
  // With a key every route but the page and /health needs it (default deny).
  check((await fetch(srv.url + "/metrics")).status === 401, "/metrics without the key: 401");
  check((await fetch(srv.url + "/nowhere")).status === 401, "an unknown route without the key: 401");
  check((await fetch(srv.url + "/")).status === 200, "the page without the key: 200");

  check(await metric(srv.url, "dsv3_requests_total", { Authorization: "Bearer " + KEY }) >= 8, "requests counted");
  check(await metric(srv.url, "dsv3_completion_tokens_total", { Authorization: "Bearer " + KEY }) > 0, "tokens counted");
} catch (e) {
  fail(e.stack + "\nserver stderr:\n" + srv.stderr());
}
const { code } = await srv.stop();
check(code === 0, "SIGTERM: exit code " + code + "\n" + srv.stderr());
console.log("openai client checks passed");

// Bad requests to dsv3 serve (issue 16): each case its status code and message, in OpenAI's error
// shape; the server keeps serving the others throughout and after.
//   node bad_requests.mjs DSV3 MODEL_DIR
import net from "node:net";
import { startServer, check, fail, sleep } from "./harness.mjs";

const [dsv3, model] = process.argv.slice(2);
const srv = await startServer(dsv3, ["-m", model, "--slots", "1", "--queue", "1", "--ctx", "64",
                                     "--max-body", "4096", "--read-timeout", "1"]);
const chat = srv.url + "/v1/chat/completions";
const hello = [{ role: "user", content: "hi" }];

async function expect(name, status, re, init, url = chat) {
  const res = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, ...init });
  const text = await res.text();
  let body;
  try { body = JSON.parse(text); } catch { fail(name + ": not JSON: " + text); }
  check(res.status === status, name + ": status " + res.status + " not " + status + ": " + text);
  check(body.error && typeof body.error.message === "string" && typeof body.error.type === "string",
        name + ": OpenAI's error shape: " + text);
  check(re.test(body.error.message), name + ": message " + JSON.stringify(body.error.message) + " !~ " + re);
  return res;
}
const json = (o) => ({ body: JSON.stringify(o) });

try {
  await expect("malformed JSON", 400, /not valid JSON/, { body: '{"messages": [' });
  await expect("duplicate keys", 400, /not valid JSON.*duplicate/i, { body: '{"a": 1, "a": 2}' });
  await expect("an array body", 400, /must be a JSON object/, json([1, 2]));
  await expect("no messages", 400, /messages must be a non-empty list/, json({}));
  await expect("empty messages", 400, /messages must be a non-empty list/, json({ messages: [] }));
  await expect("messages not a list", 400, /messages must be a non-empty list/, json({ messages: "hi" }));
  await expect("message not an object", 400, /messages\[0\] must be an object/, json({ messages: [3] }));
  await expect("unknown role", 400, /messages\[0\]\.role 'tool' is not supported/,
               json({ messages: [{ role: "tool", content: "x" }] }));
  await expect("content of a wrong type", 400, /messages\[0\]\.content must be a string/,
               json({ messages: [{ role: "user", content: 5 }] }));
  await expect("content missing", 400, /messages\[0\]\.content is missing/, json({ messages: [{ role: "user" }] }));
  await expect("image part", 400, /only \{"type": "text"/,
               json({ messages: [{ role: "user", content: [{ type: "image_url", image_url: {} }] }] }));
  await expect("temperature a string", 400, /temperature must be a number/, json({ messages: hello, temperature: "hot" }));
  await expect("temperature out of range", 400, /temperature must be in \[0, 2\], not 5/, json({ messages: hello, temperature: 5 }));
  await expect("top_p 0", 400, /top_p must be above 0/, json({ messages: hello, top_p: 0 }));
  await expect("max_tokens 0", 400, /max_tokens must be in 1 \.\./, json({ messages: hello, max_tokens: 0 }));
  await expect("max_tokens 1.5", 400, /max_tokens must be an integer/, json({ messages: hello, max_tokens: 1.5 }));
  await expect("max_tokens 2^63", 400, /max_tokens must be an integer/,
               { body: '{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 9223372036854775808}' });
  await expect("NaN temperature", 400, /not valid JSON/,
               { body: '{"messages": [{"role": "user", "content": "hi"}], "temperature": NaN}' });
  await expect("n 3", 400, /n must be in 1 \.\. 1/, json({ messages: hello, n: 3 }));
  await expect("stream not a bool", 400, /stream must be true or false/, json({ messages: hello, stream: "yes" }));
  await expect("empty stop", 400, /stop strings cannot be empty/, json({ messages: hello, stop: [""] }));
  await expect("five stops", 400, /at most 4/, json({ messages: hello, stop: ["a", "b", "c", "d", "e"] }));
  await expect("top_logprobs alone", 400, /top_logprobs needs logprobs/, json({ messages: hello, top_logprobs: 2 }));
  await expect("top_logprobs 21", 400, /top_logprobs must be in 0 \.\. 20/, json({ messages: hello, logprobs: true, top_logprobs: 21 }));
  await expect("invalid UTF-8", 400, /not valid UTF-8/,
               { body: Buffer.concat([Buffer.from('{"messages":[{"role":"user","content":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}]}')]) });
  await expect("prompt over the context", 400, /context of a slot is 64 tokens \(--ctx\)/,
               json({ messages: [{ role: "user", content: "word ".repeat(200) }] }));
  await expect("body over --max-body", 413, /over the limit of 4096 bytes \(--max-body\)/,
               json({ messages: [{ role: "user", content: "x".repeat(5000) }] }));
  await expect("token id outside the vocabulary", 400, /token ids in 0 \.\. 4095/, json({ prompt: [1, 99999] }),
               srv.url + "/v1/completions");
  await expect("completions without a prompt", 400, /prompt must be a string or a list of token ids/, json({}),
               srv.url + "/v1/completions");
  await expect("echo", 400, /echo is not supported/, json({ prompt: "a", echo: true }), srv.url + "/v1/completions");
  // Lone surrogates and NUL characters are text like any other (U+FFFD, U+0000): 200.
  for (const content of ["\\ud800 lone", "nul \\u0000 inside"]) {
    const r = await fetch(chat, { method: "POST", headers: { "Content-Type": "application/json" },
                                  body: '{"messages": [{"role": "user", "content": "' + content + '"}], "max_tokens": 2}' });
    check(r.status === 200, content + ": " + r.status + " " + await r.text());
  }
  // Huge headers: refused by the HTTP library, the server goes on.
  const big = await fetch(chat, { method: "POST", headers: { "X-Big": "y".repeat(20000) }, body: "{}" }).catch((e) => e);
  check(big instanceof Error || big.status >= 400, "a 20 kB header is refused");
  const nf = await fetch(srv.url + "/v1/nothing");
  const nfBody = await nf.json();
  check(nf.status === 404 && /no endpoint GET \/v1\/nothing/.test(nfBody.error.message), "404: " + JSON.stringify(nfBody));

  // A slow sender: headers promise a body that never comes; after --read-timeout the server
  // answers 400 naming it, and goes on.
  const answer = await new Promise((resolve) => {
    let got = "";
    const sock = net.connect(new URL(srv.url).port, "127.0.0.1", () => {
      sock.write("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{");
    });
    sock.on("data", (d) => { got += d; if (got.includes("}}")) { sock.destroy(); resolve(got); } });
    sock.on("error", () => {});
    sock.on("close", () => resolve(got));
    setTimeout(() => { sock.destroy(); resolve("nothing within 8 s"); }, 8000);
  });
  check(/^HTTP\/1\.1 400/.test(answer) && /did not arrive within 1 s \(--read-timeout\)/.test(answer),
        "a slow sender gets 400: " + answer);

  // A full queue: one slot, a queue of one; of four long requests at once, the last ones get 429
  // with Retry-After.
  const long = json({ messages: hello, max_tokens: 60, ignore_eos: true });
  const results = await Promise.all([0, 1, 2, 3].map(async () => {
    const r = await fetch(chat, { method: "POST", headers: { "Content-Type": "application/json" }, ...long });
    return { status: r.status, retry: r.headers.get("retry-after"), body: await r.text() };
  }));
  const busy = results.filter((r) => r.status === 429);
  check(busy.length >= 1 && results.filter((r) => r.status === 200).length >= 1,
        "429 when the queue is full: " + JSON.stringify(results.map((r) => r.status)));
  check(busy.every((r) => r.retry === "1" && /requests are already waiting for a slot \(--queue\)/.test(r.body)),
        "429 has Retry-After and names --queue: " + JSON.stringify(busy[0]));

  // Random corruptions of a valid body (a seeded generator: the same 150 bodies every run): each
  // gets 200 or a 4xx, never a 5xx or a dropped connection.
  let seed = 12345;
  const rand = (n) => {  // mulberry32
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) % n;
  };
  const valid = Buffer.from(JSON.stringify({ messages: [{ role: "system", content: "s" }, { role: "user", content: "héllo" }],
                                             max_tokens: 2, temperature: 0.5, stop: ["x"], logprobs: true, top_logprobs: 1 }));
  const statuses = {};
  for (let i = 0; i < 150; ++i) {
    const b = Buffer.from(valid);
    // Mostly printable ASCII, so that many stay JSON and reach the field checks.
    for (let k = 0, n = 1 + rand(3); k < n; ++k) b[rand(b.length)] = rand(8) ? 32 + rand(95) : rand(256);
    const r = await fetch(chat, { method: "POST", headers: { "Content-Type": "application/json" }, body: b });
    await r.text();
    statuses[r.status] = (statuses[r.status] || 0) + 1;
    check(r.status === 200 || (r.status >= 400 && r.status < 500), "corrupted body " + b.toString("latin1") + ": " + r.status);
  }
  console.log("corrupted bodies, statuses: " + JSON.stringify(statuses));

  // Still serving.
  const ok = await fetch(chat, { method: "POST", headers: { "Content-Type": "application/json" },
                                 body: JSON.stringify({ messages: hello, max_tokens: 2 }) });
  check(ok.status === 200, "a good request after the bad ones: " + ok.status);
} catch (e) {
  fail(e.stack + "\nserver stderr:\n" + srv.stderr());
}
const { code } = await srv.stop();
check(code === 0, "exit code " + code + "\n" + srv.stderr());
console.log("bad-request checks passed");

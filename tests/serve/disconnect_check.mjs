// A client that disconnects mid-stream cancels its sequence and frees its slot at once (issue 16),
// and SIGTERM drains: a running stream finishes with [DONE], new requests get 503, exit code 0.
//   node disconnect_check.mjs DSV3 MODEL_DIR
import { startServer, check, fail, metric, waitFor } from "./harness.mjs";

const [dsv3, model] = process.argv.slice(2);
const srv = await startServer(dsv3, ["-m", model, "--slots", "1", "--ctx", "4096"]);
const post = (body, signal) => fetch(srv.url + "/v1/chat/completions", {
  method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), signal });
const LONG = 4000;  // tokens the stream would take: far more than it gets before the disconnect
try {
  const ac = new AbortController();
  const res = await post({ messages: [{ role: "user", content: "Tell me a long story" }], stream: true,
                           max_tokens: LONG, ignore_eos: true }, ac.signal);
  const reader = res.body.getReader();
  let seen = "";
  while (!/"reasoning_content"|"content": ?"[^"]/.test(seen)) {
    const { value, done } = await reader.read();
    if (done) fail("the stream ended before any token");
    seen += new TextDecoder().decode(value);
  }
  check(await metric(srv.url, "dsv3_slots_busy") === 1, "the slot is busy while streaming");
  ac.abort();  // the client goes away
  await waitFor(async () => await metric(srv.url, "dsv3_slots_busy") === 0, 5000, "the slot to be freed");
  const generated = await metric(srv.url, "dsv3_completion_tokens_total");
  check(generated < LONG, "the sequence was cancelled, not finished: " + generated + " tokens");

  // The only slot serves the next request.
  const next = await post({ messages: [{ role: "user", content: "hi" }], max_tokens: 3 });
  check(next.status === 200, "next request: " + next.status);

  // SIGTERM while a stream runs: it finishes, a new request is refused, the process exits 0.
  const draining = await post({ messages: [{ role: "user", content: "hi" }], stream: true, max_tokens: 1500,
                                ignore_eos: true });
  const r2 = draining.body.getReader();
  await r2.read();
  srv.proc.kill("SIGTERM");
  await waitFor(async () => (await fetch(srv.url + "/health").catch(() => ({ status: 0 }))).status === 503,
                5000, "/health to answer 503 while draining");
  const refused = await post({ messages: [{ role: "user", content: "hi" }], max_tokens: 2 }).catch(() => null);
  check(refused === null || refused.status === 503, "a request while draining gets 503: " + (refused && refused.status));
  if (refused) check(refused.headers.get("retry-after") !== null, "503 has Retry-After");
  let rest = "";
  for (;;) {
    const { value, done } = await r2.read();
    if (done) break;
    rest += new TextDecoder().decode(value);
  }
  check(rest.trimEnd().endsWith("data: [DONE]") && /"finish_reason": ?"length"/.test(rest),
        "the running stream finished while draining: " + rest.slice(-200));
} catch (e) {
  fail(e.stack + "\nserver stderr:\n" + srv.stderr());
}
const { code } = await srv.exited;
check(code === 0, "exit code after SIGTERM " + code + "\n" + srv.stderr());

// --drain-timeout 0: SIGTERM cancels the running stream at once; it still ends properly.
const quick = await startServer(dsv3, ["-m", model, "--slots", "1", "--ctx", "4096", "--drain-timeout", "0"]);
try {
  const res = await fetch(quick.url + "/v1/chat/completions", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ messages: [{ role: "user", content: "hi" }], stream: true, max_tokens: LONG, ignore_eos: true }) });
  const reader = res.body.getReader();
  await reader.read();
  quick.proc.kill("SIGTERM");
  let rest = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    rest += new TextDecoder().decode(value);
  }
  check(/"finish_reason": ?"cancelled"/.test(rest) && rest.trimEnd().endsWith("data: [DONE]"),
        "a stream cancelled by the drain timeout ends with finish_reason cancelled and [DONE]: " + rest.slice(-200));
} catch (e) {
  fail(e.stack + "\nserver stderr:\n" + quick.stderr());
}
const quickExit = await quick.exited;
check(quickExit.code === 0, "exit code after SIGTERM with --drain-timeout 0: " + quickExit.code);
check(/cancelling the requests still running/.test(quick.stderr()), "says it cancelled: " + quick.stderr());
console.log("disconnect and drain checks passed");

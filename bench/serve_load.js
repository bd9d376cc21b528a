#!/usr/bin/env node
// Load test of an OpenAI-compatible server (issue 16; not a CI test): C concurrent streaming
// clients against one client at a time, on 127.0.0.1 only. Reports failed requests, aggregate
// generated tokens/s and time to first token (p50/p99). Starts `dsv3 serve` itself; with
// --peer "CMD" it also starts another server (CMD gets {port}: e.g. llama-server) and runs the
// same workload on it, interleaved round by round, so both see the same machine load.
//
//   node bench/serve_load.js --dsv3 build/dsv3 --model DIR [--slots 8] [--clients 32]
//        [--max-tokens 64] [--rounds 2] [--sequential 4] [--threads N] [--time-limit 600]
//        [--temperature T]
//        [--peer "llama-server -m model.gguf --port {port} -np 8 -c 32768"]
//
// Every request: a chat completion with stream: true, max_tokens tokens, ignore_eos (so every
// reply has the same length), temperature 0 (--temperature T: sampled, top_p 0.95, seeded). Tokens are counted from the server's usage record.
"use strict";
const { spawn } = require("node:child_process");
const net = require("node:net");

function args() {
  const a = { slots: 8, clients: 32, "max-tokens": 64, rounds: 2, sequential: 4, "time-limit": 600, temperature: 0 };
  const v = process.argv.slice(2);
  for (let i = 0; i < v.length; i += 2) {
    if (!v[i].startsWith("--") || v[i + 1] === undefined) throw new Error("usage: see the comment at the top");
    a[v[i].slice(2)] = v[i + 1];
  }
  if (!a.dsv3 || !a.model) throw new Error("--dsv3 BINARY and --model DIR are required");
  for (const k of ["slots", "clients", "max-tokens", "rounds", "sequential", "time-limit", "temperature"]) a[k] = Number(a[k]);
  return a;
}

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

async function waitHealthy(url, proc, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (proc.exitCode !== null) throw new Error("the server exited with " + proc.exitCode);
    try { if ((await fetch(url + "/health")).status === 200) return; } catch {}
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error("the server at " + url + " did not become healthy");
}

async function startServer(name, argv) {
  const port = await freePort();
  const cmd = argv.map((x) => x.replace("{port}", String(port)));
  const proc = spawn(cmd[0], cmd.slice(1), { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  proc.stderr.on("data", (d) => { err = (err + d).slice(-4000); });
  const url = "http://127.0.0.1:" + port;
  try { await waitHealthy(url, proc, 300000); } catch (e) { throw new Error(name + ": " + e.message + "\n" + err); }
  return { name, url, proc };
}

// One streamed request: {ok, ttft (s), tokens, seconds}.
async function one(url, i, maxTokens, temperature) {
  const t0 = performance.now();
  let ttft = null, tokens = 0, done = false;
  try {
    const res = await fetch(url + "/v1/chat/completions", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "Client " + i + ": write a story about the sea." }],
                             stream: true, stream_options: { include_usage: true }, max_tokens: maxTokens,
                             ignore_eos: true, temperature, top_p: temperature ? 0.95 : 1, seed: i }) });
    if (res.status !== 200) return { ok: false, why: "status " + res.status };
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done: end } = await reader.read();
      if (end) break;
      buf += dec.decode(value, { stream: true });
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const rec = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        if (!rec.startsWith("data: ")) continue;
        if (rec === "data: [DONE]") { done = true; continue; }
        const j = JSON.parse(rec.slice(6));
        if (j.usage) tokens = j.usage.completion_tokens;
        const d = j.choices && j.choices[0] && j.choices[0].delta;
        if (ttft === null && d && (d.content || d.reasoning_content)) ttft = (performance.now() - t0) / 1000;
      }
    }
  } catch (e) {
    return { ok: false, why: e.message };
  }
  const seconds = (performance.now() - t0) / 1000;
  return done && tokens > 0 ? { ok: true, ttft: ttft ?? seconds, tokens, seconds } : { ok: false, why: "no [DONE] or usage" };
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] : NaN;
};

async function round(srv, a, stats) {
  // One client at a time.
  for (let i = 0; i < a.sequential; ++i) {
    const t0 = performance.now();
    const r = await one(srv.url, i, a["max-tokens"], a.temperature);
    if (!r.ok) { stats.failed++; stats.why.push(r.why); continue; }
    stats.seqTokens += r.tokens;
    stats.seqSeconds += (performance.now() - t0) / 1000;
    stats.seqTtft.push(r.ttft);
  }
  // C clients at once.
  const t0 = performance.now();
  const rs = await Promise.all(Array.from({ length: a.clients }, (_, i) => one(srv.url, i, a["max-tokens"], a.temperature)));
  stats.conSeconds += (performance.now() - t0) / 1000;
  for (const r of rs) {
    if (!r.ok) { stats.failed++; stats.why.push(r.why); continue; }
    stats.conTokens += r.tokens;
    stats.conTtft.push(r.ttft);
  }
  stats.requests += a.sequential + a.clients;
}

async function main() {
  const a = args();
  const killer = setTimeout(() => { console.error("serve_load: over --time-limit, stopping"); process.exit(2); },
                            a["time-limit"] * 1000);
  const servers = [];
  const dsv3Args = [a.dsv3, "serve", "-m", a.model, "--host", "127.0.0.1", "--port", "{port}", "--slots", String(a.slots),
                    "--queue", String(a.clients), "--ctx", "1024"];
  if (a.threads) dsv3Args.push("-t", String(a.threads));
  servers.push(await startServer("dsv3", dsv3Args));
  if (a.peer) servers.push(await startServer("peer", a.peer.split(/\s+/)));
  const stats = servers.map(() => ({ requests: 0, failed: 0, why: [], seqTokens: 0, seqSeconds: 0, seqTtft: [],
                                     conTokens: 0, conSeconds: 0, conTtft: [] }));
  try {
    for (let r = 0; r < a.rounds; ++r)
      for (let s = 0; s < servers.length; ++s) await round(servers[s], a, stats[s]);
  } finally {
    for (const s of servers) s.proc.kill("SIGTERM");
    clearTimeout(killer);
  }
  for (let s = 0; s < servers.length; ++s) {
    const st = stats[s];
    const seq = st.seqTokens / st.seqSeconds, con = st.conTokens / st.conSeconds;
    console.log(`${servers[s].name}: ${st.requests} requests, ${st.failed} failed` +
                (st.failed ? " (" + [...new Set(st.why)].join("; ") + ")" : ""));
    console.log(`  one client at a time: ${seq.toFixed(1)} tokens/s, TTFT p50 ${(pct(st.seqTtft, 50) * 1000).toFixed(0)} ms`);
    console.log(`  ${a.clients} concurrent clients (--slots ${a.slots}): ${con.toFixed(1)} tokens/s aggregate ` +
                `(${(con / seq).toFixed(2)}x), TTFT p50 ${(pct(st.conTtft, 50) * 1000).toFixed(0)} ms, ` +
                `p99 ${(pct(st.conTtft, 99) * 1000).toFixed(0)} ms`);
  }
  process.exit(stats.some((st) => st.failed) ? 1 : 0);
}

main().catch((e) => { console.error("serve_load: " + e.message); process.exit(1); });

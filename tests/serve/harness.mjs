// Starts `dsv3 serve` for a test and stops it: node harness for tests/serve/*.mjs (tests/serve.cmake).
// The server listens on 127.0.0.1 with --port 0 (a free port); the first line it prints names it.
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
// The npm packages live in tests/js/node_modules (scripts/fetch-assets.sh installs them).
export const requireJs = createRequire(path.join(here, "..", "js", "package.json"));

export function fail(msg) {
  console.error("FAIL: " + msg);
  process.exit(1);
}

export function check(cond, msg) {
  if (!cond) fail(msg);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Servers still running when the test exits (a failed check exits at once) are killed with it.
const running = new Set();
process.on("exit", () => { for (const p of running) p.kill("SIGKILL"); });

// {url, proc, exited: Promise<{code, signal}>, stderr(): string, stop()}
export async function startServer(dsv3, args) {
  const proc = spawn(dsv3, ["serve", "--host", "127.0.0.1", "--port", "0", "-t", "1", ...args],
                     { stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  proc.stderr.on("data", (d) => { err += d; });
  running.add(proc);
  const exited = new Promise((resolve) => proc.on("exit", (code, signal) => {
    running.delete(proc);
    resolve({ code, signal });
  }));
  const url = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error("dsv3 serve did not start in 60 s:\n" + err)), 60000);
    proc.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/[0-9.]+:\d+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    exited.then(({ code }) => { clearTimeout(timer); reject(new Error("dsv3 serve exited " + code + ":\n" + err)); });
  });
  return {
    url, proc, exited,
    stderr: () => err,
    async stop() {
      proc.kill("SIGTERM");
      const r = await exited;
      return r;
    },
  };
}

// The value of a Prometheus metric in GET /metrics.
export async function metric(url, name, headers = {}) {
  const text = await (await fetch(url + "/metrics", { headers })).text();
  const m = text.match(new RegExp("^" + name + " (\\S+)$", "m"));
  if (!m) fail("metric " + name + " missing from /metrics:\n" + text);
  return Number(m[1]);
}

// Waits until fn() is true, checking every 50 ms, for at most ms.
export async function waitFor(fn, ms, what) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return;
    await sleep(50);
  }
  fail("timed out after " + ms + " ms waiting for " + what);
}

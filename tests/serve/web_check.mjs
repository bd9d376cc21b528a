// The chat page at / in headless Chromium (Debian's chromium, driven by puppeteer-core): type a
// message, see the reply stream in, stop a reply midway (the slot is freed), open the reasoning
// block. Exits 77 (ctest: skipped), saying why loudly, only when Chromium cannot start here.
//   node web_check.mjs DSV3 MODEL_DIR [CHROMIUM]
import fs from "node:fs";
import { startServer, requireJs, check, fail, metric, waitFor, sleep } from "./harness.mjs";

const puppeteer = requireJs("puppeteer-core");
const [dsv3, model, chromiumArg] = process.argv.slice(2);
const chromium = chromiumArg || ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => fs.existsSync(p));
if (!chromium) {
  console.error("SKIPPED: no Chromium (install Debian's chromium: scripts/setup-deps.sh --test)");
  process.exit(77);
}
let browser;
try {
  // As root Chromium refuses its sandbox; the page is our own, served from 127.0.0.1.
  const args = process.getuid && process.getuid() === 0 ? ["--no-sandbox"] : [];
  browser = await puppeteer.launch({ executablePath: chromium, headless: true, args: [...args, "--disable-gpu"] });
} catch (e) {
  console.error("SKIPPED: Chromium (" + chromium + ") cannot start in this sandbox: " + e.message);
  process.exit(77);
}

const srv = await startServer(dsv3, ["-m", model, "--slots", "2", "--ctx", "4096"]);
try {
  const page = await browser.newPage();
  page.on("pageerror", (e) => fail("page error: " + e.message));
  // The random model may sample its EOS at any point: the test's requests ask to ignore it, so
  // that replies run to max_tokens (the page itself sends what the user set).
  await page.setRequestInterception(true);
  page.on("request", (r) => {
    if (!r.url().endsWith("/v1/chat/completions")) return r.continue();
    const body = JSON.parse(r.postData());
    body.ignore_eos = true;
    r.continue({ postData: JSON.stringify(body) });
  });
  await page.goto(srv.url + "/", { waitUntil: "load" });
  check((await page.title()) === "dsv3 chat", "the page's title");

  // 1. A message and its reply, streamed: the reply's text changes many times before it ends.
  await page.type("#max-tokens", "300");
  await page.$eval("#max-tokens", (e) => e.dispatchEvent(new Event("change")));
  await page.evaluate(() => {
    window.__updates = 0;
    new MutationObserver(() => { window.__updates++; })
      .observe(document.getElementById("log"), { subtree: true, characterData: true, childList: true });
  });
  await page.type("#input", "Hello, who are you?");
  await page.click("#send");
  await page.waitForFunction(() => !document.getElementById("send").disabled &&
                             document.querySelector(".msg.assistant .stats").textContent !== "", { timeout: 60000 });
  const reply = await page.evaluate(() => {
    const m = document.querySelectorAll(".msg.assistant");
    const last = m[m.length - 1];
    return { reasoning: last.querySelector(".reasoning-text").textContent,
             content: last.querySelector(".content").textContent,
             stats: last.querySelector(".stats").textContent, updates: window.__updates,
             user: document.querySelector(".msg.user .content").textContent };
  });
  check(reply.user === "Hello, who are you?", "the user's message shown: " + reply.user);
  check(reply.reasoning.length + reply.content.length > 0, "a reply: " + JSON.stringify(reply));
  check(reply.updates >= 5, "the reply streamed in (" + reply.updates + " updates)");
  check(/tokens\/s/.test(reply.stats), "tokens/s shown: " + reply.stats);

  // 2. The reasoning block (the R1-style template of `dsv3 init` opens <think>): closed, then
  // opened by a click.
  const opened = await page.evaluate(() => {
    const d = document.querySelector(".msg.assistant details.reasoning");
    const before = d.open;
    d.querySelector("summary").click();
    return { before, after: d.open, height: d.querySelector(".reasoning-text").offsetHeight };
  });
  check(!opened.before && opened.after && opened.height > 0, "the reasoning block opens: " + JSON.stringify(opened));

  // 3. Stop a reply midway: a long one, stopped once text has come; the slot is freed and the
  // text stops growing.
  await page.$eval("#max-tokens", (e) => { e.value = "3500"; e.dispatchEvent(new Event("change")); });
  await page.type("#input", "Tell me everything");
  await page.click("#send");
  await page.waitForFunction(() => {
    const m = document.querySelectorAll(".msg.assistant");
    const last = m[m.length - 1];
    return last.textContent.length > 20;
  }, { timeout: 60000 });
  check(await metric(srv.url, "dsv3_slots_busy") === 1, "a slot decodes the reply");
  await page.click("#stop");
  await page.waitForFunction(() => !document.getElementById("send").disabled, { timeout: 10000 });
  const len = () => page.evaluate(() => {
    const m = document.querySelectorAll(".msg.assistant");
    return m[m.length - 1].textContent.length;
  });
  const l1 = await len();
  await waitFor(async () => await metric(srv.url, "dsv3_slots_busy") === 0, 5000, "the stopped reply's slot to be freed");
  check(await metric(srv.url, "dsv3_completion_tokens_total") < 300 + 3500, "the stopped reply did not run to its end");
  await sleep(300);
  check((await len()) === l1, "the text stopped growing");
  const stats = await page.evaluate(() => [...document.querySelectorAll(".msg.assistant .stats")].pop().textContent);
  check(stats === "stopped", "the reply says stopped: " + stats);

  // 4. Conversations are kept in the browser: a reload shows them again.
  await page.reload({ waitUntil: "load" });
  const kept = await page.evaluate(() => document.querySelectorAll(".msg").length);
  check(kept === 4, "the conversation survives a reload: " + kept + " messages");
} catch (e) {
  fail(e.stack + "\nserver stderr:\n" + srv.stderr());
} finally {
  await browser.close();
}
const { code } = await srv.stop();
check(code === 0, "exit code " + code);
console.log("web page checks passed in headless Chromium");

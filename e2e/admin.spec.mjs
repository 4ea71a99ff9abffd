// End-to-end: chatd's operator page (/admin) in real headless Chromium.
//
// The page is opened on an idle server; then this script opens a stream and runs a send load
// (a few hundred sends over a few seconds, several at a time) into a namespace of its own. The
// page, polling /metrics and /admin/namespaces every second, must chart it: the sends/s chart
// rises above zero while the load runs, p99 latency and disk use get values, the open stream
// is counted, and the namespace's row appears with a message count that grows to every send.
//
//   CHATD_URL=http://127.0.0.1:8080 node e2e/admin.spec.mjs
//
// CHROMIUM_PATH overrides /usr/bin/chromium; E2E_SCREENSHOTS=dir saves what the page looks like.

import { join } from "node:path";
import { BASE, SHOTS, WAIT_MS, check, launchBrowser, log } from "./harness.mjs";

/** The load: SENDS sends by WORKERS concurrent senders, paced to about SECONDS seconds. */
const SENDS = 300;
const WORKERS = 4;
const SECONDS = 5;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function post(ns, path, body) {
  const res = await fetch(BASE + path, {
    method: "POST",
    headers: { "content-type": "application/json", "micro-namespace": ns },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  check(res.status === 200, `POST ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** A chart's data-* attributes: {samples, latest, max} as numbers (latest NaN when none). */
function chart(page, id) {
  return page.$eval(`#${id}`, (f) => ({
    samples: Number(f.dataset.samples || 0),
    latest: f.dataset.latest === "" || f.dataset.latest === undefined ? NaN : Number(f.dataset.latest),
    max: Number(f.dataset.max || 0),
  }));
}

/** The namespace table's row for `ns`: {chats, messages}, or null when it has none. */
function row(page, ns) {
  return page.evaluate((ns) => {
    const tr = [...document.querySelectorAll("#namespaces tbody tr")].find((r) => r.dataset.namespace === ns);
    return tr ? { chats: Number(tr.dataset.chats), messages: Number(tr.dataset.messages) } : null;
  }, ns);
}

async function polls(page) {
  return Number(await page.$eval("#status", (s) => s.dataset.polls || 0));
}

/** Waits until the page has polled `n` more times. */
async function morePolls(page, n) {
  const from = await polls(page);
  await page.waitForFunction(
    (want) => Number(document.getElementById("status").dataset.polls || 0) >= want,
    from + n,
    { timeout: WAIT_MS },
  );
}

async function shot(page, name) {
  if (SHOTS) await page.screenshot({ path: join(SHOTS, `admin-${name}.png`), fullPage: true });
}

async function main() {
  const ns = `admin-e2e-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
  const { browser, close } = await launchBrowser("chatd-e2e-admin-");
  const problems = [];
  const stream = new AbortController();
  try {
    const page = await (await browser.newContext()).newPage();
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    // A CSP violation (an inline script or style refused) is a console error too.
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(`console error: ${m.text()}`);
    });
    const res = await page.goto(BASE + "/admin");
    check(res && res.status() === 200, `GET /admin is ${res && res.status()}`);
    await morePolls(page, 2);
    const before = await chart(page, "chart-sends");
    check(before.max === 0, `sends/s is ${before.max} before any send`);
    check((await row(page, ns)) === null, "the namespace is listed before it has a chat");
    log(`the page polls an idle server: ${before.samples} samples, 0 sends/s`);
    await shot(page, "1-idle");

    // A chat, and a stream on it (the open streams chart counts it).
    await post(ns, "/chats/CreateChat", { id: "load", user_ids: ["alice", "bob"] });
    const sse = await fetch(`${BASE}/chat/Connect?chat_id=load&user_id=bob&namespace=${ns}`, {
      headers: { accept: "text/event-stream" },
      signal: stream.signal,
    });
    check(sse.status === 200, `the stream is ${sse.status}`);

    // The load, paced: each worker sends its share evenly over SECONDS.
    let sent = 0;
    const gap = (SECONDS * 1000 * WORKERS) / SENDS;
    const load = Promise.all(
      [...Array(WORKERS).keys()].map(async (w) => {
        for (let i = w; i < SENDS; i += WORKERS) {
          const started = Date.now();
          await post(ns, "/chats/SendMessage", { chat_id: "load", author_id: "alice", text: `m${i}` });
          sent++;
          await sleep(Math.max(0, gap - (Date.now() - started)));
        }
      }),
    );
    // While it runs, the sends/s chart rises and the namespace's message count grows.
    await page.waitForFunction(() => Number(document.getElementById("chart-sends").dataset.latest) > 5, null, {
      timeout: WAIT_MS,
    });
    const early = await row(page, ns);
    check(early !== null && early.chats === 1, `the namespace's row mid-load: ${JSON.stringify(early)}`);
    const during = await chart(page, "chart-sends");
    log(`mid-load: ${during.latest.toFixed(1)} sends/s charted, ${early.messages} messages listed (${sent} sent)`);
    await shot(page, "2-load");
    await morePolls(page, 1);
    const later = await row(page, ns);
    check(later.messages > early.messages, `the message count did not grow: ${early.messages} then ${later.messages}`);
    const streams = await chart(page, "chart-streams");
    check(streams.latest >= 1, `open streams charted as ${streams.latest} with one open`);
    await load;
    log(`${sent} sends done; the count grew ${early.messages} -> ${later.messages}; ${streams.latest} stream open`);

    // After the load: every send counted, and latency and disk use charted.
    await page.waitForFunction(
      ([ns, n]) =>
        [...document.querySelectorAll("#namespaces tbody tr")].some(
          (r) => r.dataset.namespace === ns && Number(r.dataset.messages) === n,
        ),
      [ns, SENDS],
      { timeout: WAIT_MS },
    );
    const latency = await chart(page, "chart-latency");
    check(latency.max > 0, `p99 send latency never charted: ${JSON.stringify(latency)}`);
    const disk = await chart(page, "chart-disk");
    check(disk.latest > 0, `disk use charted as ${disk.latest}`);
    const sends = await chart(page, "chart-sends");
    check(sends.max > 20, `the sends/s chart peaked at only ${sends.max}`);
    log(`the page lists all ${SENDS} messages; peak ${sends.max.toFixed(1)} sends/s, p99 up to ${latency.max.toFixed(2)} ms, disk ${disk.latest} bytes`);

    // The load over, the rate falls back to zero.
    await page.waitForFunction(() => Number(document.getElementById("chart-sends").dataset.latest) === 0, null, {
      timeout: WAIT_MS,
    });
    log("the sends/s chart falls back to 0 once the load stops");
    await shot(page, "3-after");

    const held = await page.$eval("#held-note", (p) => p.textContent);
    check(/None/.test(held), `held chats on a healthy server: ${held}`);
    check(problems.length === 0, `the page reported problems:\n  ${problems.join("\n  ")}`);
  } finally {
    stream.abort();
    await close();
  }
}

try {
  await main();
  console.log("e2e: 1 passed, 0 failed");
  process.exit(0);
} catch (err) {
  console.error(`e2e: FAILED: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
}

// End-to-end: chatd's page in real headless Chromium.
//
// Two pages (two browser contexts, like two people) open one chat; what one sends the other
// shows. Then one page loses its connection, twice (the browser goes offline; the socket is cut),
// while the other keeps sending and the cut-off page queues a message of its own. After each
// reconnect both pages must hold every message exactly once, in seq order.
//
//   CHATD_URL=http://127.0.0.1:8080 node e2e/chat.spec.mjs
//
// CHROMIUM_PATH overrides /usr/bin/chromium; E2E_SCREENSHOTS=dir saves what the pages look like.

import { join } from "node:path";
import { BASE, SHOTS, WAIT_MS, check, launchBrowser, log } from "./harness.mjs";

/** The messages a page shows: [{seq, user, text}] in DOM order (pending sends excluded). */
function shown(page) {
  return page.$$eval("#messages li[data-seq]", (items) =>
    items.map((li) => ({
      seq: Number(li.dataset.seq),
      user: li.querySelector(".who").textContent,
      text: li.querySelector(".text").textContent,
    })),
  );
}

async function waitStatus(page, state) {
  await page.waitForSelector(`#status[data-state="${state}"]`, { timeout: WAIT_MS });
}

async function waitShows(page, text) {
  await page.waitForFunction(
    (t) => [...document.querySelectorAll("#messages li[data-seq] .text")].some((p) => p.textContent === t),
    text,
    { timeout: WAIT_MS },
  );
}

async function waitCount(page, n) {
  await page.waitForFunction(
    (n) => document.querySelectorAll("#messages li[data-seq]").length >= n && !document.querySelector("#messages li.pending"),
    n,
    { timeout: WAIT_MS },
  );
}

async function send(page, text) {
  await page.fill("#text", text);
  await page.press("#text", "Enter");
}

/** Every message once, seqs 1..n with no gap, the expected texts each exactly once. */
async function assertComplete(page, name, expected) {
  await waitCount(page, expected.length).catch(() => {}); // the checks below say what is wrong
  const msgs = await shown(page);
  const seqs = msgs.map((m) => m.seq);
  const want = expected.map((_, i) => i + 1);
  check(JSON.stringify(seqs) === JSON.stringify(want), `${name} shows seqs ${JSON.stringify(seqs)}, want ${JSON.stringify(want)}`);
  const texts = msgs.map((m) => m.text).sort();
  check(JSON.stringify(texts) === JSON.stringify([...expected].sort()), `${name} shows ${JSON.stringify(texts)}, want each of ${JSON.stringify(expected)} once`);
  return msgs;
}

/** B's stream delivered every seq after its history exactly once, in order, up to `last`. */
async function assertDelivered(page, last) {
  const { delivered, lastSeq } = await page.evaluate(() => ({ delivered: window.e2eDelivered, lastSeq: window.chatdStream.lastSeq }));
  check(lastSeq === last, `the stream delivered up to seq ${lastSeq}, want ${last}`);
  const first = last - delivered.length + 1;
  const want = delivered.map((_, i) => first + i);
  check(JSON.stringify(delivered) === JSON.stringify(want), `the stream delivered seqs ${JSON.stringify(delivered)}, want ${JSON.stringify(want)}`);
}

async function shot(page, name) {
  if (SHOTS) await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

async function main() {
  // Static assets first: the client and the page, with the headers browsers rely on.
  for (const [path, type] of [["/", "text/html"], ["/chatd.js", "application/javascript"]]) {
    const res = await fetch(BASE + path);
    check(res.status === 200, `GET ${path} is ${res.status}`);
    check((res.headers.get("content-type") || "").startsWith(type), `GET ${path} content-type is ${res.headers.get("content-type")}`);
    check(!!res.headers.get("cache-control"), `GET ${path} has no Cache-Control`);
  }
  log("/ and /chatd.js are served with their content types and Cache-Control");

  const { browser, close } = await launchBrowser("chatd-e2e-");
  const problems = [];
  try {
    const contextA = await browser.newContext();
    const contextB = await browser.newContext();
    const a = await contextA.newPage();
    const b = await contextB.newPage();
    for (const [name, page] of [["A", a], ["B", b]]) {
      page.on("pageerror", (e) => problems.push(`${name}: page error: ${e.message}`));
      page.on("console", (m) => {
        if (m.type() === "error" && !/WebSocket|ERR_INTERNET_DISCONNECTED|Failed to load resource/.test(m.text())) {
          problems.push(`${name}: console error: ${m.text()}`);
        }
      });
    }

    // A: the form, as a person would use it: a namespace of its own, a new chat for alice and bob.
    const ns = `e2e-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
    await a.goto(BASE + "/");
    await waitStatus(a, "idle");
    await a.fill("#namespace", ns);
    await a.fill("#user_id", "alice");
    await a.fill("#user_ids", "alice, bob");
    await a.click("#new-chat");
    await waitStatus(a, "open");
    const chatId = await a.inputValue("#chat_id");
    check(chatId.length > 0, "New chat filled in the chat id");
    check(new URL(a.url()).searchParams.get("chat_id") === chatId, "the address names the chat");
    log(`A made chat ${chatId} in namespace ${ns} and is live`);

    const expected = [];
    const say = async (page, text) => {
      expected.push(text);
      await send(page, text);
    };

    await say(a, "hello from alice");
    await waitShows(a, "hello from alice");
    log("A sees its own message come back with its seq");

    // B: the link A's address bar shows, with bob as the user; it opens the chat at once.
    const link = new URL(a.url());
    link.searchParams.set("user_id", "bob");
    await b.goto(link.toString());
    await waitStatus(b, "open");
    await waitShows(b, "hello from alice");
    // Record what B's stream itself delivers (the page would hide a repeat): each seq once, in order.
    await b.evaluate(() => {
      window.e2eDelivered = [];
      window.e2eStatuses = [];
      window.chatdStream.onMessage((m) => window.e2eDelivered.push(m.seq));
      window.chatdStream.onStatus((s) => window.e2eStatuses.push(s));
    });
    log("B opened the chat from a link and shows the history");

    await say(b, "hi alice, bob here");
    await waitShows(a, "hi alice, bob here");
    await say(a, "live one");
    await waitShows(b, "live one");
    await assertComplete(a, "A", expected);
    await assertComplete(b, "B", expected);
    log("A and B see each other's messages live");
    await shot(a, "1-live-a");

    // Drop 1: B's browser goes offline and its socket is cut; new connections fail until it is
    // back, so the client goes through its backoff.
    await contextB.setOffline(true);
    await b.evaluate(() => window.chatdStream._ws && window.chatdStream._ws.close());
    await waitStatus(b, "reconnecting");
    log("B is offline and knows it");
    for (let i = 1; i <= 5; i++) await say(a, `while B was offline ${i}`);
    await waitShows(a, "while B was offline 5");
    await say(b, "queued by bob while offline");
    check((await b.$$("#messages li.pending")).length === 1, "B shows its queued message as pending");
    await shot(b, "2-offline-b");
    await new Promise((r) => setTimeout(r, 1200)); // let a reconnect attempt or two fail
    await contextB.setOffline(false);
    await waitStatus(b, "open");
    const retries = await b.evaluate(() => window.e2eStatuses.filter((s) => s === "reconnecting").length);
    // Each try is two: "reconnecting" while waiting, again while connecting; at least one failed.
    check(retries >= 4, `B tried to reconnect while offline (${retries} reconnecting states)`);
    await waitCount(b, expected.length);
    await waitCount(a, expected.length);
    await assertComplete(b, "B", expected);
    await assertComplete(a, "A", expected);
    log(`B went back online (${retries} reconnecting states on the way) and holds all ${expected.length} messages once, in order, and its queued one was sent once`);
    await assertDelivered(b, expected.length);

    // Drop 2: the socket alone is cut (as a proxy or a server restart would) right after B sent
    // a message, so B cannot know whether it arrived and sends it again; A keeps talking during
    // the backoff.
    expected.push("sent as the socket closed");
    const mark = await b.evaluate(() => {
      window.chatdStream.send({ text: "sent as the socket closed" });
      window.chatdStream._ws.close();
      return window.e2eStatuses.length;
    });
    await say(a, "during the reconnect 1");
    await say(a, "during the reconnect 2");
    await b.waitForFunction(
      (mark) => window.e2eStatuses.slice(mark).join(" ").includes("reconnecting") && window.chatdStream.status === "open",
      mark,
      { timeout: WAIT_MS },
    );
    await waitCount(b, expected.length);
    await say(b, "back again");
    await waitCount(a, expected.length);
    await waitCount(b, expected.length);
    await assertComplete(a, "A", expected);
    const final = await assertComplete(b, "B", expected);
    await assertDelivered(b, final.length);
    // A frame repeating a seq already delivered (as an overlapping replay would be) is dropped.
    const redelivered = await b.evaluate(() => {
      const stream = window.chatdStream;
      const before = window.e2eDelivered.length;
      const last = stream.lastSeq;
      stream._frame(JSON.stringify({ id: "x", client_id: "x", chat_id: stream.chat_id, user_id: "alice", subject: "", text: "repeat", sent_at: 0, seq: last }));
      stream._frame(JSON.stringify({ id: "y", client_id: "y", chat_id: stream.chat_id, user_id: "alice", subject: "", text: "older", sent_at: 0, seq: 1 }));
      return window.e2eDelivered.length - before;
    });
    check(redelivered === 0, `B's stream delivered ${redelivered} repeated seqs`);
    log(`after a cut socket both pages hold all ${expected.length} messages once, in order`);
    await shot(a, "3-final-a");
    await shot(b, "3-final-b");

    // A reload starts over from History and Connect: still every message once.
    await b.reload();
    await waitStatus(b, "open");
    await waitCount(b, expected.length);
    await assertComplete(b, "B", expected);
    log("B reloaded: history shows the same messages");

    check(problems.length === 0, `the pages reported problems:\n  ${problems.join("\n  ")}`);
  } finally {
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

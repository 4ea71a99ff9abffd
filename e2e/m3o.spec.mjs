// End-to-end: the published m3o npm client (`m3o`, pinned in package.json, with its
// `@m3o/m3o-node` Client) against a running chatd, unchanged but for its address.
//
// The one change an m3o application makes, for ChatService, is this line (see `chatService()`):
//
//     chat.client.options.address = ADDRESS; // e.g. "http://127.0.0.1:8080/" (the trailing "/" matters)
//
// (`{local: true}` would mean a fixed http://localhost:8080/, and ChatService's constructor takes
// only a token, so its Client's `options.address` is what an application sets.) The client then
// posts to ADDRESS + "v1/chat/{Endpoint}" with `authorization: Bearer TOKEN` and no
// `micro-namespace` header, and streams on ws://.../v1/chat/{Endpoint}. For the v1 `chat` calls,
// `Connect` and the `chats` service, `new Client({address: ADDRESS, token})` of @m3o/m3o-node.
//
//   node e2e/m3o.spec.mjs ADDRESS                          # an anonymous server
//   node e2e/m3o.spec.mjs ADDRESS KEY NAMESPACE [CHAT_ID]  # an API key bound to NAMESPACE only
//
// or CHATD_URL, CHATD_API_KEY, CHATD_NAMESPACE, CHATD_SEED_CHAT. With a key, the client must act in
// the key's namespace: CHAT_ID (made there beforehand, holding one message whose text is
// SEED_TEXT below) must read back, and what the client wrote must show through plain HTTP calls
// naming NAMESPACE. Before its last line it prints `m3o: ids {...}`: what the client wrote (as far
// as it got), for the caller (tests/m3o_client.rs) to check on its own.
//
// Each section checks every field the client reads with its exact JS type (a missing or retyped
// field fails, naming the endpoint and the field) and stops at its first failure. By default the
// run stops at the first failing section and exits 1; `--keep-going` (or M3O_KEEP_GOING=1) runs
// every section and reports each one's first failure. Every call and stream wait has a timeout.

import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { ChatService } = require("m3o/chat");
// The Client that m3o's services use: @m3o/m3o-node as m3o itself resolves it.
const { Client } = createRequire(require.resolve("m3o"))("@m3o/m3o-node");

const SEED_TEXT = "seeded in the key's namespace";

const argv = process.argv.slice(2);
const KEEP_GOING = argv.includes("--keep-going") || process.env.M3O_KEEP_GOING === "1";
const positional = argv.filter((a) => !a.startsWith("--"));
const ADDRESS = (positional[0] || process.env.CHATD_URL || "").replace(/\/*$/, "/");
const KEY = positional[1] || process.env.CHATD_API_KEY || "";
const NAMESPACE = positional[2] || process.env.CHATD_NAMESPACE || "";
const SEED_CHAT = positional[3] || process.env.CHATD_SEED_CHAT || "";
// Anonymous servers ignore the token; an application passes one all the same.
const TOKEN = KEY || "no-key-needed";

const CALL_MS = 10_000;
const FRAME_MS = 10_000;
const TOTAL_MS = 120_000;
const RUN = Date.now().toString(36) + Math.random().toString(36).slice(2, 6);

if (ADDRESS === "/" || (KEY && !NAMESPACE)) {
  console.error("m3o: usage: node m3o.spec.mjs ADDRESS [API_KEY NAMESPACE [SEED_CHAT_ID]] [--keep-going]");
  process.exit(2);
}

const started = Date.now();
const deadline = setTimeout(() => {
  console.error(`m3o: FAILED: still running after ${TOTAL_MS / 1000} s (in ${current})`);
  process.exit(1);
}, TOTAL_MS);
deadline.unref();

class Failure extends Error {}

function fail(what) {
  throw new Failure(what);
}

let current = "start";
let step = 0;
function log(what) {
  step += 1;
  console.log(`m3o: ${String(step).padStart(2, " ")}. ${what}`);
}

// ---- values and their types --------------------------------------------------------------

const show = (v) => (v === undefined ? "undefined" : JSON.stringify(v));

function kind(v) {
  if (v === undefined) return "missing";
  if (v === null) return "null";
  if (Array.isArray(v)) return `array ${show(v)}`;
  return `${typeof v} ${show(v)}`;
}

const nowSecs = () => Date.now() / 1000;
const RFC3339_UTC = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?Z$/;

/** An RFC 3339 UTC string of about now, that Date.parse reads and toISOString gives back as written. */
function isRfc3339Now(v) {
  if (typeof v !== "string" || !RFC3339_UTC.test(v)) return false;
  const ms = Date.parse(v);
  if (!Number.isFinite(ms)) return false;
  // Date.parse keeps milliseconds: the fields written must be the UTC ones it read.
  if (new Date(ms).toISOString().slice(0, 19) !== v.slice(0, 19)) return false;
  return Math.abs(ms / 1000 - nowSecs()) < 600;
}

const TYPES = {
  string: [(v) => typeof v === "string", "a string"],
  id: [(v) => typeof v === "string" && v.length > 0, "a non-empty string"],
  boolean: [(v) => typeof v === "boolean", "a boolean"],
  seq: [(v) => typeof v === "number" && Number.isInteger(v) && v >= 1, "a positive integer number"],
  unix: [
    (v) => typeof v === "number" && Number.isInteger(v) && Math.abs(v - nowSecs()) < 600,
    "an integer number of Unix seconds (within 10 minutes of now)",
  ],
  rfc3339: [isRfc3339Now, 'an RFC 3339 UTC string ("2006-01-02T15:04:05.999Z") within 10 minutes of now'],
  strings: [(v) => Array.isArray(v) && v.every((s) => typeof s === "string"), "an array of strings"],
  array: [(v) => Array.isArray(v), "an array"],
  object: [(v) => v !== null && typeof v === "object" && !Array.isArray(v), "an object"],
};

// The shapes the clients read (docs/API.md sections 3, 7 and 10).
const V1_MESSAGE = {
  id: "id",
  client_id: "id",
  chat_id: "id",
  user_id: "id",
  subject: "string",
  text: "string",
  sent_at: "unix",
  seq: "seq",
};
const V2_MESSAGE = {
  id: "id",
  client: "id",
  group_id: "id",
  user_id: "id",
  subject: "string",
  text: "string",
  sent_at: "rfc3339",
  seq: "seq",
};
const GROUP = {
  id: "id",
  name: "string",
  description: "string",
  created_at: "rfc3339",
  user_ids: "strings",
  private: "boolean",
};
const CHATS_CHAT = { id: "id", user_ids: "strings", created_at: "unix" };
const CHATS_MESSAGE = { id: "id", author_id: "id", chat_id: "id", text: "string", sent_at: "unix" };

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

/**
 * Checks `value` (named `what`) has every field of `shape` with its type, and the `want`ed
 * values; fails listing every wrong field at once. Returns the value.
 */
function check(what, value, shape, want = {}) {
  if (!TYPES.object[0](value)) fail(`${what}: expected an object, got ${kind(value)}`);
  const problems = [];
  for (const [field, type] of Object.entries(shape)) {
    const [ok, name] = TYPES[type];
    if (!ok(value[field])) problems.push(`${field}: expected ${name}, got ${kind(value[field])}`);
  }
  for (const [field, expected] of Object.entries(want)) {
    // A field of the wrong type is reported above; one outside the shape is compared as it is.
    const typed = shape[field] === undefined || TYPES[shape[field]][0](value[field]);
    if (typed && !same(value[field], expected)) {
      problems.push(`${field}: expected ${show(expected)}, got ${show(value[field])}`);
    }
  }
  if (problems.length) fail(`${what}: ${problems.join("; ")} (in ${show(value)})`);
  return value;
}

/** `reply[field]`, which must be of `type`. */
function field(what, reply, name, type) {
  check(what, reply, { [name]: type });
  return reply[name];
}

function expect(what, actual, expected) {
  if (!same(actual, expected)) fail(`${what}: expected ${show(expected)}, got ${show(actual)}`);
}

// ---- calls and streams, each with a timeout ------------------------------------------------

function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Failure(`${what}: no answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** What a rejected call carried: the micro error body, or the transport error. */
function rejection(e) {
  if (e instanceof Failure) return e.message;
  if (e && typeof e === "object" && "code" in e && "id" in e) return `rejected with ${e.code} ${e.id}: ${e.detail}`;
  if (e instanceof Error) return `failed: ${e.message}`;
  return `rejected with ${show(e)}`;
}

/** Awaits a client call; its answer must be an object. */
async function call(what, promise) {
  let reply;
  try {
    reply = await within(CALL_MS, what, promise);
  } catch (e) {
    fail(`${what}: ${rejection(e)}`);
  }
  if (!TYPES.object[0](reply)) fail(`${what}: expected a JSON object, got ${kind(reply)}`);
  return reply;
}

/** Awaits a call that must be refused with a micro error of `code`. */
async function refused(what, promise, code) {
  let reply;
  try {
    reply = await within(CALL_MS, what, promise);
  } catch (e) {
    if (e && e.code === code) return e;
    fail(`${what}: expected a ${code} error, got ${rejection(e)}`);
  }
  fail(`${what}: expected a ${code} error, got ${show(reply)}`);
}

const streams = new Set();
// Client.stream has no error handler before the socket opens: a failed upgrade is an uncaught
// 'error' event, which rejects the open in progress here.
let opening = null;
process.on("uncaughtException", (e) => {
  if (opening) {
    opening(e);
    return;
  }
  console.error(`m3o: FAILED in ${current}: uncaught: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});

/** Opens a stream through `open()` (a Client.stream promise) and records what it delivers. */
async function watch(what, open) {
  let stream;
  try {
    stream = await within(
      FRAME_MS,
      `${what}: the WebSocket`,
      new Promise((resolve, reject) => {
        opening = reject;
        open().then(resolve, reject);
      }),
    );
  } catch (e) {
    fail(`${what}: did not open: ${rejection(e)}`);
  } finally {
    opening = null;
  }
  streams.add(stream);
  const frames = [];
  let closed = "";
  let wake = () => {};
  stream.onMessage((frame) => {
    frames.push(frame);
    wake();
  });
  stream.onError((e) => {
    closed ||= `failed: ${e.message}`;
    wake();
  });
  // The close code is on the socket (the Stream's onClose hands on only the reason).
  stream.conn.on("close", (code, reason) => {
    closed ||= `closed with ${code}${reason && String(reason) ? ` ${String(reason)}` : ""}`;
    wake();
  });
  return {
    frames,
    stream,
    /** The first frame (of all received) for which `pred` holds, within `ms`. */
    async frame(label, pred, ms = FRAME_MS) {
      const end = Date.now() + ms;
      for (;;) {
        const found = frames.find((f) => {
          try {
            return pred(f);
          } catch {
            return false;
          }
        });
        if (found !== undefined) return found;
        const left = end - Date.now();
        if (closed || left <= 0) {
          const why = closed ? `the stream ${closed}` : `nothing within ${ms / 1000} s`;
          fail(`${what}: ${label}: ${why}; frames so far: ${show(frames)}`);
        }
        await new Promise((resolve) => {
          const timer = setTimeout(resolve, left);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    },
    close() {
      stream.conn.close(1000);
      streams.delete(stream);
    },
  };
}

/** The text a frame carries, whatever its shape (to find it before checking its shape). */
const textOf = (frame) => frame?.message?.text ?? frame?.text;

/** The ChatService an m3o application makes, pointed at chatd by its one-line change. */
function chatService() {
  const chat = new ChatService(TOKEN);
  if (!(chat.client instanceof Client)) fail("m3o's ChatService no longer keeps an @m3o/m3o-node Client in `client`");
  chat.client.options.address = ADDRESS;
  return chat;
}

const client = new Client({ address: ADDRESS, token: TOKEN });
const user = (name) => `${name}-${RUN}`;
const sorted = (ids) => [...ids].sort();
/** A group's id from a Create, Leave, Kick... answer: only what a later step needs. */
const groupId = (what, reply) => field(`${what} group`, field(what, reply, "group", "object"), "id", "id");
/** What the client wrote, for the caller's own check. */
const ids = {};

// ---- the sections --------------------------------------------------------------------------

const sections = [];
const section = (name, run, when = true) => when && sections.push({ name, run });

section("chat v1: New, Send, History through Client.call", async () => {
  const [ann, ben] = [user("v1-ann"), user("v1-ben")];
  let what = "chat.New {user_ids} (v1)";
  const chatId = field(what, await call(what, client.call("chat", "New", { user_ids: [ann, ben] })), "chat_id", "id");
  what = "chat.New with the same users in another order";
  const again = field(what, await call(what, client.call("chat", "New", { user_ids: [ben, ann] })), "chat_id", "id");
  expect(`${what}: chat_id`, again, chatId);
  log(`chat.New answers {chat_id: string}, the same for the same users: ${chatId}`);

  const text = `v1 hello ${RUN}`;
  const clientId = `v1-client-${RUN}`;
  what = "chat.Send {chat_id} (v1)";
  const request = { chat_id: chatId, user_id: ann, subject: "v1 subject", text, client_id: clientId };
  const sent = field(what, await call(what, client.call("chat", "Send", request)), "message", "object");
  const want = { chat_id: chatId, user_id: ann, subject: "v1 subject", text, client_id: clientId };
  check(`${what}: message`, sent, V1_MESSAGE, want);
  what = "chat.Send retried with the same client_id";
  const retry = field(what, await call(what, client.call("chat", "Send", { ...request, text: "changed" })), "message", "object");
  check(`${what}: message`, retry, V1_MESSAGE, { id: sent.id, seq: sent.seq, text });
  log("chat.Send answers {message} in the v1 shape (sent_at integer seconds), a retry the same message");

  what = "chat.Send by the other member";
  const second = field(
    what,
    await call(what, client.call("chat", "Send", { chat_id: chatId, user_id: ben, text: `${text} 2` })),
    "message",
    "object",
  );
  check(`${what}: message`, second, V1_MESSAGE, { user_id: ben, seq: sent.seq + 1 });
  what = "chat.History {chat_id} (v1)";
  const messages = field(what, await call(what, client.call("chat", "History", { chat_id: chatId })), "messages", "array");
  messages.forEach((m, i) => check(`${what}: messages[${i}]`, m, V1_MESSAGE, { chat_id: chatId }));
  expect(`${what}: the messages' ids, oldest first`, messages.map((m) => m.id), [sent.id, second.id]);
  log("chat.History answers {messages} oldest first, each in the v1 shape");
  Object.assign(ids, { v1_chat: chatId, v1_text: text });
});

section(
  "the key's namespace: the client reads what is there",
  async () => {
    const what = `chat.History of ${NAMESPACE}'s chat ${SEED_CHAT}, without a namespace header`;
    const messages = field(what, await call(what, client.call("chat", "History", { chat_id: SEED_CHAT })), "messages", "array");
    expect(`${what}: texts`, messages.map((m) => m.text), [SEED_TEXT]);
    log(`with an API key and no namespace header, the client reads ${NAMESPACE}'s chat`);
  },
  !!(KEY && SEED_CHAT),
);

section("chat v1: a Connect stream through Client.stream", async () => {
  const [cora, dan] = [user("con-cora"), user("con-dan")];
  let what = "chat.New for Connect";
  const chatId = field(what, await call(what, client.call("chat", "New", { user_ids: [cora, dan] })), "chat_id", "id");
  const s = await watch("chat.Connect", () => client.stream("chat", "Connect", { chat_id: chatId, user_id: cora }));
  log("Client.stream('chat', 'Connect', {chat_id, user_id}) opens");

  // A frame on the stream is a message to send; its echo comes back bare, with id and seq.
  const viaStream = { text: `connect frame ${RUN}`, client_id: `connect-frame-${RUN}` };
  await within(CALL_MS, "Stream.send on Connect", s.stream.send(JSON.stringify(viaStream)));
  const f1 = await s.frame("the echo of a frame sent on the stream", (f) => textOf(f) === viaStream.text);
  if (f1.message !== undefined) fail(`chat.Connect frame: expected a bare v1 Message, got a {message} wrapper: ${show(f1)}`);
  check("chat.Connect frame (own, sent on the stream)", f1, V1_MESSAGE, { ...viaStream, chat_id: chatId, user_id: cora });

  what = "chat.Send by the stream's own user";
  const own = { chat_id: chatId, user_id: cora, text: `connect own ${RUN}`, client_id: `connect-own-${RUN}` };
  const ownSent = field(what, await call(what, client.call("chat", "Send", own)), "message", "object");
  const f2 = await s.frame("its own echo of a Send", (f) => textOf(f) === own.text);
  check("chat.Connect frame (own, sent by Send)", f2, V1_MESSAGE, { ...own, id: ownSent.id, seq: ownSent.seq });

  what = "chat.Send by another member";
  const other = { chat_id: chatId, user_id: dan, subject: "s", text: `connect other ${RUN}` };
  const otherSent = field(what, await call(what, client.call("chat", "Send", other)), "message", "object");
  const f3 = await s.frame("another member's message", (f) => textOf(f) === other.text);
  check("chat.Connect frame (another member's)", f3, V1_MESSAGE, { ...other, id: otherSent.id, seq: otherSent.seq });
  s.frames.forEach((f, i) => check(`chat.Connect frames[${i}]`, f, V1_MESSAGE, { chat_id: chatId }));
  expect("chat.Connect: the seqs delivered", s.frames.map((f) => f.seq), [f1.seq, f1.seq + 1, f1.seq + 2]);
  s.close();
  log("Connect delivers bare v1 messages in seq order, the sender's own included");
});

section("chats: CreateChat, SendMessage, ListMessages through Client.call", async () => {
  const [amy, zed, bo] = [user("chats-amy"), user("chats-zed"), user("chats-bo")];
  let what = "chats.CreateChat {user_ids}";
  const made = field(what, await call(what, client.call("chats", "CreateChat", { user_ids: [zed, bo] })), "chat", "object");
  check(`${what}: chat`, made, CHATS_CHAT, { user_ids: sorted([zed, bo]) });
  // Another set of users: CreateChat with a new id answers an existing chat of the same set.
  const id = `chats-${RUN}`;
  what = "chats.CreateChat {id, user_ids}";
  const named = field(what, await call(what, client.call("chats", "CreateChat", { id, user_ids: [amy, zed] })), "chat", "object");
  check(`${what}: chat`, named, CHATS_CHAT, { id, user_ids: sorted([amy, zed]) });
  what = "chats.CreateChat with an existing id";
  const existing = field(what, await call(what, client.call("chats", "CreateChat", { id, user_ids: [amy, zed] })), "chat", "object");
  check(`${what}: chat`, existing, CHATS_CHAT, named);
  log("chats.CreateChat answers {chat: {id, user_ids (sorted), created_at integer}}, idempotent on id");

  what = "chats.SendMessage";
  const first = { chat_id: id, author_id: amy, text: `chats first ${RUN}` };
  const m1 = field(what, await call(what, client.call("chats", "SendMessage", first)), "message", "object");
  check(`${what}: message`, m1, CHATS_MESSAGE, first);
  what = "chats.SendMessage {id}";
  const second = { chat_id: id, author_id: zed, text: `chats second ${RUN}`, id: `chats-msg-${RUN}` };
  const m2 = field(what, await call(what, client.call("chats", "SendMessage", second)), "message", "object");
  check(`${what}: message`, m2, CHATS_MESSAGE, second);
  what = "chats.SendMessage retried with the same id";
  const retry = await call(what, client.call("chats", "SendMessage", { ...second, text: "changed" }));
  check(`${what}: message`, field(what, retry, "message", "object"), CHATS_MESSAGE, m2);
  log("chats.SendMessage answers {message: {id, author_id, chat_id, text, sent_at integer}}, idempotent on id");

  const list = async (request) => {
    const w = `chats.ListMessages ${show(request)}`;
    const messages = field(w, await call(w, client.call("chats", "ListMessages", { chat_id: id, ...request })), "messages", "array");
    messages.forEach((m, i) => check(`${w}: messages[${i}]`, m, CHATS_MESSAGE, { chat_id: id }));
    return messages.map((m) => m.id);
  };
  expect("chats.ListMessages asc", await list({ limit: 10, offset: 0, order: "asc" }), [m1.id, m2.id]);
  expect("chats.ListMessages desc", await list({ limit: 10, offset: 0, order: "desc" }), [m2.id, m1.id]);
  expect("chats.ListMessages desc, limit 1, offset 1", await list({ limit: 1, offset: 1, order: "desc" }), [m1.id]);
  log("chats.ListMessages answers {messages} in the order asked, with limit and offset");
  Object.assign(ids, { chats_chat: id, chats_text: first.text });
});

// The v2 sections each make their own groups, reading only the id they need from Create's answer,
// so each reports the first failure of its own endpoint.

section("ChatService.create", async () => {
  const chat = chatService();
  const members = [user("cr-bea"), user("cr-al")];
  let what = "chat.Create (ChatService.create)";
  const request = { name: `create ${RUN}`, description: "a public group", private: false, user_ids: members };
  const made = field(what, await call(what, chat.create(request)), "group", "object");
  check(`${what}: group`, made, GROUP, { ...request, user_ids: sorted(members) });
  what = "chat.Create {private: true}";
  const hidden = field(what, await call(what, chat.create({ ...request, private: true })), "group", "object");
  check(`${what}: group`, hidden, GROUP, { private: true, name: request.name });
  if (hidden.id === made.id) fail(`${what}: the same id as the first group, ${made.id}: groups are never matched by members`);
  log("create answers {group} with created_at an RFC 3339 string, user_ids strings and private a boolean");
});

section("ChatService.send", async () => {
  const chat = chatService();
  const [ivy, jay] = [user("send-ivy"), user("send-jay")];
  const group = groupId("chat.Create", await call("chat.Create", chat.create({ name: `send ${RUN}`, user_ids: [ivy, jay] })));
  let what = "chat.Send {group_id} (ChatService.send)";
  const request = { group_id: group, user_id: ivy, subject: "v2 subject", text: `v2 hello ${RUN}`, client: `v2-${RUN}` };
  const sent = field(what, await call(what, chat.send(request)), "message", "object");
  check(`${what}: message`, sent, V2_MESSAGE, request);
  what = "chat.Send {group_id} retried with the same client";
  const retry = field(what, await call(what, chat.send({ ...request, text: "changed" })), "message", "object");
  check(`${what}: message`, retry, V2_MESSAGE, { id: sent.id, seq: sent.seq, text: request.text });
  what = "chat.Send {group_id} without client";
  const bare = field(what, await call(what, chat.send({ group_id: group, user_id: jay, text: "no client" })), "message", "object");
  check(`${what}: message`, bare, V2_MESSAGE, { group_id: group, user_id: jay, seq: sent.seq + 1 });
  log("send answers {message} in the v2 shape: client, group_id, sent_at an RFC 3339 string");
  Object.assign(ids, { group, group_text: request.text });
});

section("ChatService.history", async () => {
  const chat = chatService();
  const [kim, lou] = [user("hist-kim"), user("hist-lou")];
  const group = groupId("chat.Create", await call("chat.Create", chat.create({ name: `history ${RUN}`, user_ids: [kim, lou] })));
  const texts = [`history one ${RUN}`, `history two ${RUN}`];
  await call("chat.Send {group_id}", chat.send({ group_id: group, user_id: kim, text: texts[0], client: `h1-${RUN}` }));
  await call("chat.Send {group_id}", chat.send({ group_id: group, user_id: lou, text: texts[1], client: `h2-${RUN}` }));
  const what = "chat.History {group_id} (ChatService.history)";
  const messages = field(what, await call(what, chat.history({ group_id: group })), "messages", "array");
  messages.forEach((m, i) => check(`${what}: messages[${i}]`, m, V2_MESSAGE, { group_id: group }));
  expect(`${what}: texts, oldest first`, messages.map((m) => m.text), texts);
  expect(`${what}: clients`, messages.map((m) => m.client), [`h1-${RUN}`, `h2-${RUN}`]);
  log("history answers {messages} oldest first, each in the v2 shape");
});

section("ChatService.invite", async () => {
  const chat = chatService();
  const [max, nia] = [user("inv-max"), user("inv-nia")];
  const request = { name: `invite ${RUN}`, private: true, user_ids: [max] };
  const group = groupId("chat.Create", await call("chat.Create", chat.create(request)));
  let what = "chat.Invite (ChatService.invite)";
  const invited = field(what, await call(what, chat.invite({ group_id: group, user_id: nia })), "group", "object");
  check(`${what}: group`, invited, GROUP, { id: group, private: true, user_ids: sorted([max, nia]) });
  what = "chat.Send {group_id} by the invited user";
  const sent = await call(what, chat.send({ group_id: group, user_id: nia, text: `invited ${RUN}` }));
  check(`${what}: message`, field(what, sent, "message", "object"), V2_MESSAGE, { user_id: nia, group_id: group });
  what = "chat.List {user_id} of the invited user";
  const groups = field(what, await call(what, chat.list({ user_id: nia })), "groups", "array");
  groups.forEach((g, i) => check(`${what}: groups[${i}]`, g, GROUP));
  const listed = groups.find((g) => g.id === group);
  if (!listed) fail(`${what}: the private group ${group} is not listed: ${show(groups)}`);
  check(`${what}: the group`, listed, GROUP, { private: true, user_ids: sorted([max, nia]) });
  log("invite makes the user a member at once: {group} lists them, they send, list shows the group");
});

section("ChatService.join", async () => {
  const chat = chatService();
  const [ola, pat] = [user("join-ola"), user("join-pat")];
  const group = groupId("chat.Create", await call("chat.Create", chat.create({ name: `join ${RUN}`, user_ids: [pat] })));
  // A (ola) joins the public group; B (pat) is a member already.
  const s = await watch("chat.Join", () => chat.join({ group_id: group, user_id: ola }));
  log("join({group_id, user_id}) opens a stream (Client.stream 'chat' 'Join')");
  // The stream is live once the server has read its first frame: B sends until one arrives.
  for (let i = 1; s.frames.length === 0; i++) {
    const what = `chat.Send {group_id} (probe ${i} while Join starts)`;
    await call(what, chat.send({ group_id: group, user_id: pat, text: `probe ${i} ${RUN}` }));
    await s.frame("a first message", () => true, i < 20 ? 250 : FRAME_MS).catch((e) => {
      if (i >= 20 || !/nothing within/.test(e.message)) throw e;
    });
  }
  // Now A sends, then B: B's arrives (in seq order, after A's if A's came at all).
  const mine = `join own ${RUN}`;
  let what = "chat.Send {group_id} by the joined user";
  const ownSent = await call(what, chat.send({ group_id: group, user_id: ola, text: mine, client: `join-own-${RUN}` }));
  field(what, ownSent, "message", "object");
  const theirs = { group_id: group, user_id: pat, subject: "to ola", text: `join other ${RUN}`, client: `join-other-${RUN}` };
  what = "chat.Send {group_id} by another member";
  await call(what, chat.send(theirs));
  const frame = await s.frame("another member's message", (f) => textOf(f) === theirs.text);
  check("chat.Join frame", frame, { message: "object" });
  check("chat.Join frame: message", frame.message, V2_MESSAGE, theirs);
  s.frames.forEach((f, i) => {
    check(`chat.Join frames[${i}]`, f, { message: "object" });
    check(`chat.Join frames[${i}].message`, f.message, V2_MESSAGE, { group_id: group });
  });
  const echoed = s.frames.find((f) => textOf(f) === mine);
  if (echoed) fail(`chat.Join delivered the joining user's own message: ${show(echoed)}`);
  s.close();
  log("join delivers another member's message as {message} in the v2 shape, and not the joiner's own");
});

section("ChatService.leave and kick", async () => {
  const chat = chatService();
  const [quin, rae, sol] = [user("lk-quin"), user("lk-rae"), user("lk-sol")];
  const group = groupId("chat.Create", await call("chat.Create", chat.create({ name: `leave ${RUN}`, user_ids: [quin, rae, sol] })));
  let what = "chat.Leave (ChatService.leave)";
  const left = field(what, await call(what, chat.leave({ group_id: group, user_id: quin })), "group", "object");
  check(`${what}: group`, left, GROUP, { id: group, user_ids: sorted([rae, sol]) });
  log("leave answers {group} without the user");
  what = "chat.Kick (ChatService.kick)";
  const kicked = field(what, await call(what, chat.kick({ group_id: group, user_id: rae })), "group", "object");
  check(`${what}: group`, kicked, GROUP, { id: group, user_ids: [sol] });
  await refused("chat.Send {group_id} by the kicked user", chat.send({ group_id: group, user_id: rae, text: "x" }), 403);
  log("kick answers {group} without the user, who can no longer send");
});

section("ChatService.list", async () => {
  const chat = chatService();
  const [uma, vic] = [user("list-uma"), user("list-vic")];
  const open = groupId("chat.Create", await call("chat.Create", chat.create({ name: `list ${RUN}`, user_ids: [uma] })));
  const request = { name: `list private ${RUN}`, private: true, user_ids: [uma, vic] };
  const hidden = groupId("chat.Create", await call("chat.Create", chat.create(request)));
  const what1 = "chat.New (a v1 chat, for List)";
  const v1 = field(what1, await call(what1, client.call("chat", "New", { user_ids: [uma, vic] })), "chat_id", "id");
  const what2 = "chats.CreateChat (a chats chat, for List)";
  const made = await call(what2, client.call("chats", "CreateChat", { user_ids: [uma, user("list-wen")] }));
  const other = field(`${what2} chat`, field(what2, made, "chat", "object"), "id", "id");
  const list = async (req) => {
    const what = `chat.List ${show(req)} (ChatService.list)`;
    const groups = field(what, await call(what, chat.list(req)), "groups", "array");
    groups.forEach((g, i) => check(`${what}: groups[${i}]`, g, GROUP));
    return groups;
  };
  const mine = await list({ user_id: uma });
  expect("chat.List {user_id}: the ids", sorted(mine.map((g) => g.id)), sorted([open, hidden, v1, other]));
  check("chat.List {user_id}: the v1 chat", mine.find((g) => g.id === v1), GROUP, { name: "", user_ids: sorted([uma, vic]) });
  log("list({user_id}) answers {groups}: the user's groups and their New and CreateChat chats, each a Group");
  const all = (await list({})).map((g) => g.id);
  for (const id of [open, hidden]) {
    if (!all.includes(id)) fail(`chat.List {}: group ${id} is missing from every group of the namespace: ${show(all)}`);
  }
  expect("chat.List {user_id} of a user in no chat", await list({ user_id: user("list-nobody") }), []);
  log("list({}) answers every group of the namespace, private ones included, for this caller");
});

section("ChatService.delete", async () => {
  const chat = chatService();
  const wes = user("del-wes");
  const request = { name: `delete ${RUN}`, description: "to go", user_ids: [wes] };
  const group = groupId("chat.Create", await call("chat.Create", chat.create(request)));
  await call("chat.Send {group_id}", chat.send({ group_id: group, user_id: wes, text: "soon gone" }));
  const what = "chat.Delete (ChatService.delete)";
  const gone = field(what, await call(what, chat.delete({ group_id: group })), "group", "object");
  check(`${what}: group`, gone, GROUP, { id: group, name: request.name, description: request.description, user_ids: [wes] });
  await refused("chat.History {group_id} of the deleted group", chat.history({ group_id: group }), 404);
  const listed = field("chat.List {}", await call("chat.List {}", chat.list({})), "groups", "array");
  if (listed.some((g) => g?.id === group)) fail(`chat.List {}: still lists the deleted group ${group}`);
  log("delete answers {group} as it was; the group is gone from history and list");
});

section(
  "the key's namespace: what the client wrote is there",
  async () => {
    if (!ids.v1_chat || !ids.group) fail("nothing to look for: an earlier section failed before writing");
    for (const [chatId, text] of [
      [ids.v1_chat, ids.v1_text],
      [ids.group, ids.group_text],
    ]) {
      const what = `POST v1/chat/History {chat_id: ${chatId}} with micro-namespace: ${NAMESPACE} and the key`;
      const res = await within(
        CALL_MS,
        what,
        fetch(`${ADDRESS}v1/chat/History`, {
          method: "POST",
          headers: { "content-type": "application/json", "micro-namespace": NAMESPACE, authorization: `Bearer ${KEY}` },
          body: JSON.stringify({ chat_id: chatId }),
        }),
      );
      const body = await res.json().catch(() => null);
      if (res.status !== 200) fail(`${what}: ${res.status} ${show(body)}`);
      const messages = field(what, body, "messages", "array");
      if (!messages.some((m) => m.text === text)) fail(`${what}: no message ${show(text)} in ${show(messages)}`);
    }
    log(`what the client wrote without a namespace header is in ${NAMESPACE}`);
  },
  !!KEY,
);

// ---- run -----------------------------------------------------------------------------------

async function main() {
  console.log(`m3o: the m3o client against ${ADDRESS}${KEY ? ` with an API key for ${NAMESPACE}` : " (anonymous)"}`);
  const failed = [];
  for (const { name, run } of sections) {
    current = name;
    try {
      await run();
    } catch (e) {
      const message = e instanceof Failure ? e.message : `unexpected: ${e && e.stack ? e.stack : e}`;
      console.error(`m3o: FAILED in ${name}: ${message}`);
      failed.push(name);
      if (!KEEP_GOING) break;
    }
  }
  for (const stream of streams) stream.conn.terminate();
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`m3o: ids ${JSON.stringify(ids)}`);
  if (failed.length && KEEP_GOING) {
    console.error(`m3o: ${failed.length} of ${sections.length} sections failed, in ${secs} s`);
    process.exit(1);
  }
  if (failed.length) {
    const ran = sections.findIndex((s) => s.name === failed[0]) + 1;
    console.error(`m3o: stopped at the first failing section, ${ran} of ${sections.length} (--keep-going runs every one), in ${secs} s`);
    process.exit(1);
  }
  console.log(`m3o: all ${sections.length} sections (${step} steps) passed in ${secs} s`);
  process.exit(0);
}

main().catch((e) => {
  console.error(`m3o: FAILED in ${current}: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});

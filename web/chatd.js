/*! chatd.js: a dependency-free browser client for chatd (the m3o `chat` and `chats` APIs).
 *
 *   const client = new Chatd({ namespace: "micro", token: "" });   // url defaults to this page's origin
 *   const { chat_id } = await client.chat.new({ user_ids: ["alice", "bob"] });
 *   await client.chat.send({ chat_id, user_id: "alice", text: "hi" });
 *   const { messages } = await client.chat.history({ chat_id });
 *
 *   const stream = client.chat.connect({ chat_id, user_id: "alice", since: lastSeq });
 *   stream.onMessage((msg) => ...);    // each seq once, in order, across reconnects
 *   stream.onError((err) => ...);      // micro errors: {id, code, detail, status[, client_id]}
 *   stream.onClose((why) => ...);      // the stream ended for good: close(), or the server refused it
 *   stream.onStatus((status) => ...);  // "connecting", "open", "reconnecting", "closed"
 *   const clientId = stream.send({ text: "hello", subject: "" });
 *   stream.lastSeq; stream.status; stream.retryIn; stream.pending; stream.reconnect(); stream.close();
 *
 * A dropped connection is reopened by itself with exponential backoff (250 ms doubling to 5 s,
 * jittered), resuming with `since` = the last seq delivered, so nothing is missed and nothing
 * repeats: a frame whose seq was delivered already is dropped, and one past a gap makes the
 * stream resume from the last seq instead. Without `since`, the stream starts at the chat's
 * current last seq (asked of History), so only new messages arrive but a reconnect still knows
 * where it stopped.
 *
 * Sends made while disconnected wait in an outbox and are sent again on every new connection,
 * with the same client_id, until their echo arrives: the server stores a client_id once, so each
 * message is stored exactly once. A refusal (an error frame with that client_id) takes it out
 * of the outbox. The token, if any, goes as `authorization: Bearer` on calls and as the `token`
 * query parameter on the stream (browsers cannot set headers on a WebSocket).
 *
 * For pages written against m3o's Micro.js, `Micro.post(path, namespace, body, onSuccess)` and
 * `Micro.requireLogin(fn)` are defined too when no `Micro` exists (set `Micro.token` to send one).
 */
(function (root) {
  "use strict";

  var BACKOFF_MIN_MS = 250;
  var BACKOFF_MAX_MS = 5000;
  /** A connection that lasted this long counts as healthy: the next retry starts from the minimum. */
  var HEALTHY_MS = 5000;
  /**
   * The oldest unanswered message, sent on this many connections that all dropped before its
   * echo came back, is given up on: it is what keeps breaking the connection.
   */
  var MAX_TRIES = 8;
  /** The server's `server.max_body_bytes` default: it drops a connection on a larger frame. */
  var MAX_FRAME_BYTES = 64 * 1024;

  /** A micro error: `{id, code, detail, status}`, plus `client_id` for a refused stream send. */
  class ChatdError extends Error {
    constructor(body) {
      super(body.detail || body.id || "chatd error");
      this.name = "ChatdError";
      this.id = body.id || "chatd.Error";
      this.code = body.code || 0;
      this.detail = body.detail || "";
      this.status = body.status || "";
      if (body.client_id) this.client_id = body.client_id;
    }
  }

  function uuid() {
    var c = root.crypto;
    if (c && typeof c.randomUUID === "function") return c.randomUUID();
    // randomUUID needs a secure context; getRandomValues does not.
    var b = new Uint8Array(16);
    if (c && c.getRandomValues) c.getRandomValues(b);
    else for (var i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) {
      return (x + 0x100).toString(16).slice(1);
    }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  /** Close codes after which reconnecting cannot help: the server refused the stream (4000 + a 4xx). */
  function refused(code) {
    return code >= 4400 && code < 4500 && code !== 4408 && code !== 4429;
  }

  class Chatd {
    /** @param {{url?: string, namespace?: string, token?: string, maxFrameBytes?: number}} [opts] */
    constructor(opts) {
      opts = opts || {};
      var origin = root.location && /^https?:/.test(root.location.protocol) ? root.location.origin : "";
      this.url = String(opts.url || origin).replace(/\/+$/, "");
      this.namespace = opts.namespace || "micro";
      this.token = opts.token || "";
      this.maxFrameBytes = opts.maxFrameBytes || MAX_FRAME_BYTES;
      var self = this;
      var ep = function (path) {
        return function (req) {
          return self.call(path, req);
        };
      };
      this.chat = {
        new: ep("/chat/New"),
        send: ep("/chat/Send"),
        history: ep("/chat/History"),
        connect: function (req) {
          return new ChatdStream(self, req);
        },
      };
      this.chats = {
        createChat: ep("/chats/CreateChat"),
        sendMessage: ep("/chats/SendMessage"),
        listMessages: ep("/chats/ListMessages"),
      };
    }

    /** POSTs `body` as JSON to `path`; resolves with the response, rejects with a ChatdError. */
    async call(path, body) {
      var headers = { "content-type": "application/json", "micro-namespace": this.namespace };
      if (this.token) headers.authorization = "Bearer " + this.token;
      var res, text;
      try {
        res = await fetch(this.url + path, { method: "POST", headers: headers, body: JSON.stringify(body || {}) });
        text = await res.text();
      } catch (e) {
        throw new ChatdError({ id: "chatd.Network", code: 0, detail: String((e && e.message) || e), status: "Network Error" });
      }
      var data = null;
      try {
        data = text ? JSON.parse(text) : {};
      } catch (e) {
        /* not JSON: reported below */
      }
      if (!res.ok || data === null) {
        throw new ChatdError(data && data.id ? data : { id: "chatd.HTTP", code: res.status, detail: text.slice(0, 200), status: res.statusText });
      }
      return data;
    }
  }

  /** A Connect stream that survives dropped connections. Made by `client.chat.connect(req)`. */
  class ChatdStream {
    constructor(client, req) {
      req = req || {};
      this.client = client;
      this.chat_id = req.chat_id;
      this.user_id = req.user_id || "";
      /** The highest seq delivered; with no `since`, found from History before connecting. */
      var since = req.since === undefined || req.since === null || req.since === "" ? NaN : Number(req.since);
      this.lastSeq = since >= 0 ? Math.floor(since) : null;
      /** "idle" until the first connection starts on the next tick. */
      this.status = "idle";
      /** While "reconnecting": milliseconds until the next try (0: trying now). */
      this.retryIn = 0;
      this._on = { message: [], error: [], close: [], status: [] };
      this._outbox = new Map(); // client_id -> {frame, tries}, until its echo arrives
      this._ws = null;
      this._timer = null;
      this._attempt = 0;
      this._ended = false;
      var self = this;
      this._online = function () {
        if (self.status === "reconnecting") self.reconnect();
      };
      if (root.addEventListener) root.addEventListener("online", this._online);
      // Open on the next tick, so handlers attached right after connect() see everything.
      setTimeout(function () {
        self._open();
      }, 0);
    }

    onMessage(fn) { this._on.message.push(fn); return this; }
    onError(fn) { this._on.error.push(fn); return this; }
    onClose(fn) { this._on.close.push(fn); return this; }
    onStatus(fn) { this._on.status.push(fn); return this; }

    /** Client ids sent but not yet seen back on the stream. */
    get pending() {
      return Array.from(this._outbox.keys());
    }

    /**
     * Sends a message: `send({text, subject, client_id})` or `send(text, subject)`. Returns its
     * client_id; its echo (a message with that client_id and a seq) arrives through onMessage,
     * a refusal through onError with that client_id. Queued while disconnected.
     */
    send(text, subject) {
      var msg = typeof text === "object" && text !== null ? text : { text: text, subject: subject };
      if (this._ended) throw new ChatdError({ id: "chatd.Closed", code: 0, detail: "the stream is closed", status: "Closed" });
      var id = msg.client_id || msg.client || uuid();
      var frame = JSON.stringify({ text: msg.text, subject: msg.subject || "", client_id: id });
      if (new TextEncoder().encode(frame).length > this.client.maxFrameBytes) {
        throw new ChatdError({ id: "chat.Send.TooLarge", code: 413, detail: "the message is larger than " + this.client.maxFrameBytes + " bytes", status: "Payload Too Large", client_id: id });
      }
      this._outbox.set(id, { frame: frame, tries: 0 });
      if (this.status === "open" && this._ws && this._ws.readyState === 1) this._ws.send(frame);
      return id;
    }

    /** On a new connection: sends the outbox again, giving up its head after MAX_TRIES. */
    _flush(ws) {
      for (;;) {
        var head = this._outbox.entries().next().value;
        if (!head || head[1].tries < MAX_TRIES) break;
        this._outbox.delete(head[0]);
        this._emit("error", new ChatdError({ id: "chatd.Undelivered", code: 0, detail: "sent on " + MAX_TRIES + " connections, each dropped before an answer", status: "Undelivered", client_id: head[0] }));
      }
      var first = true;
      this._outbox.forEach(function (entry) {
        if (first) entry.tries++;
        first = false;
        ws.send(entry.frame);
      });
    }

    /** Ends the stream for good. Unsent messages are dropped. */
    close() {
      this._end({ code: 1000, reason: "closed by the client" });
    }

    /** Drops the current connection (if any) and reconnects at once. */
    reconnect() {
      if (this._ended) return;
      clearTimeout(this._timer);
      this._timer = null;
      this._attempt = 0;
      this._drop();
      this._open();
    }

    _emit(kind, value) {
      this._on[kind].forEach(function (fn) {
        try {
          fn(value);
        } catch (e) {
          setTimeout(function () { throw e; }, 0); // a handler's bug must not break the stream
        }
      });
    }

    /** Tells onStatus handlers; "reconnecting" is told on every retry (the delay is `retryIn`). */
    _setStatus(status) {
      if (this.status === status && status !== "reconnecting") return;
      this.status = status;
      this._emit("status", status);
    }

    _drop() {
      var ws = this._ws;
      this._ws = null;
      if (ws) {
        ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
        try { ws.close(1000, "reconnecting"); } catch (e) { /* already closed */ }
      }
    }

    _end(why) {
      if (this._ended) return;
      this._ended = true;
      clearTimeout(this._timer);
      this._drop();
      if (root.removeEventListener) root.removeEventListener("online", this._online);
      this._outbox.clear();
      this._setStatus("closed");
      this._emit("close", why);
    }

    async _open() {
      if (this._ended || this._ws || this._timer) return;
      this.retryIn = 0;
      this._setStatus(this._attempt > 0 || this._everOpen ? "reconnecting" : "connecting");
      if (this.lastSeq === null) {
        // Without `since` only new messages would arrive, and a reconnect could not say where
        // it stopped: start from the chat's current last seq instead.
        try {
          var h = await this.client.call("/chat/History", { chat_id: this.chat_id, limit: 1 });
          if (this.lastSeq === null) this.lastSeq = h.messages && h.messages.length ? h.messages[h.messages.length - 1].seq : 0;
        } catch (err) {
          this._emit("error", err);
          if (err.code >= 400 && err.code < 500 && err.code !== 408 && err.code !== 429) this._end({ code: 4000 + err.code, reason: err.id, error: err });
          else this._retry();
          return;
        }
        if (this._ended || this._ws || this._timer) return;
      }
      var q = new URLSearchParams({ chat_id: this.chat_id, namespace: this.client.namespace, since: String(this.lastSeq) });
      if (this.user_id) q.set("user_id", this.user_id);
      if (this.client.token) q.set("token", this.client.token);
      var base = this.client.url.replace(/^http/, "ws");
      var ws;
      try {
        ws = new WebSocket(base + "/chat/Connect?" + q.toString());
      } catch (e) {
        this._emit("error", new ChatdError({ id: "chatd.Network", code: 0, detail: String(e.message || e), status: "Network Error" }));
        return this._retry();
      }
      this._ws = ws;
      var self = this;
      var openedAt = 0;
      var refusal = null;
      ws.onopen = function () {
        openedAt = Date.now();
        self._everOpen = true;
        self._setStatus("open");
        self._flush(ws);
      };
      ws.onmessage = function (ev) {
        var err = self._frame(ev.data);
        if (err) refusal = err;
      };
      ws.onerror = function () { /* a close event always follows */ };
      ws.onclose = function (ev) {
        self._ws = null;
        if (self._ended) return;
        if (refused(ev.code)) {
          return self._end({ code: ev.code, reason: ev.reason, error: refusal });
        }
        if (openedAt && Date.now() - openedAt >= HEALTHY_MS) self._attempt = 0;
        self._retry();
      };
    }

    /** Handles one server frame; returns a stream-level error frame, if it was one. */
    _frame(data) {
      var m;
      try {
        m = JSON.parse(data);
      } catch (e) {
        this._emit("error", new ChatdError({ id: "chatd.BadFrame", code: 0, detail: "a frame that is not JSON", status: "Bad Frame" }));
        return null;
      }
      if (m && typeof m.seq === "number") {
        if (m.client_id) this._outbox.delete(m.client_id);
        if (m.seq <= this.lastSeq) return null; // delivered already
        if (m.seq !== this.lastSeq + 1) {
          // Never deliver past a gap: resume from the last seq delivered.
          this._emit("error", new ChatdError({ id: "chatd.Gap", code: 0, detail: "expected seq " + (this.lastSeq + 1) + ", got " + m.seq, status: "Gap" }));
          this._drop();
          this._retry();
          return null;
        }
        this.lastSeq = m.seq;
        this._attempt = 0;
        this._emit("message", m);
        return null;
      }
      if (m && m.id && m.code) {
        var err = new ChatdError(m);
        if (err.client_id) this._outbox.delete(err.client_id);
        this._emit("error", err);
        return err.client_id ? null : err;
      }
      return null;
    }

    _retry() {
      if (this._ended || this._timer) return;
      var max = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * Math.pow(2, this._attempt));
      this._attempt++;
      var delay = Math.round(max / 2 + (Math.random() * max) / 2);
      this.retryIn = delay;
      this._setStatus("reconnecting");
      var self = this;
      this._timer = setTimeout(function () {
        self._timer = null;
        self._open();
      }, delay);
    }
  }

  Chatd.Stream = ChatdStream;
  Chatd.Error = ChatdError;
  Chatd.uuid = uuid;
  root.Chatd = Chatd;

  if (!root.Micro) {
    // Micro.js's calls, so m3o pages keep working with only their script src changed.
    root.Micro = {
      requireLogin: function (fn) { fn(); },
      post: function (path, namespace, body, onSuccess, onError) {
        new Chatd({ namespace: namespace, token: root.Micro.token })
          .call(path, body)
          .then(onSuccess || function () {}, onError || function (e) { console.error(e); });
      },
    };
  }

  if (typeof module === "object" && module.exports) module.exports = Chatd;
})(typeof globalThis !== "undefined" ? globalThis : this);

// The chat page: pick a namespace, chat and user; see the history, then live messages; send.
// `?namespace=..&chat_id=..&user_id=..` opens a chat at once (a token may follow in `#token=..`).
"use strict";

(function () {
  var $ = function (id) { return document.getElementById(id); };
  var HISTORY_PAGE = 100;
  var current = null; // {client, stream, user_id, chat_id}

  var STATUS_TEXT = {
    idle: "Not connected",
    loading: "Loading history…",
    connecting: "Connecting…",
    open: "Live",
    reconnecting: "Reconnecting…",
    closed: "Disconnected",
  };

  function setStatus(state, text) {
    var el = $("status");
    el.dataset.state = state;
    el.textContent = text || STATUS_TEXT[state] || state;
  }

  function showError(err) {
    var el = $("error");
    if (!err) {
      el.hidden = true;
      el.textContent = "";
      return;
    }
    el.textContent = err.id ? err.detail + " (" + err.id + ")" : String(err.message || err);
    el.hidden = false;
  }

  function fields() {
    return {
      namespace: $("namespace").value.trim() || "micro",
      chat_id: $("chat_id").value.trim(),
      user_id: $("user_id").value.trim(),
      token: $("token").value.trim(),
    };
  }

  function time(sentAt) {
    if (!sentAt) return "";
    var d = new Date(sentAt * 1000);
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function item(msg, pending) {
    var li = document.createElement("li");
    li.className = "message" + (current && msg.user_id === current.user_id ? " mine" : "") + (pending ? " pending" : "");
    if (pending) li.dataset.clientId = msg.client_id;
    else li.dataset.seq = String(msg.seq);
    var meta = document.createElement("div");
    meta.className = "meta";
    var who = document.createElement("span");
    who.className = "who";
    who.textContent = msg.user_id;
    meta.appendChild(who);
    var when = document.createElement("time");
    if (msg.sent_at) when.dateTime = new Date(msg.sent_at * 1000).toISOString();
    when.textContent = pending ? "sending…" : time(msg.sent_at);
    meta.appendChild(when);
    li.appendChild(meta);
    if (msg.subject) {
      var subject = document.createElement("strong");
      subject.className = "subject";
      subject.textContent = msg.subject;
      li.appendChild(subject);
    }
    var text = document.createElement("p");
    text.className = "text";
    text.textContent = msg.text;
    li.appendChild(text);
    return li;
  }

  /** Shows messages in seq order, each once; a message replaces its pending copy. */
  function show(msgs, prepend) {
    var list = $("messages");
    var log = $("log");
    var atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    var first = list.querySelector("li[data-seq]");
    msgs.forEach(function (msg) {
      if (list.querySelector('li[data-seq="' + msg.seq + '"]')) return;
      if (msg.client_id) {
        list.querySelectorAll("li.pending").forEach(function (li) {
          if (li.dataset.clientId === msg.client_id) li.remove();
        });
      }
      var li = item(msg, false);
      if (prepend) list.insertBefore(li, first);
      else list.insertBefore(li, list.querySelector("li.pending"));
    });
    $("empty").hidden = list.children.length > 0;
    if (!prepend && atBottom) log.scrollTop = log.scrollHeight;
  }

  function leave() {
    if (current && current.stream) current.stream.close();
    current = null;
    window.chatdStream = null;
    $("messages").textContent = "";
    $("older").hidden = true;
    $("empty").hidden = true;
    $("text").disabled = $("send").disabled = true;
  }

  async function open(f) {
    leave();
    showError(null);
    var client = new Chatd({ namespace: f.namespace, token: f.token });
    var me = (current = { client: client, user_id: f.user_id, chat_id: f.chat_id, stream: null });
    setStatus("loading");
    var page;
    try {
      page = await client.chat.history({ chat_id: f.chat_id, limit: HISTORY_PAGE });
    } catch (err) {
      if (current !== me) return;
      setStatus("idle");
      return showError(err);
    }
    if (current !== me) return;
    var msgs = page.messages || [];
    show(msgs, false);
    $("older").hidden = msgs.length < HISTORY_PAGE;
    var since = msgs.length ? msgs[msgs.length - 1].seq : 0;

    var stream = client.chat.connect({ chat_id: f.chat_id, user_id: f.user_id, since: since });
    me.stream = stream;
    window.chatdStream = stream; // for tests and the console
    stream.onMessage(function (msg) { show([msg], false); });
    stream.onStatus(function (status) {
      if (status === "reconnecting" && stream.retryIn) {
        setStatus(status, "Reconnecting in " + (stream.retryIn / 1000).toFixed(1) + " s…");
      } else {
        setStatus(status);
      }
      if (status === "open") showError(null);
    });
    stream.onError(function (err) {
      if (err.client_id) {
        document.querySelectorAll("#messages li.pending").forEach(function (li) {
          if (li.dataset.clientId === err.client_id) {
            li.classList.add("failed");
            li.querySelector("time").textContent = "not sent";
          }
        });
      }
      showError(err);
    });
    stream.onClose(function (why) {
      if (current !== me) return;
      setStatus("closed", why.reason ? "Disconnected: " + why.reason : undefined);
      $("text").disabled = $("send").disabled = true;
    });
    $("text").disabled = $("send").disabled = false;
    remember(f);
    $("text").focus();
  }

  async function older() {
    var me = current;
    var first = $("messages").querySelector("li[data-seq]");
    if (!me || !first) return;
    try {
      var res = await me.client.chat.history({ chat_id: me.chat_id, limit: HISTORY_PAGE, before_seq: Number(first.dataset.seq) });
      if (current !== me) return;
      var msgs = res.messages || [];
      show(msgs, true); // oldest first, each before what was shown first
      $("older").hidden = msgs.length < HISTORY_PAGE;
    } catch (err) {
      showError(err);
    }
  }

  /** Puts the chat in the address, so a reload or a shared link opens it again (never the token). */
  function remember(f) {
    var q = new URLSearchParams({ namespace: f.namespace, chat_id: f.chat_id, user_id: f.user_id });
    history.replaceState(null, "", "?" + q.toString() + location.hash);
  }

  async function newChat() {
    var f = fields();
    var users = $("user_ids").value.split(",").map(function (u) { return u.trim(); }).filter(Boolean);
    if (f.user_id && users.indexOf(f.user_id) < 0) users.unshift(f.user_id);
    if (!users.length) {
      showError(new Error("Name the chat's users, comma separated."));
      return $("user_ids").focus();
    }
    showError(null);
    try {
      var res = await new Chatd({ namespace: f.namespace, token: f.token }).chat.new({ user_ids: users });
      $("chat_id").value = res.chat_id;
      if (!f.user_id) $("user_id").value = users[0];
      open(fields());
    } catch (err) {
      showError(err);
    }
  }

  function send(ev) {
    ev.preventDefault();
    var input = $("text");
    var text = input.value.trim();
    if (!text || !current || !current.stream) return;
    var clientId;
    try {
      clientId = current.stream.send({ text: text });
    } catch (err) {
      return showError(err);
    }
    $("messages").appendChild(item({ client_id: clientId, user_id: current.user_id, text: text }, true));
    $("empty").hidden = true;
    input.value = "";
    $("log").scrollTop = $("log").scrollHeight;
  }

  $("join").addEventListener("submit", function (ev) {
    ev.preventDefault();
    open(fields());
  });
  $("new-chat").addEventListener("click", newChat);
  $("older").addEventListener("click", older);
  $("compose").addEventListener("submit", send);

  var q = new URLSearchParams(location.search);
  ["namespace", "chat_id", "user_id"].forEach(function (name) {
    if (q.get(name)) $(name).value = q.get(name);
  });
  var token = new URLSearchParams(location.hash.slice(1)).get("token");
  if (token) $("token").value = token;
  if (q.get("chat_id") && q.get("user_id")) open(fields());
})();

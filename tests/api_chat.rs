//! The `chat` service over HTTP (New, Send, History), against the real server and storage.

mod helpers;

use actix_web::http::Method;
use futures_util::future::join_all;
use serde_json::{json, Value};

use chatd::config::Membership;
use helpers::{assert_error, seqs, spawn_app, spawn_app_with, texts, TestApp};

const PREFIXES: [&str; 3] = ["/chat", "/chat/Chat", "/v1/chat"];

/// Sends `n` messages `m1`..`mn` from `alice` to a new chat of alice and bob.
async fn chat_with(app: &TestApp, n: usize) -> String {
    let chat = app.new_chat(&["alice", "bob"]).await;
    for i in 1..=n {
        app.send(&chat, "alice", &format!("m{i}")).await;
    }
    chat
}

fn range(lo: u64, hi: u64) -> Vec<u64> {
    (lo..=hi).collect()
}

// ---- paths and bodies ----

#[actix_web::test]
async fn every_endpoint_answers_on_all_three_paths() {
    let app = spawn_app().await;
    for (i, prefix) in PREFIXES.iter().enumerate() {
        let user = format!("user{i}");
        let (status, body) = app.post(&format!("{prefix}/New"), json!({ "user_ids": [user] })).await;
        assert_eq!(status, 200, "{prefix}/New: {body}");
        let chat = body["chat_id"].as_str().expect("chat_id").to_owned();
        assert!(!chat.is_empty());

        let (status, body) = app
            .post(
                &format!("{prefix}/Send"),
                json!({ "chat_id": chat, "user_id": user, "text": format!("via {prefix}") }),
            )
            .await;
        assert_eq!(status, 200, "{prefix}/Send: {body}");
        assert_eq!(body["message"]["text"], format!("via {prefix}"));
        assert_eq!(body["message"]["seq"], 1);

        let (status, body) = app.post(&format!("{prefix}/History"), json!({ "chat_id": chat })).await;
        assert_eq!(status, 200, "{prefix}/History: {body}");
        let messages = body["messages"].as_array().expect("messages");
        assert_eq!(texts(messages), [format!("via {prefix}")]);
    }
}

#[actix_web::test]
async fn send_returns_the_whole_message() {
    let app = spawn_app().await;
    let chat = app.new_chat(&["John", "Barry"]).await;
    let before = chatd::model::now_secs();
    let (status, body) = app
        .post(
            "/chat/Send",
            json!({ "chat_id": chat, "user_id": "John", "subject": "Hello", "text": "Hey Barry", "client_id": "c-1" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let m = &body["message"];
    let mut keys: Vec<&str> = m.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["chat_id", "client_id", "id", "sent_at", "seq", "subject", "text", "user_id"]);
    assert_eq!(m["chat_id"], chat.as_str());
    assert_eq!(m["user_id"], "John");
    assert_eq!(m["subject"], "Hello");
    assert_eq!(m["text"], "Hey Barry");
    assert_eq!(m["client_id"], "c-1");
    assert_eq!(m["seq"], 1);
    assert!(!m["id"].as_str().unwrap().is_empty());
    let sent_at = m["sent_at"].as_i64().expect("sent_at is a number");
    assert!(sent_at >= before && sent_at <= chatd::model::now_secs() + 1);

    // History shows the same message, field for field.
    let history = app.history(json!({ "chat_id": chat })).await;
    assert_eq!(history, std::slice::from_ref(m));

    // Without a client_id the server allocates a distinct one per send.
    let a = app.send(&chat, "Barry", "one").await;
    let b = app.send(&chat, "Barry", "two").await;
    let (ca, cb) = (a["client_id"].as_str().unwrap(), b["client_id"].as_str().unwrap());
    assert!(!ca.is_empty() && !cb.is_empty());
    assert_ne!(ca, cb);
    assert_ne!(a["id"], b["id"]);
}

#[actix_web::test]
async fn bodies_are_json_whatever_the_content_type() {
    let app = spawn_app().await;
    for (i, headers) in
        [&[("content-type", "application/x-www-form-urlencoded")][..], &[][..], &[("content-type", "text/plain")][..]]
            .into_iter()
            .enumerate()
    {
        let new = format!(r#"{{"user_ids":["John{i}","Barry"]}}"#);
        let reply = app.post_raw("/chat/New", new, headers).await;
        assert_eq!(reply.status, 200, "{headers:?}: {}", reply.body);
        let chat = reply.body["chat_id"].as_str().expect("chat_id").to_owned();

        let send = json!({ "chat_id": chat, "user_id": format!("John{i}"), "text": format!("{headers:?}") });
        let reply = app.post_raw("/chat/Send", send.to_string(), headers).await;
        assert_eq!(reply.status, 200, "{headers:?}: {}", reply.body);
        assert_eq!(reply.body["message"]["text"], format!("{headers:?}"));

        let reply = app.post_raw("/chat/History", json!({ "chat_id": chat }).to_string(), headers).await;
        assert_eq!(reply.status, 200, "{headers:?}: {}", reply.body);
        assert_eq!(reply.body["messages"].as_array().unwrap().len(), 1);
    }
}

#[actix_web::test]
async fn an_empty_body_means_an_empty_object() {
    let app = spawn_app().await;
    for (path, id) in [
        ("/chat/New", "chat.New.MissingUserIDs"),
        ("/chat/Send", "chat.Send.MissingChatID"),
        ("/chat/History", "chat.History.MissingChatID"),
    ] {
        for body in ["", "  \n"] {
            let reply = app.post_raw(path, body, &[("content-type", "application/x-www-form-urlencoded")]).await;
            assert_error(reply.status, &reply.body, 400, id);
            let reply = app.post_raw(path, body, &[]).await;
            assert_error(reply.status, &reply.body, 400, id);
        }
    }
}

#[actix_web::test]
async fn unknown_request_fields_are_ignored() {
    let app = spawn_app().await;
    let (status, body) =
        app.post("/chat/New", json!({ "user_ids": ["a"], "name": "x", "extra": { "deep": [1] } })).await;
    assert_eq!(status, 200, "{body}");
    let chat = body["chat_id"].as_str().unwrap();
    let (status, body) =
        app.post("/chat/Send", json!({ "chat_id": chat, "user_id": "a", "text": "t", "whatever": 3 })).await;
    assert_eq!(status, 200, "{body}");
}

// ---- validation ----

#[actix_web::test]
async fn send_checks_chat_id_then_user_id_then_text() {
    let app = spawn_app().await;
    let cases = [
        (json!({}), "chat.Send.MissingChatID"),
        (json!({ "user_id": "u", "text": "t" }), "chat.Send.MissingChatID"),
        (json!({ "chat_id": "", "user_id": "u", "text": "t" }), "chat.Send.MissingChatID"),
        (json!({ "chat_id": null, "user_id": "u", "text": "t" }), "chat.Send.MissingChatID"),
        (json!({ "chat_id": "nope", "text": "t" }), "chat.Send.MissingUserID"),
        (json!({ "chat_id": "nope" }), "chat.Send.MissingUserID"),
        (json!({ "chat_id": "nope", "user_id": "", "text": "t" }), "chat.Send.MissingUserID"),
        (json!({ "chat_id": "nope", "user_id": "u" }), "chat.Send.MissingText"),
        (json!({ "chat_id": "nope", "user_id": "u", "text": "" }), "chat.Send.MissingText"),
    ];
    for (request, id) in cases {
        let (status, body) = app.post("/chat/Send", request.clone()).await;
        assert_error(status, &body, 400, id);
    }
    // All present but the chat does not exist: the 400s come before the 404.
    let (status, body) = app.post("/chat/Send", json!({ "chat_id": "nope", "user_id": "u", "text": "t" })).await;
    assert_error(status, &body, 404, "chat.Send.NotFound");
}

#[actix_web::test]
async fn new_needs_at_least_one_user() {
    let app = spawn_app().await;
    for request in [json!({}), json!({ "user_ids": [] }), json!({ "user_ids": null })] {
        let (status, body) = app.post("/chat/New", request).await;
        assert_error(status, &body, 400, "chat.New.MissingUserIDs");
    }
    // One user is allowed.
    let (status, body) = app.post("/chat/New", json!({ "user_ids": ["solo"] })).await;
    assert_eq!(status, 200, "{body}");
}

#[actix_web::test]
async fn history_needs_a_chat_id() {
    let app = spawn_app().await;
    for request in [json!({}), json!({ "chat_id": "" }), json!({ "limit": 5 })] {
        let (status, body) = app.post("/chat/History", request).await;
        assert_error(status, &body, 400, "chat.History.MissingChatID");
    }
}

#[actix_web::test]
async fn malformed_json_and_wrong_types_are_bad_requests() {
    let app = spawn_app().await;
    let cases: [(&str, &str, &str); 12] = [
        ("/chat/New", "{", "chat.New.BadRequest"),
        ("/chat/New", "not json", "chat.New.BadRequest"),
        ("/chat/New", "[1,2]", "chat.New.BadRequest"),
        ("/chat/New", r#"{"user_ids":"a,b"}"#, "chat.New.BadRequest"),
        ("/chat/New", r#"{"user_ids":[1,2]}"#, "chat.New.BadRequest"),
        ("/chat/Send", r#"{"chat_id":"c","user_id":"u","text":"t""#, "chat.Send.BadRequest"),
        ("/chat/Send", r#"{"chat_id":5,"user_id":"u","text":"t"}"#, "chat.Send.BadRequest"),
        ("/chat/Send", r#"{"chat_id":"c","user_id":"u","text":["t"]}"#, "chat.Send.BadRequest"),
        ("/chat/Send", r#"{"chat_id":"c","user_id":"u","text":"t","subject":1}"#, "chat.Send.BadRequest"),
        ("/chat/History", r#"{"chat_id":"c","limit":true}"#, "chat.History.BadRequest"),
        ("/chat/History", r#"{"chat_id":"c","before_seq":{}}"#, "chat.History.BadRequest"),
        ("/chat/History", "null", "chat.History.BadRequest"),
    ];
    for (path, body, id) in cases {
        let reply = app.post_raw(path, body, &[("content-type", "application/json")]).await;
        assert_error(reply.status, &reply.body, 400, id);
    }
}

#[actix_web::test]
async fn history_rejects_negative_fractional_and_non_numeric_integers() {
    let app = spawn_app().await;
    let chat = chat_with(&app, 3).await;
    for (field, value) in [
        ("limit", json!(-1)),
        ("limit", json!(1.5)),
        ("limit", json!("-1")),
        ("limit", json!("2.5")),
        ("limit", json!("five")),
        ("limit", json!(1e30)),
        ("before_seq", json!(-2)),
        ("before_seq", json!(0.5)),
        ("after_seq", json!(-1)),
        ("after_seq", json!(2.25)),
        ("after_seq", json!("x")),
    ] {
        let (status, body) = app.post("/chat/History", json!({ "chat_id": chat, field: value })).await;
        assert_error(status, &body, 400, "chat.History.BadRequest");
    }
}

#[actix_web::test]
async fn bad_ids_are_rejected() {
    let app = spawn_app().await;
    let chat = app.new_chat(&["alice", "bob"]).await;
    let long = "x".repeat(257);
    let cases = [
        ("/chat/New", json!({ "user_ids": ["ok", "bad\nid"] }), "chat.New.BadID"),
        ("/chat/New", json!({ "user_ids": [long] }), "chat.New.BadID"),
        ("/chat/New", json!({ "user_ids": ["a", ""] }), "chat.New.BadID"),
        ("/chat/Send", json!({ "chat_id": "bad\u{7}chat", "user_id": "alice", "text": "t" }), "chat.Send.BadID"),
        ("/chat/Send", json!({ "chat_id": long, "user_id": "alice", "text": "t" }), "chat.Send.BadID"),
        ("/chat/Send", json!({ "chat_id": chat, "user_id": "al\tice", "text": "t" }), "chat.Send.BadID"),
        ("/chat/Send", json!({ "chat_id": chat, "user_id": long, "text": "t" }), "chat.Send.BadID"),
        (
            "/chat/Send",
            json!({ "chat_id": chat, "user_id": "alice", "text": "t", "client_id": "c\u{0}" }),
            "chat.Send.BadID",
        ),
        (
            "/chat/Send",
            json!({ "chat_id": chat, "user_id": "alice", "text": "t", "client_id": long }),
            "chat.Send.BadID",
        ),
        ("/chat/History", json!({ "chat_id": "\u{1b}[0m" }), "chat.History.BadID"),
        ("/chat/History", json!({ "chat_id": long }), "chat.History.BadID"),
    ];
    for (path, request, id) in cases {
        let (status, body) = app.post(path, request.clone()).await;
        assert_error(status, &body, 400, id);
    }
    // Nothing was stored by the rejected sends.
    assert!(app.history(json!({ "chat_id": chat })).await.is_empty());

    // A namespace follows the same rules.
    let (status, body) = app.post_ns(&long, "/chat/New", json!({ "user_ids": ["a"] })).await;
    assert_error(status, &body, 400, "chat.New.BadID");
    let (status, body) = app.post_ns("te\tnant", "/chat/History", json!({ "chat_id": chat })).await;
    assert_error(status, &body, 400, "chat.History.BadID");
}

#[actix_web::test]
async fn ids_are_data_up_to_256_bytes() {
    let app = spawn_app().await;
    let max = "é".repeat(128); // 256 bytes
    let odd = "../etc/passwd $HOME. ünï/çødé 💬";
    let chat = app.new_chat(&[&max, odd]).await;
    let m = app.send(&chat, odd, "hi").await;
    assert_eq!(m["user_id"], odd);
    let (status, body) =
        app.post("/chat/Send", json!({ "chat_id": chat, "user_id": max, "text": "yo", "client_id": max })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"]["client_id"], max.as_str());
    let history = app.history(json!({ "chat_id": chat })).await;
    assert_eq!(texts(&history), ["hi", "yo"]);
}

#[actix_web::test]
async fn unknown_chat_is_not_found() {
    let app = spawn_app().await;
    let (status, body) =
        app.post("/chat/Send", json!({ "chat_id": "no-such-chat", "user_id": "u", "text": "t" })).await;
    assert_error(status, &body, 404, "chat.Send.NotFound");
    let (status, body) = app.post("/v1/chat/History", json!({ "chat_id": "no-such-chat" })).await;
    assert_error(status, &body, 404, "chat.History.NotFound");
}

#[actix_web::test]
async fn unknown_paths_are_chatd_not_found() {
    let app = spawn_app().await;
    for path in [
        "/chat",
        "/chat/Nope",
        "/chat/Chat/Nope",
        "/v1/chat/Nope",
        "/v2/chat/Send",
        "/chat/Chats/Send",
        "/chat/Send/extra",
        "/nothing/here",
    ] {
        let reply = app.post_raw(path, "{}", &[("content-type", "application/json")]).await;
        assert_error(reply.status, &reply.body, 404, "chatd.NotFound");
        let reply = app.request(Method::GET, path, &[], "").await;
        assert_error(reply.status, &reply.body, 404, "chatd.NotFound");
    }
}

#[actix_web::test]
async fn wrong_method_is_405_naming_the_endpoint() {
    let app = spawn_app().await;
    for (method, path, id) in [
        (Method::GET, "/chat/Send", "chat.Send.MethodNotAllowed"),
        (Method::GET, "/chat/Chat/Send", "chat.Send.MethodNotAllowed"),
        (Method::PUT, "/v1/chat/Send", "chat.Send.MethodNotAllowed"),
        (Method::GET, "/chat/New", "chat.New.MethodNotAllowed"),
        (Method::DELETE, "/chat/History", "chat.History.MethodNotAllowed"),
    ] {
        let reply = app.request(method.clone(), path, &[], "").await;
        assert_error(reply.status, &reply.body, 405, id);
        let allow = reply.header("allow").unwrap_or_else(|| panic!("{method} {path}: no Allow"));
        assert!(allow.contains("POST"), "{method} {path}: Allow: {allow}");
    }
}

#[actix_web::test]
async fn bodies_over_the_limit_are_413() {
    let app = spawn_app().await;
    let chat = app.new_chat(&["alice"]).await;
    let big = "x".repeat(64 * 1024);
    let request = json!({ "chat_id": chat, "user_id": "alice", "text": big }).to_string();
    assert!(request.len() > 64 * 1024);

    // With a Content-Length.
    let reply = app.post_raw("/chat/Send", request.clone(), &[("content-type", "application/json")]).await;
    assert_error(reply.status, &reply.body, 413, "chat.Send.TooLarge");

    // Chunked, with no length announced.
    let chunks: Vec<Result<_, std::io::Error>> =
        request.as_bytes().chunks(8 * 1024).map(|c| Ok(actix_web::web::Bytes::copy_from_slice(c))).collect();
    let mut res = app
        .client
        .post(format!("{}/chat/Send", app.address))
        .send_stream(futures_util::stream::iter(chunks))
        .await
        .expect("a response, not a dropped connection");
    let body: Value = serde_json::from_slice(&res.body().await.unwrap()).expect("JSON");
    assert_error(res.status(), &body, 413, "chat.Send.TooLarge");

    for path in ["/chat/New", "/chat/History"] {
        let reply = app.post_raw(path, request.clone(), &[]).await;
        let endpoint = path.trim_start_matches("/chat/");
        assert_error(reply.status, &reply.body, 413, &format!("chat.{endpoint}.TooLarge"));
    }

    // Nothing was stored, and the server still serves.
    assert!(app.history(json!({ "chat_id": chat })).await.is_empty());
}

#[actix_web::test]
async fn the_body_limit_follows_the_config() {
    let app = spawn_app_with(|s| s.server.max_body_bytes = 200).await;
    let chat = app.new_chat(&["alice"]).await;
    let fits = json!({ "chat_id": chat, "user_id": "alice", "text": "x".repeat(100) });
    let (status, body) = app.post("/chat/Send", fits).await;
    assert_eq!(status, 200, "{body}");
    let too_big = json!({ "chat_id": chat, "user_id": "alice", "text": "x".repeat(300) });
    let (status, body) = app.post("/chat/Send", too_big).await;
    assert_error(status, &body, 413, "chat.Send.TooLarge");
}

// ---- membership ----

#[actix_web::test]
async fn a_non_member_may_not_send_by_default() {
    let app = spawn_app().await;
    let chat = app.new_chat(&["alice", "bob"]).await;
    let (status, body) = app.post("/chat/Send", json!({ "chat_id": chat, "user_id": "mallory", "text": "hi" })).await;
    assert_error(status, &body, 403, "chat.Send.Forbidden");
    assert!(app.history(json!({ "chat_id": chat })).await.is_empty());
    app.send(&chat, "bob", "members can").await;
}

#[actix_web::test]
async fn open_membership_lets_anyone_send() {
    let app = spawn_app_with(|s| s.chat.membership = Membership::Open).await;
    let chat = app.new_chat(&["alice", "bob"]).await;
    let m = app.send(&chat, "mallory", "hi").await;
    assert_eq!(m["user_id"], "mallory");
    assert_eq!(texts(&app.history(json!({ "chat_id": chat })).await), ["hi"]);
}

// ---- idempotency ----

#[actix_web::test]
async fn new_is_idempotent_on_the_set_of_users() {
    let app = spawn_app().await;
    let a = app.new_chat(&["John", "Barry", "Zoe"]).await;
    assert_eq!(app.new_chat(&["Zoe", "John", "Barry"]).await, a);
    assert_eq!(app.new_chat(&["Barry", "Zoe", "John", "Barry", "Zoe"]).await, a);
    // A different set is a different chat.
    let b = app.new_chat(&["John", "Barry"]).await;
    assert_ne!(a, b);
    assert_eq!(app.new_chat(&["John", "John"]).await, app.new_chat(&["John"]).await);
    assert_ne!(app.new_chat(&["John"]).await, b);

    // Concurrent News of one set agree on one chat.
    let ids = join_all((0..8).map(|_| app.new_chat(&["p", "q"]))).await;
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
}

#[actix_web::test]
async fn a_retried_send_is_stored_once() {
    let app = spawn_app().await;
    let chat = app.new_chat(&["alice", "bob"]).await;
    let send =
        |text: &str, user: &str| json!({ "chat_id": chat, "user_id": user, "text": text, "client_id": "retry-1" });
    let (status, first) = app.post("/chat/Send", send("hello", "alice")).await;
    assert_eq!(status, 200, "{first}");
    let (status, second) = app.post("/chat/Send", send("hello", "alice")).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(first, second);
    // Even with other fields changed, the stored message is returned.
    let (status, third) = app.post("/v1/chat/Send", send("changed", "bob")).await;
    assert_eq!(status, 200, "{third}");
    assert_eq!(first, third);

    let history = app.history(json!({ "chat_id": chat })).await;
    assert_eq!(history, [first["message"].clone()]);

    // The next send gets the next seq: the retries used none.
    assert_eq!(app.send(&chat, "bob", "next").await["seq"], 2);
}

#[actix_web::test]
async fn concurrent_retries_are_stored_once() {
    let app = spawn_app().await;
    let chat = app.new_chat(&["alice"]).await;
    let request = json!({ "chat_id": chat, "user_id": "alice", "text": "x", "client_id": "same" });
    let replies = join_all((0..10).map(|_| app.post("/chat/Send", request.clone()))).await;
    for (status, body) in &replies {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(*body, replies[0].1);
    }
    assert_eq!(app.history(json!({ "chat_id": chat })).await.len(), 1);
}

// ---- seq and History ----

#[actix_web::test]
async fn seq_is_gap_free_from_one() {
    let app = spawn_app().await;
    let chat = app.new_chat(&["alice", "bob"]).await;
    for i in 1..=20u64 {
        let m = app.send(&chat, if i % 2 == 0 { "bob" } else { "alice" }, &format!("m{i}")).await;
        assert_eq!(m["seq"], i);
    }
    let history = app.history(json!({ "chat_id": chat })).await;
    assert_eq!(seqs(&history), range(1, 20));
    let want: Vec<String> = (1..=20).map(|i| format!("m{i}")).collect();
    assert_eq!(texts(&history), want);
}

#[actix_web::test]
async fn concurrent_sends_get_distinct_gap_free_seqs() {
    let app = spawn_app().await;
    let chat = app.new_chat(&["alice"]).await;
    let sends = (1..=30).map(|i| {
        let body = json!({ "chat_id": chat, "user_id": "alice", "text": format!("c{i}") });
        app.post("/chat/Send", body)
    });
    let mut acked: Vec<Value> = join_all(sends)
        .await
        .into_iter()
        .map(|(status, body)| {
            assert_eq!(status, 200, "{body}");
            body["message"].clone()
        })
        .collect();
    acked.sort_by_key(|m| m["seq"].as_u64());
    assert_eq!(seqs(&acked), range(1, 30));
    // History is in seq order and holds exactly what each send was acknowledged with.
    let history = app.history(json!({ "chat_id": chat })).await;
    assert_eq!(history, acked);
    let mut unique = texts(&history);
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 30);
}

#[actix_web::test]
async fn history_defaults_to_the_newest_default_limit_oldest_first() {
    let app = spawn_app().await;
    let chat = chat_with(&app, 60).await;
    let history = app.history(json!({ "chat_id": chat })).await;
    assert_eq!(seqs(&history), range(11, 60));
    assert_eq!(history[0]["text"], "m11");
    assert_eq!(history[49]["text"], "m60");
    // limit 0 is the default too.
    let history = app.history(json!({ "chat_id": chat, "limit": 0 })).await;
    assert_eq!(seqs(&history), range(11, 60));
}

#[actix_web::test]
async fn history_default_limit_follows_the_config() {
    let app = spawn_app_with(|s| s.history.default_limit = 7).await;
    let chat = chat_with(&app, 10).await;
    let history = app.history(json!({ "chat_id": chat })).await;
    assert_eq!(seqs(&history), range(4, 10));
}

#[actix_web::test]
async fn history_pages() {
    let app = spawn_app().await;
    let chat = chat_with(&app, 30).await;
    let page = |request: Value| {
        let mut request = request;
        request["chat_id"] = json!(chat);
        app.history(request)
    };
    // limit alone: the newest `limit`.
    assert_eq!(seqs(&page(json!({ "limit": 5 })).await), range(26, 30));
    // before_seq: the `limit` just below K.
    assert_eq!(seqs(&page(json!({ "before_seq": 10, "limit": 3 })).await), range(7, 9));
    assert_eq!(seqs(&page(json!({ "before_seq": 3, "limit": 10 })).await), range(1, 2));
    assert_eq!(seqs(&page(json!({ "before_seq": 1 })).await), Vec::<u64>::new());
    assert_eq!(seqs(&page(json!({ "before_seq": 25 })).await), range(1, 24));
    assert_eq!(seqs(&page(json!({ "before_seq": 1000, "limit": 2 })).await), range(29, 30));
    // after_seq: the `limit` just above K.
    assert_eq!(seqs(&page(json!({ "after_seq": 10, "limit": 3 })).await), range(11, 13));
    assert_eq!(seqs(&page(json!({ "after_seq": 27 })).await), range(28, 30));
    assert_eq!(seqs(&page(json!({ "after_seq": 30 })).await), Vec::<u64>::new());
    assert_eq!(seqs(&page(json!({ "after_seq": 500 })).await), Vec::<u64>::new());
    // after_seq 0: from seq 1.
    assert_eq!(seqs(&page(json!({ "after_seq": 0, "limit": 4 })).await), range(1, 4));
    assert_eq!(seqs(&page(json!({ "after_seq": 0 })).await), range(1, 30));
    // before_seq 0: nothing.
    assert!(page(json!({ "before_seq": 0 })).await.is_empty());
    assert!(page(json!({ "before_seq": 0, "after_seq": 0 })).await.is_empty());
    // Both: the `limit` lowest strictly between.
    assert_eq!(seqs(&page(json!({ "after_seq": 5, "before_seq": 20, "limit": 4 })).await), range(6, 9));
    assert_eq!(seqs(&page(json!({ "after_seq": 5, "before_seq": 9 })).await), range(6, 8));
    assert!(page(json!({ "after_seq": 5, "before_seq": 6 })).await.is_empty());
    assert!(page(json!({ "after_seq": 9, "before_seq": 5 })).await.is_empty());
    // The texts follow the seqs.
    let p = page(json!({ "after_seq": 14, "limit": 2 })).await;
    assert_eq!(texts(&p), ["m15", "m16"]);
}

#[actix_web::test]
async fn history_limit_is_capped_at_max_limit() {
    let app = spawn_app_with(|s| s.history.max_limit = 4).await;
    let chat = chat_with(&app, 12).await;
    let history = app.history(json!({ "chat_id": chat, "limit": 100 })).await;
    assert_eq!(seqs(&history), range(9, 12));
    let history = app.history(json!({ "chat_id": chat, "after_seq": 0, "limit": 100 })).await;
    assert_eq!(seqs(&history), range(1, 4));
    // The default is capped too.
    let history = app.history(json!({ "chat_id": chat })).await;
    assert_eq!(seqs(&history), range(9, 12));
}

/// The newest messages come from the chat's memory, older ones from the log: a page across both
/// lists each message exactly as its send answered it, in seq order, in either service's shape.
#[actix_web::test]
async fn pages_across_memory_and_log_read_alike() {
    let app = spawn_app_with(|s| s.history.memory_tail = 4).await;
    let chat = app.new_chat(&["alice", "bob"]).await;
    let mut sent = Vec::new();
    for i in 1..=12 {
        sent.push(app.send(&chat, "alice", &format!("m{i}")).await);
    }
    // Seqs 9-12 are in memory, 3-8 only in the log.
    assert_eq!(app.history(json!({ "chat_id": chat, "limit": 10 })).await, sent[2..12].to_vec());
    assert_eq!(app.history(json!({ "chat_id": chat, "after_seq": 0, "limit": 3 })).await, sent[0..3].to_vec());
    assert_eq!(app.history(json!({ "chat_id": chat, "limit": 2 })).await, sent[10..12].to_vec());
    // Newest first, in the chats service's shape.
    let listed = app.list_messages(&chat, json!({ "limit": 7 })).await;
    assert_eq!(seqs(&listed), (6..=12).rev().collect::<Vec<u64>>());
    for (m, s) in listed.iter().zip(sent[5..12].iter().rev()) {
        assert_eq!(
            (&m["id"], &m["author_id"], &m["text"], &m["sent_at"]),
            (&s["id"], &s["user_id"], &s["text"], &s["sent_at"])
        );
    }
    // A retry of a message in memory answers it as stored.
    let (status, again) = app
        .post(
            "/chat/Send",
            json!({ "chat_id": chat, "user_id": "alice", "text": "m12", "client_id": sent[11]["client_id"] }),
        )
        .await;
    assert_eq!((status.as_u16(), &again["message"]), (200, &sent[11]));
}

#[actix_web::test]
async fn integers_may_be_numeric_strings() {
    let app = spawn_app().await;
    let chat = chat_with(&app, 10).await;
    let history = app.history(json!({ "chat_id": chat, "limit": "3", "after_seq": "2" })).await;
    assert_eq!(seqs(&history), range(3, 5));
    let history = app.history(json!({ "chat_id": chat, "before_seq": "4" })).await;
    assert_eq!(seqs(&history), range(1, 3));
    // Form-encoded, as curl sends it.
    let reply = app
        .post_raw(
            "/chat/History",
            json!({ "chat_id": chat, "limit": "5" }).to_string(),
            &[("content-type", "application/x-www-form-urlencoded")],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(seqs(reply.body["messages"].as_array().unwrap()), range(6, 10));
}

// ---- namespaces ----

#[actix_web::test]
async fn namespaces_are_isolated() {
    let app = spawn_app().await;
    let (status, body) = app.post_ns("acme", "/chat/New", json!({ "user_ids": ["a", "b"] })).await;
    assert_eq!(status, 200, "{body}");
    let chat = body["chat_id"].as_str().unwrap().to_owned();
    let (status, body) =
        app.post_ns("acme", "/chat/Send", json!({ "chat_id": chat, "user_id": "a", "text": "in acme" })).await;
    assert_eq!(status, 200, "{body}");

    // Unknown in another namespace, and in the default one.
    let (status, body) = app.post_ns("globex", "/chat/History", json!({ "chat_id": chat })).await;
    assert_error(status, &body, 404, "chat.History.NotFound");
    let (status, body) =
        app.post_ns("globex", "/chat/Send", json!({ "chat_id": chat, "user_id": "a", "text": "x" })).await;
    assert_error(status, &body, 404, "chat.Send.NotFound");
    let (status, body) = app.post("/chat/History", json!({ "chat_id": chat })).await;
    assert_error(status, &body, 404, "chat.History.NotFound");

    // The same set of users in another namespace is another chat.
    let (status, body) = app.post_ns("globex", "/chat/New", json!({ "user_ids": ["b", "a"] })).await;
    assert_eq!(status, 200, "{body}");
    assert_ne!(body["chat_id"], chat.as_str());

    let (status, body) = app.post_ns("acme", "/chat/History", json!({ "chat_id": chat })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(texts(body["messages"].as_array().unwrap()), ["in acme"]);
}

#[actix_web::test]
async fn a_missing_or_empty_namespace_is_micro() {
    let app = spawn_app().await;
    let chat = app.new_chat(&["a"]).await; // no header
    app.send(&chat, "a", "one").await;
    for ns in ["", "micro"] {
        let (status, body) = app.post_ns(ns, "/chat/History", json!({ "chat_id": chat })).await;
        assert_eq!(status, 200, "ns {ns:?}: {body}");
        assert_eq!(texts(body["messages"].as_array().unwrap()), ["one"]);
    }
    let (status, body) = app.post_ns("", "/chat/New", json!({ "user_ids": ["a"] })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["chat_id"], chat.as_str());
    let (status, body) = app.post_ns("Micro", "/chat/History", json!({ "chat_id": chat })).await;
    assert_error(status, &body, 404, "chat.History.NotFound");
}

// ---- CORS ----

#[actix_web::test]
async fn responses_allow_any_origin() {
    let app = spawn_app().await;
    let chat = app.new_chat(&["a"]).await;
    let origin = [("origin", "https://app.example.com")];
    let ok = app.post_raw("/chat/History", json!({ "chat_id": chat }).to_string(), &origin).await;
    assert_eq!(ok.status, 200);
    let bad = app.post_raw("/chat/Send", "{}", &origin).await;
    assert_eq!(bad.status, 400);
    let missing = app.post_raw("/no/where", "{}", &origin).await;
    assert_eq!(missing.status, 404);
    let no_origin = app.post_raw("/chat/History", json!({ "chat_id": chat }).to_string(), &[]).await;
    for reply in [ok, bad, missing, no_origin] {
        assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    }
}

#[actix_web::test]
async fn options_is_a_204_preflight() {
    let app = spawn_app().await;
    for path in ["/chat/Send", "/v1/chat/History", "/chat/Chat/New"] {
        let reply = app
            .request(
                Method::OPTIONS,
                path,
                &[
                    ("origin", "https://app.example.com"),
                    ("access-control-request-method", "POST"),
                    ("access-control-request-headers", "content-type, micro-namespace"),
                ],
                "",
            )
            .await;
        assert_eq!(reply.status, 204, "{path}");
        assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
        let headers = reply.header("access-control-allow-headers").unwrap_or_default().to_ascii_lowercase();
        for h in ["authorization", "content-type", "micro-namespace", "last-event-id"] {
            assert!(headers.contains(h), "{path}: allow-headers {headers:?} lacks {h}");
        }
        let methods = reply.header("access-control-allow-methods").unwrap_or_default();
        assert!(methods.contains("POST"), "{path}: allow-methods {methods:?}");
    }
}

// ---- restart ----

#[actix_web::test]
async fn messages_survive_a_restart() {
    let app = spawn_app().await;
    let chat = chat_with(&app, 5).await;
    let (status, _) = app.post_ns("acme", "/chat/New", json!({ "user_ids": ["x"] })).await;
    assert_eq!(status, 200);
    let before = app.history(json!({ "chat_id": chat })).await;

    let app = app.restart().await;
    let after = app.history(json!({ "chat_id": chat })).await;
    assert_eq!(after, before);
    assert_eq!(seqs(&after), range(1, 5));
    assert_eq!(app.send(&chat, "bob", "m6").await["seq"], 6);
    // The member set still maps to the same chat, and a retry is still recognised.
    assert_eq!(app.new_chat(&["bob", "alice"]).await, chat);
    let retry = json!({ "chat_id": chat, "user_id": "alice", "text": "again", "client_id": before[2]["client_id"] });
    let (status, body) = app.post("/chat/Send", retry).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"], before[2]);

    // And once more, with the messages sent after the first restart.
    let app = app.restart().await;
    let history = app.history(json!({ "chat_id": chat })).await;
    assert_eq!(seqs(&history), range(1, 6));
    assert_eq!(history[5]["text"], "m6");
    app.stop().await;
}

//! The `chats` service over HTTP (CreateChat, SendMessage, ListMessages), against the real
//! server and storage, and its sharing of chats with the `chat` service.

mod helpers;

use actix_web::http::Method;
use futures_util::future::join_all;
use serde_json::json;

use chatd::config::Membership;
use helpers::{assert_error, seqs, spawn_app, spawn_app_with, texts, TestApp};

const PREFIXES: [&str; 3] = ["/chats", "/chats/Chats", "/v1/chats"];

/// A chat `id` of alice and bob holding `n` messages `m1`..`mn`.
async fn chat_with(app: &TestApp, id: &str, n: usize) -> String {
    app.create_chat(json!({ "id": id, "user_ids": ["alice", "bob"] })).await;
    for i in 1..=n {
        app.send_message(id, "alice", &format!("m{i}")).await;
    }
    id.to_owned()
}

fn desc(hi: u64, lo: u64) -> Vec<u64> {
    (lo..=hi).rev().collect()
}

fn asc(lo: u64, hi: u64) -> Vec<u64> {
    (lo..=hi).collect()
}

// ---- paths and bodies ----

#[actix_web::test]
async fn every_endpoint_answers_on_all_three_paths() {
    let app = spawn_app().await;
    for (i, prefix) in PREFIXES.iter().enumerate() {
        let (a, b) = (format!("a{i}"), format!("b{i}"));
        let (status, body) = app.post(&format!("{prefix}/CreateChat"), json!({ "user_ids": [a, b] })).await;
        assert_eq!(status, 200, "{prefix}/CreateChat: {body}");
        let chat = body["chat"]["id"].as_str().expect("chat id").to_owned();

        let (status, body) = app
            .post(
                &format!("{prefix}/SendMessage"),
                json!({ "chat_id": chat, "author_id": a, "text": format!("via {prefix}") }),
            )
            .await;
        assert_eq!(status, 200, "{prefix}/SendMessage: {body}");
        assert_eq!(body["message"]["text"], format!("via {prefix}"));

        let (status, body) = app.post(&format!("{prefix}/ListMessages"), json!({ "chat_id": chat })).await;
        assert_eq!(status, 200, "{prefix}/ListMessages: {body}");
        assert_eq!(texts(body["messages"].as_array().unwrap()), [format!("via {prefix}")]);
    }
}

#[actix_web::test]
async fn responses_have_the_chats_shapes() {
    let app = spawn_app().await;
    let before = chatd::model::now_secs();
    let chat = app.create_chat(json!({ "user_ids": ["Zed", "Amy", "Zed", "Bob"] })).await;
    let mut keys: Vec<&str> = chat.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["created_at", "id", "user_ids"]);
    assert_eq!(chat["user_ids"], json!(["Amy", "Bob", "Zed"]));
    let created_at = chat["created_at"].as_i64().expect("created_at is a number");
    assert!(created_at >= before && created_at <= chatd::model::now_secs() + 1);
    // id defaults to a UUID.
    let id = chat["id"].as_str().unwrap();
    assert_eq!(id.len(), 36, "{id}");
    assert_eq!(id.matches('-').count(), 4, "{id}");

    let m = app.send_message(id, "Amy", "hello").await;
    assert_eq!(m["author_id"], "Amy");
    assert_eq!(m["chat_id"], id);
    assert_eq!(m["text"], "hello");
    assert!(!m["id"].as_str().unwrap().is_empty());
    assert!(m["sent_at"].as_i64().expect("sent_at is a number") >= before);
    assert!(m.get("user_id").is_none(), "chats shows author_id: {m}");
    assert_eq!(app.list_messages(id, json!({})).await, [m]);
}

#[actix_web::test]
async fn bodies_are_json_whatever_the_content_type() {
    let app = spawn_app().await;
    for (i, headers) in [&[("content-type", "application/x-www-form-urlencoded")][..], &[][..]].into_iter().enumerate()
    {
        let id = format!("room-{i}");
        let john = format!("John{i}");
        let request = json!({ "id": id, "user_ids": [john, "Barry"] }).to_string();
        let reply = app.post_raw("/chats/CreateChat", request, headers).await;
        assert_eq!(reply.status, 200, "{headers:?}: {}", reply.body);
        assert_eq!(reply.body["chat"]["id"], id.as_str());

        let request = json!({ "chat_id": id, "author_id": john, "text": "Hey" }).to_string();
        let reply = app.post_raw("/chats/SendMessage", request, headers).await;
        assert_eq!(reply.status, 200, "{headers:?}: {}", reply.body);

        let request = json!({ "chat_id": id }).to_string();
        let reply = app.post_raw("/chats/ListMessages", request, headers).await;
        assert_eq!(reply.status, 200, "{headers:?}: {}", reply.body);
        assert_eq!(texts(reply.body["messages"].as_array().unwrap()), ["Hey"]);
    }
    // An empty body is `{}`.
    for (path, id) in [
        ("/chats/CreateChat", "chats.CreateChat.MissingUserIDs"),
        ("/chats/SendMessage", "chats.SendMessage.MissingAuthorID"),
        ("/chats/ListMessages", "chats.ListMessages.MissingChatID"),
    ] {
        let reply = app.post_raw(path, "", &[("content-type", "application/x-www-form-urlencoded")]).await;
        assert_error(reply.status, &reply.body, 400, id);
        let reply = app.post_raw(path, "", &[]).await;
        assert_error(reply.status, &reply.body, 400, id);
    }
}

// ---- validation ----

#[actix_web::test]
async fn create_chat_needs_two_users() {
    let app = spawn_app().await;
    for request in [
        json!({}),
        json!({ "user_ids": [] }),
        json!({ "user_ids": ["solo"] }),
        json!({ "user_ids": ["solo", "solo"] }),
        json!({ "id": "room", "user_ids": ["solo"] }),
    ] {
        let (status, body) = app.post("/chats/CreateChat", request.clone()).await;
        assert_error(status, &body, 400, "chats.CreateChat.MissingUserIDs");
    }
    // The rejected request with an id did not create it.
    let (status, body) = app.post("/chats/ListMessages", json!({ "chat_id": "room" })).await;
    assert_error(status, &body, 404, "chats.ListMessages.NotFound");
}

#[actix_web::test]
async fn send_message_checks_author_id_then_chat_id_then_text() {
    let app = spawn_app().await;
    let cases = [
        (json!({}), "chats.SendMessage.MissingAuthorID"),
        (json!({ "chat_id": "c", "text": "t" }), "chats.SendMessage.MissingAuthorID"),
        (json!({ "author_id": "", "chat_id": "c", "text": "t" }), "chats.SendMessage.MissingAuthorID"),
        (json!({ "author_id": "a" }), "chats.SendMessage.MissingChatID"),
        (json!({ "author_id": "a", "text": "t" }), "chats.SendMessage.MissingChatID"),
        (json!({ "author_id": "a", "chat_id": "", "text": "t" }), "chats.SendMessage.MissingChatID"),
        (json!({ "author_id": "a", "chat_id": "c" }), "chats.SendMessage.MissingText"),
        (json!({ "author_id": "a", "chat_id": "c", "text": "" }), "chats.SendMessage.MissingText"),
    ];
    for (request, id) in cases {
        let (status, body) = app.post("/chats/SendMessage", request).await;
        assert_error(status, &body, 400, id);
    }
    let (status, body) = app.post("/chats/SendMessage", json!({ "author_id": "a", "chat_id": "c", "text": "t" })).await;
    assert_error(status, &body, 404, "chats.SendMessage.NotFound");
}

#[actix_web::test]
async fn list_messages_needs_a_chat_id() {
    let app = spawn_app().await;
    for request in [json!({}), json!({ "chat_id": "" }), json!({ "limit": 3, "order": "asc" })] {
        let (status, body) = app.post("/chats/ListMessages", request).await;
        assert_error(status, &body, 400, "chats.ListMessages.MissingChatID");
    }
}

#[actix_web::test]
async fn malformed_json_and_wrong_types_are_bad_requests() {
    let app = spawn_app().await;
    let cases: [(&str, &str, &str); 9] = [
        ("/chats/CreateChat", "{\"user_ids\":", "chats.CreateChat.BadRequest"),
        ("/chats/CreateChat", r#"{"user_ids":"a b"}"#, "chats.CreateChat.BadRequest"),
        ("/chats/CreateChat", r#"{"id":7,"user_ids":["a","b"]}"#, "chats.CreateChat.BadRequest"),
        ("/chats/SendMessage", "}{", "chats.SendMessage.BadRequest"),
        ("/chats/SendMessage", r#"{"author_id":["a"],"chat_id":"c","text":"t"}"#, "chats.SendMessage.BadRequest"),
        ("/chats/SendMessage", r#"{"author_id":"a","chat_id":"c","text":"t","id":1}"#, "chats.SendMessage.BadRequest"),
        ("/chats/ListMessages", "chat_id=c", "chats.ListMessages.BadRequest"),
        ("/chats/ListMessages", r#"{"chat_id":"c","order":1}"#, "chats.ListMessages.BadRequest"),
        ("/chats/ListMessages", r#"{"chat_id":"c","offset":[]}"#, "chats.ListMessages.BadRequest"),
    ];
    for (path, body, id) in cases {
        let reply = app.post_raw(path, body, &[("content-type", "application/x-www-form-urlencoded")]).await;
        assert_error(reply.status, &reply.body, 400, id);
    }
}

#[actix_web::test]
async fn list_messages_rejects_bad_order_limit_and_offset() {
    let app = spawn_app().await;
    let chat = chat_with(&app, "room", 3).await;
    for (field, value) in [
        ("order", json!("ascending")),
        ("order", json!("ASC")),
        ("order", json!("newest")),
        ("limit", json!(-1)),
        ("limit", json!(2.5)),
        ("limit", json!("-3")),
        ("limit", json!("ten")),
        ("offset", json!(-1)),
        ("offset", json!(0.5)),
        ("offset", json!("-15")),
    ] {
        let (status, body) = app.post("/chats/ListMessages", json!({ "chat_id": chat, field: value })).await;
        assert_error(status, &body, 400, "chats.ListMessages.BadRequest");
    }
}

#[actix_web::test]
async fn bad_ids_are_rejected() {
    let app = spawn_app().await;
    let chat = chat_with(&app, "room", 0).await;
    let long = "y".repeat(257);
    let cases = [
        ("/chats/CreateChat", json!({ "id": "a\nb", "user_ids": ["a", "b"] }), "chats.CreateChat.BadID"),
        ("/chats/CreateChat", json!({ "id": long, "user_ids": ["a", "b"] }), "chats.CreateChat.BadID"),
        ("/chats/CreateChat", json!({ "user_ids": ["a", "b\u{7f}"] }), "chats.CreateChat.BadID"),
        ("/chats/CreateChat", json!({ "user_ids": ["a", long] }), "chats.CreateChat.BadID"),
        (
            "/chats/SendMessage",
            json!({ "chat_id": chat, "author_id": "ali\rce", "text": "t" }),
            "chats.SendMessage.BadID",
        ),
        (
            "/chats/SendMessage",
            json!({ "chat_id": "r\u{0}", "author_id": "alice", "text": "t" }),
            "chats.SendMessage.BadID",
        ),
        (
            "/chats/SendMessage",
            json!({ "chat_id": chat, "author_id": "alice", "text": "t", "id": long }),
            "chats.SendMessage.BadID",
        ),
        (
            "/chats/SendMessage",
            json!({ "chat_id": chat, "author_id": "alice", "text": "t", "id": "\u{85}" }),
            "chats.SendMessage.BadID",
        ),
        ("/chats/ListMessages", json!({ "chat_id": long }), "chats.ListMessages.BadID"),
    ];
    for (path, request, id) in cases {
        let (status, body) = app.post(path, request.clone()).await;
        assert_error(status, &body, 400, id);
    }
    assert!(app.list_messages(&chat, json!({})).await.is_empty());
    // A 256-byte id is fine.
    let max = "z".repeat(256);
    let made = app.create_chat(json!({ "id": max, "user_ids": ["a", "b"] })).await;
    assert_eq!(made["id"], max.as_str());
}

#[actix_web::test]
async fn unknown_chat_is_not_found() {
    let app = spawn_app().await;
    let (status, body) =
        app.post("/chats/SendMessage", json!({ "chat_id": "ghost", "author_id": "a", "text": "t" })).await;
    assert_error(status, &body, 404, "chats.SendMessage.NotFound");
    let (status, body) = app.post("/v1/chats/ListMessages", json!({ "chat_id": "ghost" })).await;
    assert_error(status, &body, 404, "chats.ListMessages.NotFound");
}

#[actix_web::test]
async fn unknown_paths_and_wrong_methods() {
    let app = spawn_app().await;
    for path in ["/chats", "/chats/Nope", "/chats/Chats/Nope", "/v1/chats/Nope", "/chats/Chat/CreateChat"] {
        let reply = app.post_raw(path, "{}", &[]).await;
        assert_error(reply.status, &reply.body, 404, "chatd.NotFound");
    }
    for (method, path, id) in [
        (Method::GET, "/chats/CreateChat", "chats.CreateChat.MethodNotAllowed"),
        (Method::GET, "/chats/Chats/SendMessage", "chats.SendMessage.MethodNotAllowed"),
        (Method::PATCH, "/v1/chats/ListMessages", "chats.ListMessages.MethodNotAllowed"),
    ] {
        let reply = app.request(method, path, &[], "").await;
        assert_error(reply.status, &reply.body, 405, id);
        let allow = reply.header("allow").expect("an Allow header");
        assert!(allow.contains("POST"), "Allow: {allow}");
    }
}

#[actix_web::test]
async fn bodies_over_the_limit_are_413() {
    let app = spawn_app().await;
    let chat = chat_with(&app, "room", 0).await;
    let big = "x".repeat(65 * 1024);
    for (path, request) in [
        ("/chats/CreateChat", json!({ "user_ids": ["a", "b"], "pad": big })),
        ("/chats/SendMessage", json!({ "chat_id": chat, "author_id": "alice", "text": big })),
        ("/chats/ListMessages", json!({ "chat_id": chat, "pad": big })),
    ] {
        let reply =
            app.post_raw(path, request.to_string(), &[("content-type", "application/x-www-form-urlencoded")]).await;
        let endpoint = path.trim_start_matches("/chats/");
        assert_error(reply.status, &reply.body, 413, &format!("chats.{endpoint}.TooLarge"));
    }
    assert!(app.list_messages(&chat, json!({})).await.is_empty());
}

// ---- membership ----

#[actix_web::test]
async fn a_non_member_may_not_send_by_default() {
    let app = spawn_app().await;
    let chat = chat_with(&app, "room", 0).await;
    let (status, body) =
        app.post("/chats/SendMessage", json!({ "chat_id": chat, "author_id": "eve", "text": "hi" })).await;
    assert_error(status, &body, 403, "chats.SendMessage.Forbidden");
    assert!(app.list_messages(&chat, json!({})).await.is_empty());
}

#[actix_web::test]
async fn open_membership_lets_anyone_send() {
    let app = spawn_app_with(|s| s.chat.membership = Membership::Open).await;
    let chat = chat_with(&app, "room", 0).await;
    let m = app.send_message(&chat, "eve", "hi").await;
    assert_eq!(m["author_id"], "eve");
    assert_eq!(texts(&app.list_messages(&chat, json!({})).await), ["hi"]);
}

// ---- idempotency ----

#[actix_web::test]
async fn create_chat_with_an_existing_id_returns_it_unchanged() {
    let app = spawn_app().await;
    let first = app.create_chat(json!({ "id": "room", "user_ids": ["bob", "alice"] })).await;
    assert_eq!(first["id"], "room");
    assert_eq!(first["user_ids"], json!(["alice", "bob"]));
    let again = app.create_chat(json!({ "id": "room", "user_ids": ["carol", "dave", "erin"] })).await;
    assert_eq!(again, first);
    // Still alice and bob's chat: carol may not send.
    let (status, body) =
        app.post("/chats/SendMessage", json!({ "chat_id": "room", "author_id": "carol", "text": "x" })).await;
    assert_error(status, &body, 403, "chats.SendMessage.Forbidden");
    // And carol, dave and erin have no chat yet: theirs is new.
    let theirs = app.create_chat(json!({ "user_ids": ["erin", "dave", "carol"] })).await;
    assert_ne!(theirs["id"], "room");
    assert_eq!(theirs["user_ids"], json!(["carol", "dave", "erin"]));
}

#[actix_web::test]
async fn create_chat_with_the_same_users_returns_the_existing_chat() {
    let app = spawn_app().await;
    let first = app.create_chat(json!({ "user_ids": ["x", "y", "z"] })).await;
    let again = app.create_chat(json!({ "user_ids": ["z", "x", "y", "x"] })).await;
    assert_eq!(again, first);
    let named = app.create_chat(json!({ "id": "another-name", "user_ids": ["y", "z", "x"] })).await;
    assert_eq!(named, first);
    // The chat `chat.New` makes for the same set is that chat too.
    assert_eq!(app.new_chat(&["y", "x", "z"]).await, first["id"].as_str().unwrap());
    // Concurrent creations of one new set agree.
    let made = join_all((0..8).map(|_| app.create_chat(json!({ "user_ids": ["p", "q"] })))).await;
    assert!(made.iter().all(|c| *c == made[0]), "{made:?}");
}

#[actix_web::test]
async fn a_retried_send_message_is_stored_once() {
    let app = spawn_app().await;
    let chat = chat_with(&app, "room", 0).await;
    let request = |text: &str| json!({ "chat_id": chat, "author_id": "alice", "text": text, "id": "msg-1" });
    let (status, first) = app.post("/chats/SendMessage", request("hello")).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["message"]["id"], "msg-1");
    let (status, second) = app.post("/chats/SendMessage", request("hello")).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second, first);
    let (status, third) = app.post("/chats/SendMessage", request("edited")).await;
    assert_eq!(status, 200, "{third}");
    assert_eq!(third, first);
    assert_eq!(app.list_messages(&chat, json!({})).await, [first["message"].clone()]);
    // The same id in another chat is another message.
    app.create_chat(json!({ "id": "other", "user_ids": ["alice", "carol"] })).await;
    let (status, body) = app
        .post("/chats/SendMessage", json!({ "chat_id": "other", "author_id": "alice", "text": "o", "id": "msg-1" }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"]["text"], "o");
}

#[actix_web::test]
async fn both_apis_share_chats_and_one_retry_index() {
    let app = spawn_app().await;
    let chat = chat_with(&app, "shared", 0).await;

    // A chats SendMessage id is a chat Send client_id.
    let (status, body) = app
        .post("/chats/SendMessage", json!({ "chat_id": chat, "author_id": "alice", "text": "one", "id": "k1" }))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .post("/chat/Send", json!({ "chat_id": chat, "user_id": "alice", "text": "one again", "client_id": "k1" }))
        .await;
    assert_eq!(status, 200, "{body}");
    let m = &body["message"];
    assert_eq!((m["id"].as_str(), m["client_id"].as_str()), (Some("k1"), Some("k1")));
    assert_eq!((m["text"].as_str(), m["seq"].as_u64()), (Some("one"), Some(1)));

    // And a chat Send client_id is a chats SendMessage id.
    let (status, body) =
        app.post("/chat/Send", json!({ "chat_id": chat, "user_id": "bob", "text": "two", "client_id": "k2" })).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .post("/chats/SendMessage", json!({ "chat_id": chat, "author_id": "bob", "text": "two again", "id": "k2" }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"]["text"], "two");
    assert_eq!(body["message"]["author_id"], "bob");
    assert_eq!(body["message"]["seq"], 2);

    // Both listings see the same two messages.
    let history = app.history(json!({ "chat_id": chat })).await;
    assert_eq!(texts(&history), ["one", "two"]);
    assert_eq!(history[1]["user_id"], "bob");
    let listed = app.list_messages(&chat, json!({ "order": "asc" })).await;
    assert_eq!(texts(&listed), ["one", "two"]);
    assert_eq!(seqs(&listed), [1, 2]);
    assert_eq!(listed[0]["id"], history[0]["id"]);

    // A chat made with chat.New works with chats, and the reverse.
    let made_by_new = app.new_chat(&["carol", "dave"]).await;
    let m = app.send_message(&made_by_new, "dave", "via chats").await;
    assert_eq!(m["seq"], 1);
    assert_eq!(texts(&app.history(json!({ "chat_id": made_by_new })).await), ["via chats"]);
    let m = app.send(&chat, "alice", "via chat").await;
    assert_eq!(m["seq"], 3);
    assert_eq!(app.list_messages(&chat, json!({ "limit": 1 })).await[0]["text"], "via chat");
}

// ---- ListMessages paging ----

#[actix_web::test]
async fn list_messages_pages_by_order_offset_and_limit() {
    let app = spawn_app().await;
    let chat = chat_with(&app, "fifty", 50).await;

    let page = app.list_messages(&chat, json!({ "order": "desc", "offset": 15, "limit": 5 })).await;
    assert_eq!(seqs(&page), desc(35, 31));
    assert_eq!(texts(&page), ["m35", "m34", "m33", "m32", "m31"]);

    let page = app.list_messages(&chat, json!({ "order": "asc", "offset": 15, "limit": 5 })).await;
    assert_eq!(seqs(&page), asc(16, 20));
    assert_eq!(texts(&page), ["m16", "m17", "m18", "m19", "m20"]);

    // Default order is newest first; default limit 25; limit 0 is the default.
    assert_eq!(seqs(&app.list_messages(&chat, json!({})).await), desc(50, 26));
    assert_eq!(seqs(&app.list_messages(&chat, json!({ "order": "" })).await), desc(50, 26));
    assert_eq!(seqs(&app.list_messages(&chat, json!({ "limit": 0 })).await), desc(50, 26));
    assert_eq!(seqs(&app.list_messages(&chat, json!({ "offset": 15, "limit": 5 })).await), desc(35, 31));
    assert_eq!(seqs(&app.list_messages(&chat, json!({ "order": "asc" })).await), asc(1, 25));

    // Running off either end.
    assert_eq!(seqs(&app.list_messages(&chat, json!({ "offset": 45, "limit": 10 })).await), desc(5, 1));
    assert_eq!(
        seqs(&app.list_messages(&chat, json!({ "order": "asc", "offset": 45, "limit": 10 })).await),
        asc(46, 50)
    );
    assert!(app.list_messages(&chat, json!({ "offset": 50 })).await.is_empty());
    assert!(app.list_messages(&chat, json!({ "order": "asc", "offset": 999 })).await.is_empty());
    assert_eq!(seqs(&app.list_messages(&chat, json!({ "limit": 100 })).await), desc(50, 1));

    // Numeric strings.
    let page = app.list_messages(&chat, json!({ "order": "desc", "offset": "15", "limit": "5" })).await;
    assert_eq!(seqs(&page), desc(35, 31));
}

#[actix_web::test]
async fn list_messages_limit_is_capped_at_max_limit() {
    let app = spawn_app_with(|s| s.history.max_limit = 3).await;
    let chat = chat_with(&app, "room", 10).await;
    assert_eq!(seqs(&app.list_messages(&chat, json!({ "limit": 50 })).await), desc(10, 8));
    assert_eq!(seqs(&app.list_messages(&chat, json!({})).await), desc(10, 8));
    assert_eq!(seqs(&app.list_messages(&chat, json!({ "order": "asc", "offset": 2, "limit": 9 })).await), asc(3, 5));
}

// ---- namespaces ----

#[actix_web::test]
async fn the_same_chat_id_in_two_namespaces_is_two_chats() {
    let app = spawn_app().await;
    let make = |ns: &'static str, users: [&'static str; 2]| {
        app.post_ns(ns, "/chats/CreateChat", json!({ "id": "lobby", "user_ids": users }))
    };
    let (status, a) = make("tenant-a", ["ann", "art"]).await;
    assert_eq!(status, 200, "{a}");
    let (status, b) = make("tenant-b", ["bea", "ben"]).await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(a["chat"]["id"], "lobby");
    assert_eq!(b["chat"]["id"], "lobby");
    assert_eq!(b["chat"]["user_ids"], json!(["bea", "ben"]));

    let say = |ns: &'static str, author: &'static str, text: &'static str| {
        app.post_ns(ns, "/chats/SendMessage", json!({ "chat_id": "lobby", "author_id": author, "text": text }))
    };
    assert_eq!(say("tenant-a", "ann", "a1").await.0, 200);
    assert_eq!(say("tenant-b", "ben", "b1").await.0, 200);
    let (status, body) = say("tenant-b", "ben", "b2").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"]["seq"], 2);
    // ann is a member of tenant-a's lobby only.
    let (status, body) = say("tenant-b", "ann", "x").await;
    assert_error(status, &body, 403, "chats.SendMessage.Forbidden");

    let listing =
        |ns: &'static str| app.post_ns(ns, "/chats/ListMessages", json!({ "chat_id": "lobby", "order": "asc" }));
    let (_, body) = listing("tenant-a").await;
    assert_eq!(texts(body["messages"].as_array().unwrap()), ["a1"]);
    let (_, body) = listing("tenant-b").await;
    assert_eq!(texts(body["messages"].as_array().unwrap()), ["b1", "b2"]);
    // Neither exists in the default namespace, nor in a third.
    let (status, body) = app.post("/chats/ListMessages", json!({ "chat_id": "lobby" })).await;
    assert_error(status, &body, 404, "chats.ListMessages.NotFound");
    let (status, body) = listing("tenant-c").await;
    assert_error(status, &body, 404, "chats.ListMessages.NotFound");
    let (status, body) = say("tenant-c", "ann", "x").await;
    assert_error(status, &body, 404, "chats.SendMessage.NotFound");
}

#[actix_web::test]
async fn a_missing_or_empty_namespace_is_micro() {
    let app = spawn_app().await;
    let (status, body) = app.post_ns("", "/chats/CreateChat", json!({ "id": "home", "user_ids": ["a", "b"] })).await;
    assert_eq!(status, 200, "{body}");
    app.send_message("home", "a", "hi").await; // no header
    let (status, body) = app.post_ns("micro", "/chats/ListMessages", json!({ "chat_id": "home" })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(texts(body["messages"].as_array().unwrap()), ["hi"]);
    let (status, body) = app.post_ns("other", "/chats/ListMessages", json!({ "chat_id": "home" })).await;
    assert_error(status, &body, 404, "chats.ListMessages.NotFound");
}

// ---- CORS ----

#[actix_web::test]
async fn cors_headers_on_answers_and_preflights() {
    let app = spawn_app().await;
    let reply = app
        .post_raw(
            "/chats/CreateChat",
            json!({ "user_ids": ["a", "b"] }).to_string(),
            &[("origin", "http://localhost:3000")],
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    let reply = app.post_raw("/chats/SendMessage", "{}", &[("origin", "http://x")]).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));

    let reply = app
        .request(
            Method::OPTIONS,
            "/v1/chats/ListMessages",
            &[("origin", "http://x"), ("access-control-request-method", "POST")],
            "",
        )
        .await;
    assert_eq!(reply.status, 204);
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    let allowed = reply.header("access-control-allow-headers").unwrap_or_default().to_ascii_lowercase();
    assert!(allowed.contains("micro-namespace"), "{allowed}");
    assert!(allowed.contains("content-type"), "{allowed}");
}

// ---- restart ----

#[actix_web::test]
async fn chats_and_messages_survive_a_restart() {
    let app = spawn_app().await;
    let chat = chat_with(&app, "durable", 4).await;
    let created = app.create_chat(json!({ "id": "durable", "user_ids": ["alice", "bob"] })).await;
    let (status, _) = app
        .post("/chats/SendMessage", json!({ "chat_id": chat, "author_id": "bob", "text": "m5", "id": "five" }))
        .await;
    assert_eq!(status, 200);
    let before = app.list_messages(&chat, json!({ "order": "asc" })).await;

    let app = app.restart().await;
    assert_eq!(app.list_messages(&chat, json!({ "order": "asc" })).await, before);
    assert_eq!(app.create_chat(json!({ "id": "durable", "user_ids": ["q", "r"] })).await, created);
    assert_eq!(app.create_chat(json!({ "user_ids": ["bob", "alice"] })).await, created);
    // The retry index survived, and seq carries on.
    let (status, body) = app
        .post("/chats/SendMessage", json!({ "chat_id": chat, "author_id": "bob", "text": "dup", "id": "five" }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"], before[4]);
    assert_eq!(app.send_message(&chat, "alice", "m6").await["seq"], 6);
    app.stop().await;
}

//! Access control and input limits (docs/API.md section 5, and the limits of sections 1 and 8),
//! against the real server started in-process on port 0 with a temporary data dir.
//!
//! The server, its clients and the fixture keys and token secrets are the harness's
//! (`tests/helpers`). Every request, frame and event has a timeout, so a bug fails a test
//! instead of hanging it.

mod helpers;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use jsonwebtoken::{Algorithm, Header};
use serde_json::{json, Value};

use chatd::config::{ApiKey, Membership, Settings};
use chatd::startup::StartError;
use helpers::{
    assert_error_for, assert_error_frame, bearer, enc, files_under, jwt, jwt_with, key, now_secs, spawn_app,
    spawn_app_nested, spawn_app_with, split3, texts, try_spawn_app_with, user_token, Got, Who, ACME_KEY, ACME_SECRET,
    BETA_KEY, BETA_SECRET, BOTH_KEY,
};

/// Every unary endpoint, by its error id prefix and its first path.
const UNARY: [(&str, &str); 12] = [
    ("chat.New", "/chat/New"),
    ("chat.Send", "/chat/Send"),
    ("chat.History", "/chat/History"),
    ("chat.Create", "/chat/Create"),
    ("chat.Invite", "/chat/Invite"),
    ("chat.Leave", "/chat/Leave"),
    ("chat.Kick", "/chat/Kick"),
    ("chat.List", "/chat/List"),
    ("chat.Delete", "/chat/Delete"),
    ("chats.CreateChat", "/chats/CreateChat"),
    ("chats.SendMessage", "/chats/SendMessage"),
    ("chats.ListMessages", "/chats/ListMessages"),
];

/// A body for each unary endpoint that would succeed for an API key of `chat`'s namespace.
fn good_body(endpoint: &str, chat: &str) -> Value {
    match endpoint {
        "chat.New" => json!({ "user_ids": ["alice", "bob"] }),
        "chat.Send" => json!({ "chat_id": chat, "user_id": "alice", "text": "hi" }),
        "chat.History" => json!({ "chat_id": chat }),
        "chat.Create" => json!({ "name": "g", "user_ids": ["alice"] }),
        "chat.Invite" => json!({ "group_id": chat, "user_id": "carol" }),
        "chat.Leave" => json!({ "group_id": chat, "user_id": "bob" }),
        "chat.Kick" => json!({ "group_id": chat, "user_id": "bob" }),
        "chat.List" => json!({ "user_id": "alice" }),
        "chat.Delete" => json!({ "group_id": chat }),
        "chats.CreateChat" => json!({ "user_ids": ["alice", "bob"] }),
        "chats.SendMessage" => json!({ "chat_id": chat, "author_id": "alice", "text": "hi" }),
        "chats.ListMessages" => json!({ "chat_id": chat }),
        other => panic!("no body for {other}"),
    }
}

/// Keys for acme, for beta, and one for both; user token secrets for acme and beta.
fn secured(s: &mut Settings) {
    s.auth.api_keys = vec![
        ApiKey { key: ACME_KEY.into(), namespaces: vec!["acme".into()] },
        ApiKey { key: BETA_KEY.into(), namespaces: vec!["beta".into()] },
        ApiKey { key: BOTH_KEY.into(), namespaces: vec!["acme".into(), "beta".into()] },
    ];
    s.auth.user_token_secrets =
        BTreeMap::from([("acme".to_owned(), ACME_SECRET.to_owned()), ("beta".to_owned(), BETA_SECRET.to_owned())]);
}

// ---- 1. API keys: 401 and 403 ----

/// Every unary endpoint (on all three paths) and both stream transports refuse a request with
/// no key, a wrong key, an empty bearer, a non-Bearer scheme or a bare key: 401
/// `{service}.{Endpoint}.Unauthorized`, before anything in the body is looked at.
#[actix_web::test]
async fn a_missing_or_wrong_key_is_401_on_every_endpoint() {
    let srv = spawn_app_with(secured).await;
    let chat = srv.new_chat_as(&key(ACME_KEY, "acme"), &["alice", "bob"]).await;
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("acme:{ACME_KEY}")));
    let wrong: [Option<String>; 6] = [
        None,
        Some("Bearer not-a-key".into()),
        Some("Bearer ".into()),
        Some(basic),
        Some(ACME_KEY.into()),
        Some(format!("Bearer {ACME_KEY}x")),
    ];
    for (endpoint, path) in UNARY {
        let (service, name) = endpoint.split_once('.').unwrap();
        let title = if service == "chat" { "Chat" } else { "Chats" };
        let paths = [path.to_owned(), format!("/{service}/{title}/{name}"), format!("/v1/{service}/{name}")];
        for authorization in &wrong {
            for path in &paths {
                let mut headers = vec![("micro-namespace", "acme".to_owned())];
                if let Some(a) = authorization {
                    headers.push(("authorization", a.clone()));
                }
                let (status, body) = srv.call(path, &headers, good_body(endpoint, &chat)).await;
                assert_error_for(
                    status,
                    &body,
                    401,
                    &format!("{endpoint}.Unauthorized"),
                    &format!("{path} with {authorization:?}"),
                );
            }
            // 401 comes before the 400s: an empty body is still 401.
            let mut headers = vec![("micro-namespace", "acme".to_owned())];
            if let Some(a) = authorization {
                headers.push(("authorization", a.clone()));
            }
            let (status, body) = srv.call(path, &headers, json!({})).await;
            assert_error_for(status, &body, 401, &format!("{endpoint}.Unauthorized"), path);
        }
    }
    // The streams: a WebSocket gets one error frame, then close 4401; SSE gets a 401 body.
    for (endpoint, path) in [("chat.Connect", "/chat/Connect"), ("chat.Join", "/chat/Join")] {
        let url = format!("{path}?chat_id={}&user_id=alice&namespace=acme", enc(&chat));
        let mut ws = srv.ws(&url, &Who::default()).await;
        ws.rx.fails(401, &format!("{endpoint}.Unauthorized")).await;
        let mut ws = srv.ws(&format!("{url}&token=nonsense"), &Who::default()).await;
        ws.rx.fails(401, &format!("{endpoint}.Unauthorized")).await;
        let mut ws = srv.ws(&url, &bearer("not-a-key", None)).await;
        ws.rx.fails(401, &format!("{endpoint}.Unauthorized")).await;
        let (status, body) = srv.sse_fails(&url, &Who::default()).await;
        assert_error_for(status, &body, 401, &format!("{endpoint}.Unauthorized"), &url);
    }
    // Nothing was written by any of it.
    let history = srv.history_as(&key(ACME_KEY, "acme"), &chat).await;
    assert!(history.is_empty(), "{history:?}");
}

/// A key used on a namespace it is not bound to is 403 `{service}.{Endpoint}.Forbidden` on
/// every endpoint and stream; so is a key bound to several namespaces (none of them `micro`)
/// with no namespace header, which acts in `micro`. A key bound to exactly one namespace acts
/// in it with no header: it reads and writes that namespace's chats, by request and by stream.
/// A key bound to both namespaces works in both.
#[actix_web::test]
async fn a_key_used_on_another_namespace_is_403_on_every_endpoint() {
    let srv = spawn_app_with(secured).await;
    let chat = srv.new_chat_as(&key(ACME_KEY, "acme"), &["alice", "bob"]).await;
    let beta_chat = srv.new_chat_as(&key(BETA_KEY, "beta"), &["alice", "bob"]).await;
    for (endpoint, path) in UNARY {
        for who in [
            key(ACME_KEY, "beta"),
            bearer(BOTH_KEY, None),
            key(ACME_KEY, "micro"),
            key(BETA_KEY, "acme"),
            key(BOTH_KEY, "gamma"),
        ] {
            for body in [good_body(endpoint, &chat), json!({})] {
                let (status, reply) = srv.post_as(&who, path, body).await;
                assert_error_for(status, &reply, 403, &format!("{endpoint}.Forbidden"), &format!("{path} as {who:?}"));
            }
        }
    }
    for (endpoint, path) in [("chat.Connect", "/chat/Connect"), ("chat.Join", "/chat/Join")] {
        let url = format!("{path}?chat_id={}&user_id=alice", enc(&chat));
        let mut ws = srv.ws(&url, &key(ACME_KEY, "beta")).await;
        ws.rx.fails(403, &format!("{endpoint}.Forbidden")).await;
        let mut ws = srv.ws(&format!("{url}&namespace=beta&token={ACME_KEY}"), &Who::default()).await;
        ws.rx.fails(403, &format!("{endpoint}.Forbidden")).await;
        let (status, body) = srv.sse_fails(&url, &key(ACME_KEY, "beta")).await;
        assert_error_for(status, &body, 403, &format!("{endpoint}.Forbidden"), &url);
        let mut ws = srv.ws(&url, &bearer(BOTH_KEY, None)).await;
        ws.rx.fails(403, &format!("{endpoint}.Forbidden")).await;
        let (status, body) = srv.sse_fails(&url, &bearer(BOTH_KEY, None)).await;
        assert_error_for(status, &body, 403, &format!("{endpoint}.Forbidden"), &url);
    }
    // Nothing was written by any of it.
    assert!(srv.history_as(&key(ACME_KEY, "acme"), &chat).await.is_empty());
    // The key for both namespaces reads and writes both.
    let m = srv.send_as(&key(BOTH_KEY, "acme"), &chat, "alice", "to acme").await;
    assert_eq!(m["text"], "to acme");
    let m = srv.send_as(&key(BOTH_KEY, "beta"), &beta_chat, "bob", "to beta").await;
    assert_eq!(m["text"], "to beta");
    assert_eq!(texts(&srv.history_as(&key(ACME_KEY, "acme"), &chat).await), ["to acme"]);
    assert_eq!(texts(&srv.history_as(&key(BETA_KEY, "beta"), &beta_chat).await), ["to beta"]);

    // acme's key with no header acts in acme: the same chat for the same members, its reads
    // and streams see acme's messages, its writes land in acme (beta's chat is untouched).
    let acme_bare = bearer(ACME_KEY, None);
    assert_eq!(srv.new_chat_as(&acme_bare, &["alice", "bob"]).await, chat);
    let mut ws = srv.ws(&format!("/chat/Connect?chat_id={}&user_id=alice", enc(&chat)), &acme_bare).await;
    let m = srv.send_as(&acme_bare, &chat, "bob", "no header").await;
    assert_eq!(ws.rx.message().await["id"], m["id"]);
    assert_eq!(texts(&srv.history_as(&acme_bare, &chat).await), ["to acme", "no header"]);
    assert_eq!(texts(&srv.history_as(&key(ACME_KEY, "acme"), &chat).await), ["to acme", "no header"]);
    assert_eq!(texts(&srv.history_as(&key(BETA_KEY, "beta"), &beta_chat).await), ["to beta"]);
}

/// Checks run in the contract's order: 401, namespace 403, the 400s in their listed order,
/// 404, membership 403 (429 comes last: see the rate limit test).
#[actix_web::test]
async fn checks_run_in_the_contract_order() {
    let srv = spawn_app_with(secured).await;
    let acme = key(ACME_KEY, "acme");
    let chat = srv.new_chat_as(&acme, &["bob", "carol"]).await;
    let alice = bearer(&user_token("acme", "alice"), Some("acme"));

    // 401 beats everything, 403 (namespace) beats every 400.
    let bad_json = srv.call_raw("/chat/Send", &[("authorization", "Bearer nope".into())], "{not json").await;
    assert_error_for(bad_json.0, &bad_json.1, 401, "chat.Send.Unauthorized", "");
    let (status, body) = srv.post_as(&key(ACME_KEY, "beta"), "/chat/Send", json!({ "chat_id": "\u{0}" })).await;
    assert_error_for(status, &body, 403, "chat.Send.Forbidden", "");

    // The 400s in their order, then 404.
    let steps = [
        (json!({}), 400, "chat.Send.MissingChatID"),
        (json!({ "chat_id": "nope" }), 400, "chat.Send.MissingUserID"),
        (json!({ "chat_id": "nope", "user_id": "alice" }), 400, "chat.Send.MissingText"),
        (json!({ "chat_id": "no\u{0}pe", "user_id": "alice", "text": "t" }), 400, "chat.Send.BadID"),
        (json!({ "chat_id": "nope", "user_id": "alice", "text": "t" }), 404, "chat.Send.NotFound"),
    ];
    for (body, code, id) in steps {
        let (status, reply) = srv.post_as(&acme, "/chat/Send", body.clone()).await;
        assert_error_for(status, &reply, code, id, &body.to_string());
    }

    // A user token: the 400s, then 404 for an unknown chat, then 403 for a chat alice is not in.
    let (status, body) = srv.post_as(&alice, "/chat/Send", json!({ "chat_id": chat })).await;
    assert_error_for(status, &body, 400, "chat.Send.MissingText", "");
    let (status, body) = srv.post_as(&alice, "/chat/Send", json!({ "chat_id": "nope", "text": "t" })).await;
    assert_error_for(status, &body, 404, "chat.Send.NotFound", "");
    let (status, body) = srv.post_as(&alice, "/chat/Send", json!({ "chat_id": chat, "text": "t" })).await;
    assert_error_for(status, &body, 403, "chat.Send.Forbidden", "");
    let (status, body) = srv.post_as(&alice, "/chat/History", json!({ "chat_id": "nope" })).await;
    assert_error_for(status, &body, 404, "chat.History.NotFound", "");
    let (status, body) = srv.post_as(&alice, "/chat/History", json!({ "chat_id": chat })).await;
    assert_error_for(status, &body, 403, "chat.History.Forbidden", "");
    // And an API key sending as a non-member: 404 first, then membership 403.
    let (status, body) =
        srv.post_as(&acme, "/chat/Send", json!({ "chat_id": chat, "user_id": "mallory", "text": "t" })).await;
    assert_error_for(status, &body, 403, "chat.Send.Forbidden", "");
}

// ---- 2. namespaces ----

/// A key for beta cannot read, write or even detect acme's chats: every request naming an
/// acme chat gets exactly the answer a never-made chat id gets, and acme's chat is untouched.
#[actix_web::test]
async fn a_namespace_key_cannot_read_write_or_detect_another_namespaces_chats() {
    let srv = spawn_app_with(secured).await;
    let acme = key(ACME_KEY, "acme");
    let beta = key(BETA_KEY, "beta");
    let chat = srv.new_chat_as(&acme, &["alice", "bob"]).await;
    let (status, body) = srv
        .post_as(&acme, "/chat/Create", json!({ "name": "acme-group", "user_ids": ["alice", "bob"], "private": true }))
        .await;
    assert_eq!(status, 200, "{body}");
    let group = body["group"]["id"].as_str().unwrap().to_owned();
    srv.send_as(&acme, &chat, "alice", "acme's secret").await;
    srv.send_as(&acme, &group, "bob", "acme's group secret").await;

    let never = "never-made-chat";
    for target in [&chat, &group] {
        for (endpoint, path) in UNARY {
            if matches!(endpoint, "chat.New" | "chat.Create" | "chats.CreateChat") {
                continue;
            }
            let body = good_body(endpoint, target);
            let (status, reply) = srv.post_as(&beta, path, body.clone()).await;
            let (never_status, never_reply) = srv.post_as(&beta, path, good_body(endpoint, never)).await;
            if endpoint == "chat.List" {
                assert_eq!(status, 200, "{reply}");
                assert_eq!(reply, json!({ "groups": [] }), "beta lists acme's groups");
                continue;
            }
            assert_error_for(status, &reply, 404, &format!("{endpoint}.NotFound"), path);
            assert_eq!(
                (status, &reply),
                (never_status, &never_reply),
                "{path}: beta can tell acme's chat from a never-made one"
            );
            // A key that is not for acme learns nothing either, whether or not the chat exists.
            let (status, reply) = srv.post_as(&key(BETA_KEY, "acme"), path, body).await;
            let (never_status, never_reply) =
                srv.post_as(&key(BETA_KEY, "acme"), path, good_body(endpoint, never)).await;
            assert_error_for(status, &reply, 403, &format!("{endpoint}.Forbidden"), path);
            assert_eq!((status, &reply), (never_status, &never_reply), "{path}");
        }
        for (endpoint, path) in [("chat.Connect", "/chat/Connect"), ("chat.Join", "/chat/Join")] {
            for id in [target.as_str(), never] {
                let url = format!("{path}?chat_id={}&user_id=alice", enc(id));
                let mut ws = srv.ws(&url, &beta).await;
                ws.rx.fails(404, &format!("{endpoint}.NotFound")).await;
                let (status, body) = srv.sse_fails(&url, &beta).await;
                assert_error_for(status, &body, 404, &format!("{endpoint}.NotFound"), &url);
            }
        }
        // A beta user token (no namespace header: its `ns` is beta) cannot see it either.
        let token = bearer(&user_token("beta", "alice"), None);
        let (status, body) = srv.post_as(&token, "/chat/History", json!({ "chat_id": target })).await;
        assert_error_for(status, &body, 404, "chat.History.NotFound", "beta token");
    }

    // The same members in beta make beta's own chat; the same id in beta is beta's own chat.
    let beta_chat = srv.new_chat_as(&beta, &["alice", "bob"]).await;
    assert_ne!(beta_chat, chat);
    let (status, body) =
        srv.post_as(&beta, "/chats/CreateChat", json!({ "id": chat, "user_ids": ["mallory", "trudy"] })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["chat"]["user_ids"], json!(["mallory", "trudy"]));
    assert!(srv.history_as(&beta, &chat).await.is_empty());
    srv.send_as(&beta, &chat, "mallory", "beta's own").await;

    // acme's chats are exactly as they were.
    assert_eq!(texts(&srv.history_as(&acme, &chat).await), ["acme's secret"]);
    assert_eq!(texts(&srv.history_as(&acme, &group).await), ["acme's group secret"]);
    let (status, body) = srv.post_as(&acme, "/chat/List", json!({ "user_id": "bob" })).await;
    assert_eq!(status, 200, "{body}");
    let ids: Vec<&str> = body["groups"].as_array().unwrap().iter().map(|g| g["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&group.as_str()), "{body}");
    assert_eq!(texts(&srv.history_as(&beta, &chat).await), ["beta's own"]);
}

// ---- 3. user tokens ----

/// A user token acts as its `sub` in its own namespace: with the namespace header or without
/// it (the token's `ns`), on unary calls and on streams (token as a query parameter or header).
#[actix_web::test]
async fn a_user_token_acts_as_its_sub_in_its_namespace() {
    let srv = spawn_app_with(secured).await;
    let token = user_token("acme", "alice");
    for (i, who) in [bearer(&token, None), bearer(&token, Some("acme"))].into_iter().enumerate() {
        let (status, body) = srv.post_as(&who, "/chat/New", json!({ "user_ids": ["alice", format!("bob{i}")] })).await;
        assert_eq!(status, 200, "{body}");
        let chat = body["chat_id"].as_str().unwrap().to_owned();
        // An omitted user_id / author_id means sub.
        let (status, body) = srv.post_as(&who, "/chat/Send", json!({ "chat_id": chat, "text": "one" })).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["message"]["user_id"], "alice");
        let (status, body) =
            srv.post_as(&who, "/chat/Send", json!({ "chat_id": chat, "user_id": "alice", "text": "two" })).await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = srv.post_as(&who, "/chats/SendMessage", json!({ "chat_id": chat, "text": "three" })).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["message"]["author_id"], "alice");
        let (status, body) = srv.post_as(&who, "/chats/ListMessages", json!({ "chat_id": chat, "order": "asc" })).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["messages"].as_array().unwrap().len(), 3);
        let history = srv.history_as(&who, &chat).await;
        assert_eq!(texts(&history), ["one", "two", "three"]);
        // It is acme's chat: acme's key sees it, beta's does not.
        assert_eq!(srv.history_as(&key(ACME_KEY, "acme"), &chat).await.len(), 3);

        // Streams: token as a query parameter (browsers), or as the header.
        let mut by_query =
            srv.ws(&format!("/chat/Connect?chat_id={}&token={}", enc(&chat), enc(&token)), &Who::default()).await;
        let mut by_header = srv.ws(&format!("/chat/Connect?chat_id={}", enc(&chat)), &who).await;
        let mut sse = srv
            .sse(&format!("/chat/Connect?chat_id={}&namespace=acme&token={}", enc(&chat), enc(&token)), &Who::default())
            .await;
        by_query.tx.send(json!({ "text": "over ws", "client_id": "c-ws" })).await;
        for rx in [&mut by_query.rx, &mut by_header.rx] {
            let m = rx.message().await;
            assert_eq!(
                (&m["text"], &m["user_id"], &m["client_id"]),
                (&json!("over ws"), &json!("alice"), &json!("c-ws"))
            );
        }
        let m = sse.message().await;
        assert_eq!(m["text"], "over ws");
    }
}

/// A WebSocket that names nothing in its URL may name its chat and carry its token in a
/// first frame; a bad token there is refused like anywhere else.
#[actix_web::test]
async fn a_stream_may_carry_its_token_in_the_first_frame() {
    let srv = spawn_app_with(secured).await;
    let chat = srv.new_chat_as(&key(ACME_KEY, "acme"), &["alice", "bob"]).await;
    let mut ws = srv.ws("/chat/Connect", &Who::default()).await;
    ws.tx.send(json!({ "chat_id": chat, "token": user_token("acme", "alice") })).await;
    ws.tx.send(json!({ "text": "hello", "client_id": "h" })).await;
    let m = ws.rx.message().await;
    assert_eq!((&m["user_id"], &m["text"]), (&json!("alice"), &json!("hello")));
    for (token, code, id) in [
        (user_token("beta", "alice"), 404, "chat.Connect.NotFound"),
        ("bad".to_owned(), 401, "chat.Connect.Unauthorized"),
        (user_token("acme", "carol"), 403, "chat.Connect.Forbidden"),
    ] {
        let mut ws = srv.ws("/chat/Connect", &Who::default()).await;
        ws.tx.send(json!({ "chat_id": chat, "token": token })).await;
        ws.rx.fails(code, id).await;
    }
    let mut ws = srv.ws("/chat/Connect", &Who::default()).await;
    ws.tx.send(json!({ "chat_id": chat, "user_id": "alice", "namespace": "acme" })).await;
    ws.rx.fails(401, "chat.Connect.Unauthorized").await;
}

/// Tokens that are expired, have no `exp`, are tampered with, are signed with another secret
/// or algorithm, or are not JWTs at all: 401 on unary calls and on streams; nothing is stored.
#[actix_web::test]
async fn expired_tampered_and_foreign_tokens_are_401() {
    let srv = spawn_app_with(secured).await;
    let acme = key(ACME_KEY, "acme");
    let chat = srv.new_chat_as(&acme, &["alice", "bob"]).await;
    let now = now_secs();
    let claims = |sub: &str, exp: i64| json!({ "sub": sub, "exp": exp, "ns": "acme" });

    let good = user_token("acme", "alice");
    let bob = user_token("acme", "bob");
    let (gh, gp, gs) = split3(&good);
    let (_, bp, _) = split3(&bob);
    let mut flipped = gs.to_owned().into_bytes();
    flipped[3] = if flipped[3] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes());
    let none_alg = format!("{}.{}.", b64(json!({ "alg": "none", "typ": "JWT" })), b64(claims("alice", now + 3600)));
    // The payload says exp is far away, but the signature is for the real (short) one.
    let short = jwt_with(Header::default(), ACME_SECRET, &claims("alice", now + 3600));
    let (sh, _, ss) = split3(&short);
    let stretched = format!("{sh}.{}.{ss}", b64(claims("alice", now + 10 * 365 * 86400)));

    let bad: Vec<(&str, String)> = vec![
        ("expired", jwt(ACME_SECRET, &claims("alice", now - 5))),
        ("expired long ago", jwt(ACME_SECRET, &claims("alice", 1_000_000))),
        ("no exp", jwt(ACME_SECRET, &json!({ "sub": "alice", "ns": "acme" }))),
        ("no sub", jwt(ACME_SECRET, &json!({ "exp": now + 3600, "ns": "acme" }))),
        ("wrong secret", jwt("not acme's secret", &claims("alice", now + 3600))),
        ("beta's secret", jwt(BETA_SECRET, &claims("alice", now + 3600))),
        ("beta's own valid token, used in acme", user_token("beta", "alice")),
        ("bob's payload, alice's signature", format!("{gh}.{bp}.{gs}")),
        ("stretched exp", stretched),
        ("flipped signature", format!("{gh}.{gp}.{flipped}")),
        ("no signature", format!("{gh}.{gp}.")),
        ("two parts", format!("{gh}.{gp}")),
        ("alg none", none_alg),
        ("HS384", jwt_with(Header::new(Algorithm::HS384), ACME_SECRET, &claims("alice", now + 3600))),
        ("HS512", jwt_with(Header::new(Algorithm::HS512), ACME_SECRET, &claims("alice", now + 3600))),
        ("control character in sub", jwt(ACME_SECRET, &claims("ali\u{0}ce", now + 3600))),
        ("garbage", "a.b.c".into()),
        ("not even dots", "garbage".into()),
    ];
    for (what, token) in &bad {
        for who in [bearer(token, Some("acme")), bearer(token, None)] {
            if what.starts_with("beta's own") && who.ns.is_none() {
                continue; // without a namespace header it is simply a beta token
            }
            let (status, body) =
                srv.post_as(&who, "/chat/Send", json!({ "chat_id": chat, "user_id": "alice", "text": what })).await;
            assert_error_for(status, &body, 401, "chat.Send.Unauthorized", what);
            let (status, body) = srv.post_as(&who, "/chat/History", json!({ "chat_id": chat })).await;
            assert_error_for(status, &body, 401, "chat.History.Unauthorized", what);
        }
        let url = format!("/chat/Connect?chat_id={}&namespace=acme&token={}", enc(&chat), enc(token));
        let mut ws = srv.ws(&url, &Who::default()).await;
        ws.rx.fails(401, "chat.Connect.Unauthorized").await;
        let (status, body) = srv.sse_fails(&url, &Who::default()).await;
        assert_error_for(status, &body, 401, "chat.Connect.Unauthorized", what);
    }
    // A namespace without a token secret takes no user tokens at all.
    let gamma = jwt(ACME_SECRET, &json!({ "sub": "alice", "exp": now + 3600, "ns": "gamma" }));
    let (status, body) =
        srv.post_as(&bearer(&gamma, Some("gamma")), "/chat/New", json!({ "user_ids": ["alice"] })).await;
    assert_error_for(status, &body, 401, "chat.New.Unauthorized", "gamma");

    assert!(srv.history_as(&acme, &chat).await.is_empty());
    // The good token still works.
    let (status, body) =
        srv.post_as(&bearer(&good, Some("acme")), "/chat/Send", json!({ "chat_id": chat, "text": "fine" })).await;
    assert_eq!(status, 200, "{body}");
}

/// A token that verifies with the request namespace's secret but names another namespace (or
/// none) in `ns` is 403; so is a token for one namespace used with another's header.
#[actix_web::test]
async fn a_token_signed_for_another_namespace_is_refused() {
    let srv = spawn_app_with(secured).await;
    let chat = srv.new_chat_as(&key(ACME_KEY, "acme"), &["alice"]).await;
    let now = now_secs();
    let cases = [
        ("ns beta, acme's secret", jwt(ACME_SECRET, &json!({ "sub": "alice", "exp": now + 3600, "ns": "beta" })), 403),
        ("no ns", jwt(ACME_SECRET, &json!({ "sub": "alice", "exp": now + 3600 })), 403),
        ("ns \"\"", jwt(ACME_SECRET, &json!({ "sub": "alice", "exp": now + 3600, "ns": "" })), 403),
        ("beta's valid token", user_token("beta", "alice"), 401),
    ];
    for (what, token, code) in &cases {
        let who = bearer(token, Some("acme"));
        let (status, body) = srv.post_as(&who, "/chat/Send", json!({ "chat_id": chat, "text": "x" })).await;
        let id = if *code == 401 { "chat.Send.Unauthorized" } else { "chat.Send.Forbidden" };
        assert_error_for(status, &body, *code, id, what);
        let url = format!("/chat/Connect?chat_id={}&namespace=acme&token={}", enc(&chat), enc(token));
        let mut ws = srv.ws(&url, &Who::default()).await;
        let id = id.replace("Send", "Connect");
        ws.rx.fails(*code, &id).await;
    }
    // A valid beta token sent with no header acts in beta, where acme's chat does not exist.
    let (status, body) = srv
        .post_as(&bearer(&user_token("beta", "alice"), None), "/chat/Send", json!({ "chat_id": chat, "text": "x" }))
        .await;
    assert_error_for(status, &body, 404, "chat.Send.NotFound", "beta token");
    assert!(srv.history_as(&key(ACME_KEY, "acme"), &chat).await.is_empty());
}

/// A user token naming another user anywhere is 403, and nothing is stored as that user.
#[actix_web::test]
async fn a_user_token_cannot_act_as_someone_else() {
    let srv = spawn_app_with(secured).await;
    let acme = key(ACME_KEY, "acme");
    let chat = srv.new_chat_as(&acme, &["alice", "bob"]).await;
    let (status, body) = srv.post_as(&acme, "/chat/Create", json!({ "name": "g", "user_ids": ["alice", "bob"] })).await;
    assert_eq!(status, 200, "{body}");
    let group = body["group"]["id"].as_str().unwrap().to_owned();
    let alice = bearer(&user_token("acme", "alice"), Some("acme"));
    let refusals = [
        ("/chat/Send", json!({ "chat_id": chat, "user_id": "bob", "text": "as bob" }), "chat.Send.Forbidden"),
        (
            "/chats/SendMessage",
            json!({ "chat_id": chat, "author_id": "bob", "text": "as bob" }),
            "chats.SendMessage.Forbidden",
        ),
        ("/chat/List", json!({ "user_id": "bob" }), "chat.List.Forbidden"),
        ("/chat/Leave", json!({ "group_id": group, "user_id": "bob" }), "chat.Leave.Forbidden"),
    ];
    for (path, body, id) in refusals {
        let (status, reply) = srv.post_as(&alice, path, body).await;
        assert_error_for(status, &reply, 403, id, path);
    }
    for (endpoint, path) in [("chat.Connect", "/chat/Connect"), ("chat.Join", "/chat/Join")] {
        let url = format!("{path}?chat_id={}&user_id=bob", enc(&group));
        let mut ws = srv.ws(&url, &alice).await;
        ws.rx.fails(403, &format!("{endpoint}.Forbidden")).await;
    }
    // A stream's frames are sent as the token's user, whatever they say.
    let mut ws = srv.ws(&format!("/chat/Connect?chat_id={}", enc(&chat)), &alice).await;
    ws.tx.send(json!({ "text": "frame", "user_id": "bob", "client_id": "f1" })).await;
    assert_eq!(ws.rx.message().await["user_id"], "alice");

    let history = srv.history_as(&acme, &chat).await;
    assert!(history.iter().all(|m| m["user_id"] == "alice"), "{history:?}");
    // bob is still in the group.
    let (_, body) = srv.post_as(&acme, "/chat/List", json!({ "user_id": "bob" })).await;
    assert!(
        body["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["id"] == group.as_str() && g["user_ids"] == json!(["alice", "bob"])),
        "{body}"
    );
}

/// A user token works only in chats where its `sub` is a member: sends, reads, streams, the
/// group endpoints, and New or CreateChat that would leave it out are all 403.
#[actix_web::test]
async fn a_user_token_works_only_in_chats_it_is_a_member_of() {
    let srv = spawn_app_with(secured).await;
    let acme = key(ACME_KEY, "acme");
    let chat = srv.new_chat_as(&acme, &["bob", "carol"]).await;
    srv.send_as(&acme, &chat, "bob", "private talk").await;
    let alice = bearer(&user_token("acme", "alice"), Some("acme"));
    let refusals = [
        ("/chat/Send", json!({ "chat_id": chat, "text": "let me in" }), "chat.Send.Forbidden"),
        ("/chat/History", json!({ "chat_id": chat }), "chat.History.Forbidden"),
        ("/chats/SendMessage", json!({ "chat_id": chat, "text": "let me in" }), "chats.SendMessage.Forbidden"),
        ("/chats/ListMessages", json!({ "chat_id": chat }), "chats.ListMessages.Forbidden"),
        ("/chat/New", json!({ "user_ids": ["bob", "carol"] }), "chat.New.Forbidden"),
        ("/chats/CreateChat", json!({ "user_ids": ["bob", "carol"] }), "chats.CreateChat.Forbidden"),
        ("/chats/CreateChat", json!({ "id": chat, "user_ids": ["alice", "bob"] }), "chats.CreateChat.Forbidden"),
        ("/chat/Invite", json!({ "group_id": chat, "user_id": "alice" }), "chat.Invite.Forbidden"),
        ("/chat/Kick", json!({ "group_id": chat, "user_id": "bob" }), "chat.Kick.Forbidden"),
        ("/chat/Delete", json!({ "group_id": chat }), "chat.Delete.Forbidden"),
    ];
    for (path, body, id) in refusals {
        let (status, reply) = srv.post_as(&alice, path, body.clone()).await;
        assert_error_for(status, &reply, 403, id, &format!("{path} {body}"));
    }
    let url = format!("/chat/Connect?chat_id={}", enc(&chat));
    let mut ws = srv.ws(&url, &alice).await;
    ws.rx.fails(403, "chat.Connect.Forbidden").await;
    let (status, body) = srv.sse_fails(&url, &alice).await;
    assert_error_for(status, &body, 403, "chat.Connect.Forbidden", "sse");
    let mut ws = srv.ws(&format!("{url}&since=0"), &alice).await;
    ws.rx.fails(403, "chat.Connect.Forbidden").await;

    // Nothing changed: same messages, same members, still there.
    assert_eq!(texts(&srv.history_as(&acme, &chat).await), ["private talk"]);
    let (status, body) = srv.post_as(&acme, "/chats/CreateChat", json!({ "id": chat, "user_ids": ["x", "y"] })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["chat"]["user_ids"], json!(["bob", "carol"]));
    // bob, a member, can do what alice could not.
    let bob = bearer(&user_token("acme", "bob"), Some("acme"));
    let (status, body) = srv.post_as(&bob, "/chat/History", json!({ "chat_id": chat })).await;
    assert_eq!(status, 200, "{body}");
}

// ---- 4. membership ----

/// Sending requires the sender to be a member, for API keys and anonymous servers too, on
/// every way of sending; a key may still read any chat and watch it as a non-member.
/// `chat.membership = "open"` lifts the requirement for every caller.
#[actix_web::test]
async fn sending_requires_membership_unless_membership_is_open() {
    let srv = spawn_app_with(secured).await;
    let acme = key(ACME_KEY, "acme");
    let chat = srv.new_chat_as(&acme, &["alice", "bob"]).await;
    let (status, body) =
        srv.post_as(&acme, "/chat/Send", json!({ "chat_id": chat, "user_id": "mallory", "text": "x" })).await;
    assert_error_for(status, &body, 403, "chat.Send.Forbidden", "key, non-member");
    let (status, body) =
        srv.post_as(&acme, "/chats/SendMessage", json!({ "chat_id": chat, "author_id": "mallory", "text": "x" })).await;
    assert_error_for(status, &body, 403, "chats.SendMessage.Forbidden", "key, non-member");
    // A key watching as a non-member: it reads, but its frames are refused, and it stays open.
    let mut ws = srv.ws(&format!("/chat/Connect?chat_id={}&user_id=mallory", enc(&chat)), &acme).await;
    ws.tx.send(json!({ "text": "x", "client_id": "m1" })).await;
    let frame = ws.rx.json().await;
    assert_error_frame(&frame, 403, "chat.Send.Forbidden", Some("m1"));
    srv.send_as(&acme, &chat, "alice", "members only").await;
    assert_eq!(ws.rx.message().await["text"], "members only");
    assert_eq!(texts(&srv.history_as(&acme, &chat).await), ["members only"]);
    srv.stop().await;

    // Anonymous servers enforce membership too.
    let anon = spawn_app().await;
    let chat = anon.new_chat_as(&Who::default(), &["alice"]).await;
    let (status, body) = anon
        .post_as(&Who::default(), "/chat/Send", json!({ "chat_id": chat, "user_id": "mallory", "text": "x" }))
        .await;
    assert_error_for(status, &body, 403, "chat.Send.Forbidden", "anonymous");
    anon.stop().await;

    // Open membership: anyone in the namespace may send, keys and user tokens alike.
    let open = spawn_app_with(|s| {
        secured(s);
        s.chat.membership = Membership::Open;
    })
    .await;
    let acme = key(ACME_KEY, "acme");
    let chat = open.new_chat_as(&acme, &["alice", "bob"]).await;
    let m = open.send_as(&acme, &chat, "mallory", "by key").await;
    assert_eq!(m["user_id"], "mallory");
    let trudy = bearer(&user_token("acme", "trudy"), Some("acme"));
    let (status, body) = open.post_as(&trudy, "/chat/Send", json!({ "chat_id": chat, "text": "by token" })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"]["user_id"], "trudy");
    let (status, body) = open.post_as(&trudy, "/chat/History", json!({ "chat_id": chat })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(texts(body["messages"].as_array().unwrap()), ["by key", "by token"]);
    // ...but a token still acts only as its sub, and only in its namespace.
    let (status, body) =
        open.post_as(&trudy, "/chat/Send", json!({ "chat_id": chat, "user_id": "alice", "text": "x" })).await;
    assert_error_for(status, &body, 403, "chat.Send.Forbidden", "open, as alice");
    let (status, body) = open
        .post_as(&bearer(&user_token("beta", "trudy"), None), "/chat/Send", json!({ "chat_id": chat, "text": "x" }))
        .await;
    assert_error_for(status, &body, 404, "chat.Send.NotFound", "open, beta");
}

// ---- 5. rate limit ----

/// The per-user send rate: a user token gets `send_burst` sends, then 429
/// `{service}.{Endpoint}.RateLimited` on every way of sending, until the rate refills it.
/// Other users, API keys, retries and membership refusals are not affected by it.
#[actix_web::test]
async fn the_send_rate_limit_applies_to_user_tokens_only() {
    let srv = spawn_app_with(|s| {
        secured(s);
        s.limits.sends_per_second = 1;
        s.limits.send_burst = 3;
    })
    .await;
    let acme = key(ACME_KEY, "acme");
    let chat = srv.new_chat_as(&acme, &["alice", "bob"]).await;
    let other = srv.new_chat_as(&acme, &["bob", "carol"]).await;
    let alice = bearer(&user_token("acme", "alice"), Some("acme"));
    let mut ws = srv.ws(&format!("/chat/Connect?chat_id={}", enc(&chat)), &alice).await;
    let send = |n: usize| json!({ "chat_id": chat, "text": format!("a{n}"), "client_id": format!("a{n}") });
    // The burst, then 429 on each way of sending.
    for n in 0..3 {
        let (status, body) = srv.post_as(&alice, "/chat/Send", send(n)).await;
        assert_eq!(status, 200, "send {n}: {body}");
    }
    let (status, body) = srv.post_as(&alice, "/chat/Send", send(3)).await;
    assert_error_for(status, &body, 429, "chat.Send.RateLimited", "4th send");
    let (status, body) = srv.post_as(&alice, "/chats/SendMessage", json!({ "chat_id": chat, "text": "x" })).await;
    assert_error_for(status, &body, 429, "chats.SendMessage.RateLimited", "");
    ws.tx.send(json!({ "text": "x", "client_id": "ws1" })).await;
    for n in 0..3 {
        assert_eq!(ws.rx.message().await["text"], format!("a{n}"));
    }
    assert_error_frame(&ws.rx.json().await, 429, "chat.Send.RateLimited", Some("ws1"));
    // The membership 403 comes before the 429.
    let (status, body) = srv.post_as(&alice, "/chat/Send", json!({ "chat_id": other, "text": "x" })).await;
    assert_error_for(status, &body, 403, "chat.Send.Forbidden", "non-member");
    // A retry stores nothing, so it is answered.
    let (status, body) = srv.post_as(&alice, "/chat/Send", send(0)).await;
    assert_eq!(status, 200, "retry: {body}");
    assert_eq!(body["message"]["seq"], 1);
    // The rate refills the bucket: one more send after a second, then 429 again.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (status, body) = srv.post_as(&alice, "/chat/Send", send(4)).await;
    assert_eq!(status, 200, "after refill: {body}");
    let (status, body) = srv.post_as(&alice, "/chat/Send", send(5)).await;
    assert_error_for(status, &body, 429, "chat.Send.RateLimited", "after refill");

    // Other users have their own buckets; API keys and their users are never limited.
    let bob = bearer(&user_token("acme", "bob"), Some("acme"));
    for n in 0..3 {
        let (status, body) = srv.post_as(&bob, "/chat/Send", json!({ "chat_id": chat, "text": format!("b{n}") })).await;
        assert_eq!(status, 200, "bob {n}: {body}");
    }
    for n in 0..20 {
        srv.send_as(&acme, &chat, "alice", &format!("k{n}")).await;
    }

    // Exactly the accepted sends are stored, and the stream saw them all and is still open.
    let history = srv.history_as(&acme, &chat).await;
    let from_alice_token: Vec<String> = texts(&history).into_iter().filter(|t| t.starts_with('a')).collect();
    assert_eq!(from_alice_token, ["a0", "a1", "a2", "a4"]);
    assert_eq!(history.len(), 4 + 3 + 20);
    srv.send_as(&acme, &chat, "bob", "still serving").await;
    let mut streamed = Vec::new();
    for _ in 0..(1 + 3 + 20 + 1) {
        streamed.push(ws.rx.message().await["text"].as_str().unwrap().to_owned());
    }
    assert_eq!(streamed.first().map(String::as_str), Some("a4"));
    assert_eq!(streamed.last().map(String::as_str), Some("still serving"));
}

// ---- 6. anonymous mode ----

/// With no keys and no secrets the server refuses to start on a non-loopback address unless
/// `auth.allow_anonymous = true`; on loopback it starts and logs a WARN naming "anonymous".
#[actix_web::test]
async fn anonymous_mode_refuses_a_non_loopback_address_unless_allowed() {
    let settings = |host: &str, allow: bool, keys: bool| {
        let host = host.to_owned();
        move |s: &mut Settings| {
            s.server.host = host;
            s.server.workers = 1;
            s.auth.allow_anonymous = allow;
            if keys {
                secured(s);
            }
        }
    };
    for host in ["0.0.0.0", "192.0.2.1", "::"] {
        match try_spawn_app_with(settings(host, false, false)).await {
            Err(StartError::Config(why)) => {
                assert!(why.contains("allow_anonymous"), "{host}: {why}")
            }
            Err(other) => panic!("{host}: expected a config error, got {other}"),
            Ok(_) => panic!("{host}: started anonymously on a non-loopback address"),
        }
    }
    // Allowed explicitly, or with keys: it starts and serves.
    for (allow, keys) in [(true, false), (false, true)] {
        let srv = try_spawn_app_with(settings("0.0.0.0", allow, keys))
            .await
            .unwrap_or_else(|e| panic!("allow={allow} keys={keys}: {e}"));
        let who = if keys { key(ACME_KEY, "acme") } else { Who::default() };
        let chat = srv.new_chat_as(&who, &["alice"]).await;
        srv.send_as(&who, &chat, "alice", "served").await;
        srv.stop().await;
    }
    // Loopback: starts, with a WARN line that says "anonymous".
    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    for host in ["127.0.0.1", "localhost"] {
        let srv = try_spawn_app_with(settings(host, false, false)).await.unwrap_or_else(|e| panic!("{host}: {e}"));
        srv.stop().await;
    }
    drop(guard);
    let text = logs.text();
    let warns: Vec<&str> = text.lines().filter(|l| l.contains("WARN") && l.contains("anonymous")).collect();
    assert_eq!(warns.len(), 2, "logs:\n{text}");
}

/// In anonymous mode the authorization header is ignored (even a garbage one) and every
/// request acts like a key for its namespace; namespaces stay isolated.
#[actix_web::test]
async fn anonymous_mode_ignores_the_authorization_header() {
    let srv = spawn_app().await;
    let junk = bearer("garbage.token.here", Some("acme"));
    let chat = srv.new_chat_as(&junk, &["alice"]).await;
    srv.send_as(&junk, &chat, "alice", "hello").await;
    assert_eq!(texts(&srv.history_as(&Who { ns: Some("acme".into()), bearer: None }, &chat).await), ["hello"]);
    let (status, body) = srv.post_as(&Who::default(), "/chat/History", json!({ "chat_id": chat })).await;
    assert_error_for(status, &body, 404, "chat.History.NotFound", "micro");
    let mut ws = srv
        .ws(&format!("/chat/Connect?chat_id={}&user_id=alice&namespace=acme&token=junk", enc(&chat)), &Who::default())
        .await;
    ws.tx.send(json!({ "text": "ws", "client_id": "w" })).await;
    assert_eq!(ws.rx.message().await["text"], "ws");
}

// ---- 7. limits ----

/// Bodies over `server.max_body_bytes` get 413 `{service}.{Endpoint}.TooLarge` on every
/// endpoint, whether announced by Content-Length, streamed chunked, or announced and never
/// sent; a micro error body always comes back, and the server serves on.
#[actix_web::test]
async fn oversized_bodies_get_413_and_the_server_serves_on() {
    const MAX: usize = 2048;
    let srv = spawn_app_with(|s| {
        secured(s);
        s.server.max_body_bytes = MAX;
    })
    .await;
    let acme = key(ACME_KEY, "acme");
    let chat = srv.new_chat_as(&acme, &["alice"]).await;
    let big = json!({ "chat_id": chat, "user_id": "alice", "text": "x".repeat(MAX) }).to_string();
    let headers = [("micro-namespace", "acme".to_owned()), ("authorization", format!("Bearer {ACME_KEY}"))];
    for (endpoint, path) in UNARY {
        let (status, body) = srv.call_raw(path, &headers, big.clone()).await;
        assert_error_for(status, &body, 413, &format!("{endpoint}.TooLarge"), path);
        let (status, body) = srv.call_chunked(path, &headers, big.clone()).await;
        assert_error_for(status, &body, 413, &format!("{endpoint}.TooLarge"), &format!("{path} chunked"));
    }
    // Just under the limit is fine.
    let fits = json!({ "chat_id": chat, "user_id": "alice", "text": "y".repeat(MAX - 100) }).to_string();
    assert!(fits.len() <= MAX);
    let (status, body) = srv.call_raw("/chat/Send", &headers, fits).await;
    assert_eq!(status, 200, "{body}");

    // A raw request announcing a huge body it never sends is answered at once.
    let request = format!(
        "POST /chat/Send HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {ACME_KEY}\r\n\
         micro-namespace: acme\r\ncontent-length: 1000000000000\r\n\r\n{{\"chat_id\":"
    );
    let (status, body) = srv.raw_http(&request).await;
    assert_error_for(status, &body, 413, "chat.Send.TooLarge", "announced");

    // And the server serves on.
    srv.send_as(&acme, &chat, "alice", "after").await;
    assert_eq!(srv.history_as(&acme, &chat).await.len(), 2);
}

/// Bodies, headers, query strings and frames built to hurt: deep nesting, invalid UTF-8, lone
/// surrogates, wrong types, absurd numbers, a 10,000-byte namespace header, a WebSocket frame
/// over the body limit. Each gets a 4xx micro error (or, for the frame, a closed stream), and
/// the server serves on.
#[actix_web::test]
async fn hostile_bodies_headers_and_frames_are_refused_and_the_server_serves_on() {
    let srv = spawn_app_with(|s| s.server.max_body_bytes = 64 * 1024).await;
    let anon = Who::default();
    let chat = srv.new_chat_as(&anon, &["alice"]).await;
    let deep_array = "[".repeat(60_000);
    let deep_object = format!("{{\"chat_id\":{}", "{\"a\":".repeat(10_000));
    let bodies: Vec<(&str, Vec<u8>, &str)> = vec![
        ("deep array", deep_array.into_bytes(), "chat.Send.BadRequest"),
        ("deep object", deep_object.into_bytes(), "chat.Send.BadRequest"),
        (
            "invalid UTF-8",
            b"{\"chat_id\":\"\xff\xfe\",\"user_id\":\"alice\",\"text\":\"t\"}".to_vec(),
            "chat.Send.BadRequest",
        ),
        ("lone surrogate", br#"{"chat_id":"\ud800","user_id":"alice","text":"t"}"#.to_vec(), "chat.Send.BadRequest"),
        ("number for a string", br#"{"chat_id":5,"user_id":"alice","text":"t"}"#.to_vec(), "chat.Send.BadRequest"),
        (
            "object for a string",
            br#"{"chat_id":{"$ne":null},"user_id":"alice","text":"t"}"#.to_vec(),
            "chat.Send.BadRequest",
        ),
        ("a JSON array", b"[1,2,3]".to_vec(), "chat.Send.BadRequest"),
        ("a JSON string", br#""chat_id""#.to_vec(), "chat.Send.BadRequest"),
        ("a NUL byte", b"\0".to_vec(), "chat.Send.BadRequest"),
        (
            "null text",
            format!(r#"{{"chat_id":"{chat}","user_id":"alice","text":null}}"#).into_bytes(),
            "chat.Send.MissingText",
        ),
        (
            "trailing garbage",
            format!(r#"{{"chat_id":"{chat}","user_id":"alice","text":"t"}} junk"#).into_bytes(),
            "chat.Send.BadRequest",
        ),
    ];
    for (what, body, id) in bodies {
        let (status, reply) = srv.call_raw("/chat/Send", &[], body).await;
        assert_error_for(status, &reply, 400, id, what);
    }
    for (what, body) in [
        ("huge number", r#"{"chat_id":"c","limit":1e999999}"#),
        ("negative", r#"{"chat_id":"c","limit":-1}"#),
        ("too big", r#"{"chat_id":"c","limit":18446744073709551616}"#),
        ("fraction", r#"{"chat_id":"c","after_seq":1.5}"#),
    ] {
        let (status, reply) = srv.call_raw("/chat/History", &[], body).await;
        assert_error_for(status, &reply, 400, "chat.History.BadRequest", what);
    }
    // A 10,000-byte namespace header.
    let (status, body) = srv
        .call_bytes_header(
            "/chat/New",
            "micro-namespace",
            "n".repeat(10_000).as_bytes(),
            json!({ "user_ids": ["alice"] }),
        )
        .await;
    assert_error_for(status, &body, 400, "chat.New.BadID", "10,000-byte namespace");
    // A query string naming a 10,000-byte chat (non-UTF-8 ones: see the ignored test below).
    let (status, body) =
        srv.sse_fails(&format!("/chat/Connect?chat_id={}&user_id=alice", "c".repeat(10_000)), &anon).await;
    assert_error_for(status, &body, 400, "chat.Connect.BadID", "10,000-byte chat id");
    // A WebSocket frame over the body limit ends that stream, and only that stream.
    let url = format!("/chat/Connect?chat_id={}&user_id=alice", enc(&chat));
    let mut victim = srv.ws(&url, &anon).await;
    let mut bystander = srv.ws(&url, &anon).await;
    victim.tx.send(json!({ "text": "x".repeat(100 * 1024), "client_id": "huge" })).await;
    match victim.rx.next().await {
        Got::Closed(_) | Got::Ended | Got::Failed(_) => {}
        Got::Json(frame) => assert_eq!(frame["code"], 413, "{frame}"),
    }
    srv.send_as(&anon, &chat, "alice", "still serving").await;
    assert_eq!(bystander.rx.message().await["text"], "still serving");
    bystander.tx.send(json!({ "text": "me too", "client_id": "b" })).await;
    assert_eq!(bystander.rx.message().await["text"], "me too");
    assert_eq!(texts(&srv.history_as(&anon, &chat).await), ["still serving", "me too"]);
}

/// Ids are UTF-8 (docs/API.md section 1): a stream's query parameter whose percent-decoded bytes
/// are not UTF-8 is 400 `BadID`, like the namespace header, not silently turned into another
/// id made of U+FFFD replacement characters.
#[actix_web::test]
async fn a_stream_query_id_that_is_not_utf8_is_400() {
    let srv = spawn_app().await;
    let anon = Who::default();
    let (status, body) = srv
        .post_as(&anon, "/chats/CreateChat", json!({ "id": "\u{fffd}\u{fffd}", "user_ids": ["alice", "\u{fffd}"] }))
        .await;
    assert_eq!(status, 200, "{body}");
    for url in [
        "/chat/Connect?chat_id=%FF%FE&user_id=alice",
        "/chat/Connect?chat_id=%FF%FE&user_id=%FF",
        "/chat/Connect?chat_id=x&user_id=alice&namespace=%C0%AF",
    ] {
        let (status, body) = srv.sse_fails(url, &anon).await;
        assert_error_for(status, &body, 400, "chat.Connect.BadID", url);
    }
}

/// `limits.max_text_bytes` and `limits.max_subject_bytes` count bytes, not characters: one
/// byte over is 413 on Send, SendMessage, a stream frame and Create's name and description;
/// exactly at the limit is stored.
#[actix_web::test]
async fn text_and_subject_limits_are_413() {
    let srv = spawn_app_with(|s| {
        s.limits.max_text_bytes = 100;
        s.limits.max_subject_bytes = 10;
    })
    .await;
    let anon = Who::default();
    let chat = srv.new_chat_as(&anon, &["alice"]).await;
    let send =
        |text: &str, subject: &str| json!({ "chat_id": chat, "user_id": "alice", "text": text, "subject": subject });
    let cases = [
        ("x".repeat(101), "s".to_owned()),
        ("€".repeat(34), "s".to_owned()), // 34 chars, 102 bytes
        ("x".into(), "s".repeat(11)),
        ("x".into(), "é".repeat(6)), // 6 chars, 12 bytes
    ];
    for (text, subject) in &cases {
        let (status, body) = srv.post_as(&anon, "/chat/Send", send(text, subject)).await;
        assert_error_for(status, &body, 413, "chat.Send.TooLarge", &format!("{} / {}", text.len(), subject.len()));
    }
    let (status, body) = srv.post_as(&anon, "/chat/Send", send(&"€".repeat(33), &"s".repeat(10))).await;
    assert_eq!(status, 200, "at the limit: {body}");
    let (status, body) = srv
        .post_as(&anon, "/chats/SendMessage", json!({ "chat_id": chat, "author_id": "alice", "text": "x".repeat(101) }))
        .await;
    assert_error_for(status, &body, 413, "chats.SendMessage.TooLarge", "");
    let (status, body) =
        srv.post_as(&anon, "/chat/Create", json!({ "name": "n".repeat(11), "user_ids": ["alice"] })).await;
    assert_error_for(status, &body, 413, "chat.Create.TooLarge", "name");
    let (status, body) = srv
        .post_as(&anon, "/chat/Create", json!({ "name": "n", "description": "d".repeat(101), "user_ids": ["alice"] }))
        .await;
    assert_error_for(status, &body, 413, "chat.Create.TooLarge", "description");
    // A stream frame over the limit: an error frame with its client_id; the stream stays open.
    let mut ws = srv.ws(&format!("/chat/Connect?chat_id={}&user_id=alice", enc(&chat)), &anon).await;
    ws.tx.send(json!({ "text": "x".repeat(101), "client_id": "big" })).await;
    assert_error_frame(&ws.rx.json().await, 413, "chat.Send.TooLarge", Some("big"));
    ws.tx.send(json!({ "text": "ok", "subject": "s".repeat(11), "client_id": "subj" })).await;
    assert_error_frame(&ws.rx.json().await, 413, "chat.Send.TooLarge", Some("subj"));
    ws.tx.send(json!({ "text": "ok", "client_id": "small" })).await;
    assert_eq!(ws.rx.message().await["client_id"], "small");
    assert_eq!(srv.history_as(&anon, &chat).await.len(), 2);
}

/// `limits.max_members`: New, CreateChat and Create with more distinct users are 400
/// `BadRequest` (duplicates do not count); a Join or an Invite that would pass it is refused
/// (an Invite makes a member), while inviting or joining as a member changes nothing.
#[actix_web::test]
async fn the_members_per_chat_limit_is_400() {
    let srv = spawn_app_with(|s| {
        secured(s);
        s.limits.max_members = 3;
    })
    .await;
    let acme = key(ACME_KEY, "acme");
    let four = json!(["a", "b", "c", "d"]);
    for (path, id, body) in [
        ("/chat/New", "chat.New.BadRequest", json!({ "user_ids": four })),
        ("/chats/CreateChat", "chats.CreateChat.BadRequest", json!({ "user_ids": four })),
        ("/chat/Create", "chat.Create.BadRequest", json!({ "name": "g", "user_ids": four })),
    ] {
        let (status, reply) = srv.post_as(&acme, path, body).await;
        assert_error_for(status, &reply, 400, id, path);
    }
    let (status, body) = srv.post_as(&acme, "/chat/New", json!({ "user_ids": ["a", "b", "c", "a", "b", "c"] })).await;
    assert_eq!(status, 200, "duplicates do not count: {body}");
    let (status, body) =
        srv.post_as(&acme, "/chat/Create", json!({ "name": "full", "user_ids": ["a", "b", "c"] })).await;
    assert_eq!(status, 200, "{body}");
    let group = body["group"]["id"].as_str().unwrap().to_owned();
    let mut ws = srv.ws(&format!("/chat/Join?group_id={}&user_id=d", enc(&group)), &acme).await;
    ws.rx.fails(400, "chat.Join.BadRequest").await;
    let (status, body) = srv.post_as(&acme, "/chat/Invite", json!({ "group_id": group, "user_id": "d" })).await;
    assert_error_for(status, &body, 400, "chat.Invite.BadRequest", "an invite past the limit");
    let (_, body) = srv.post_as(&acme, "/chat/List", json!({ "user_id": "d" })).await;
    assert_eq!(body, json!({ "groups": [] }));
    // A member may still be invited or join again (no change), and the server serves on.
    let (status, body) = srv.post_as(&acme, "/chat/Invite", json!({ "group_id": group, "user_id": "c" })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["group"]["user_ids"], json!(["a", "b", "c"]));
    let mut ws = srv.ws(&format!("/chat/Join?group_id={}&user_id=a", enc(&group)), &acme).await;
    srv.send_as(&acme, &group, "b", "still here").await;
    assert_eq!(ws.rx.v2_message().await["text"], "still here");
}

/// A user token creating a group is added to it; that must not take the group past
/// `limits.max_members`.
#[actix_web::test]
async fn a_token_creating_a_group_cannot_pass_the_members_limit() {
    let srv = spawn_app_with(|s| {
        secured(s);
        s.limits.max_members = 3;
    })
    .await;
    let alice = bearer(&user_token("acme", "alice"), Some("acme"));
    let (status, body) = srv.post_as(&alice, "/chat/Create", json!({ "name": "g", "user_ids": ["b", "c", "d"] })).await;
    assert_error_for(status, &body, 400, "chat.Create.BadRequest", "4 with alice");
}

/// Ids longer than `limits.max_id_bytes` (in bytes) or holding control characters are 400
/// `BadID` wherever they appear: chat, user, client and message ids, the namespace header and
/// stream parameters. 10,000-byte ids included. The server serves on.
#[actix_web::test]
async fn long_ids_and_control_characters_are_400_bad_id() {
    let srv = spawn_app().await;
    let anon = Who::default();
    let chat = srv.new_chat_as(&anon, &["alice"]).await;
    let long = "x".repeat(257);
    let huge = "y".repeat(10_000);
    let wide = "é".repeat(129); // 258 bytes
    let mut bad: Vec<String> = vec![long, huge, wide];
    for c in ['\u{0}', '\n', '\r', '\t', '\u{1b}', '\u{7f}', '\u{85}', '\u{9f}'] {
        bad.push(format!("a{c}b"));
    }
    for id in &bad {
        let what = format!("{} bytes: {:?}", id.len(), id.chars().take(4).collect::<String>());
        let requests = [
            ("/chat/New", json!({ "user_ids": ["alice", id] }), "chat.New.BadID"),
            ("/chat/Send", json!({ "chat_id": id, "user_id": "alice", "text": "t" }), "chat.Send.BadID"),
            ("/chat/Send", json!({ "chat_id": chat, "user_id": id, "text": "t" }), "chat.Send.BadID"),
            (
                "/chat/Send",
                json!({ "chat_id": chat, "user_id": "alice", "text": "t", "client_id": id }),
                "chat.Send.BadID",
            ),
            ("/chat/History", json!({ "chat_id": id }), "chat.History.BadID"),
            ("/chats/CreateChat", json!({ "id": id, "user_ids": ["alice", "bob"] }), "chats.CreateChat.BadID"),
            (
                "/chats/SendMessage",
                json!({ "chat_id": chat, "author_id": "alice", "text": "t", "id": id }),
                "chats.SendMessage.BadID",
            ),
            ("/chat/Create", json!({ "name": "g", "user_ids": [id] }), "chat.Create.BadID"),
            ("/chat/Invite", json!({ "group_id": chat, "user_id": id }), "chat.Invite.BadID"),
            ("/chat/List", json!({ "user_id": id }), "chat.List.BadID"),
            ("/chat/Delete", json!({ "group_id": id }), "chat.Delete.BadID"),
        ];
        for (path, body, err) in requests {
            let (status, reply) = srv.post_as(&anon, path, body).await;
            assert_error_for(status, &reply, 400, err, &format!("{path} {what}"));
        }
        let url = format!("/chat/Connect?chat_id={}&user_id=alice", enc(id));
        let mut ws = srv.ws(&url, &anon).await;
        ws.rx.fails(400, "chat.Connect.BadID").await;
        let url = format!("/chat/Connect?chat_id={}&user_id=alice&namespace={}", enc(&chat), enc(id));
        let mut ws = srv.ws(&url, &anon).await;
        ws.rx.fails(400, "chat.Connect.BadID").await;
        // A stream frame's client_id.
        let mut ws = srv.ws(&format!("/chat/Connect?chat_id={}&user_id=alice", enc(&chat)), &anon).await;
        ws.tx.send(json!({ "text": "t", "client_id": id })).await;
        let frame = ws.rx.json().await;
        assert_eq!(frame["id"], "chat.Send.BadID", "{what}: {frame}");
        assert_eq!(frame["code"], 400, "{frame}");
    }
    // The namespace header: too long, or not UTF-8.
    for ns in ["n".repeat(257).into_bytes(), b"ab\xffcd".to_vec()] {
        let (status, body) =
            srv.call_bytes_header("/chat/New", "micro-namespace", &ns, json!({ "user_ids": ["alice"] })).await;
        assert_error_for(status, &body, 400, "chat.New.BadID", "namespace header");
    }
    // At the limit is fine: 256 bytes, made of 2-byte characters.
    let at_limit = "é".repeat(128);
    let (status, body) =
        srv.post_as(&anon, "/chats/CreateChat", json!({ "id": at_limit, "user_ids": ["alice", at_limit] })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["chat"]["id"], at_limit.as_str());
    let m = srv.send_as(&anon, &at_limit, &at_limit, "at the limit").await;
    assert_eq!(m["user_id"], at_limit.as_str());
    // Nothing bad got in, and the server serves on.
    assert_eq!(srv.history_as(&anon, &chat).await.len(), 0);
    srv.send_as(&anon, &chat, "alice", "fine").await;
}

/// Ids that look like paths, devices, file names, or odd Unicode are data: each round-trips
/// exactly as a chat id, user id, client id and namespace, lookalikes stay distinct chats, and
/// nothing is ever written outside the data dir or under a name taken from a client string.
#[actix_web::test]
async fn hostile_ids_are_stored_as_data_and_never_touch_a_path() {
    let srv = spawn_app_nested(|_| {}).await;
    let escape = format!("chatd-escape-{}", uuid::Uuid::new_v4());
    let ids: Vec<String> = vec![
        "../../x".into(),
        format!("../../../../../../../../tmp/{escape}"),
        "/".into(),
        "/etc/passwd".into(),
        ".".into(),
        "..".into(),
        "a/b/c".into(),
        "..\\..\\x".into(),
        "%2e%2e%2fx".into(),
        "$HOME".into(),
        "~".into(),
        "CON".into(),
        "nul".into(),
        "00000000000000000001.wal".into(),
        "chat-0000000000000001.snap".into(),
        "catalog.snap".into(),
        " ".into(),
        " padded ".into(),
        "*?<>|\"'`;&".into(),
        "😀👩‍👩‍👧".into(),
        "e\u{301}".into(),
        "é".into(),
        "\u{202e}gnp.exe".into(),
        "\u{feff}bom".into(),
        "\u{200b}".into(),
        "Ω中文العربية".into(),
        "\u{10ffff}\u{fffd}".into(),
    ];
    let anon = Who::default();
    for id in &ids {
        let (status, body) =
            srv.post_as(&anon, "/chats/CreateChat", json!({ "id": id, "user_ids": [id, "other"] })).await;
        assert_eq!(status, 200, "{id:?}: {body}");
        assert_eq!(body["chat"]["id"], id.as_str(), "{id:?}");
        let (status, body) = srv
            .post_as(
                &anon,
                "/chat/Send",
                json!({ "chat_id": id, "user_id": id, "client_id": id, "subject": id, "text": id }),
            )
            .await;
        assert_eq!(status, 200, "{id:?}: {body}");
        // The same id as a namespace is another namespace, where this chat does not exist.
        let url = format!("/chat/Connect?chat_id={}&user_id={}&namespace={}", enc(id), enc(id), enc(id));
        let mut ws = srv.ws(&url, &anon).await;
        ws.rx.fails(404, "chat.Connect.NotFound").await;
    }
    // Every chat holds exactly its own message, with every field as sent.
    for id in &ids {
        let history = srv.history_as(&anon, id).await;
        assert_eq!(history.len(), 1, "{id:?}: {history:?}");
        for field in ["chat_id", "user_id", "client_id", "subject", "text"] {
            assert_eq!(history[0][field], id.as_str(), "{id:?} {field}");
        }
    }
    // "é" and "e\u{301}" look alike but are two chats; so are "/" and "//".
    let (status, body) = srv.post_as(&anon, "/chat/History", json!({ "chat_id": "//" })).await;
    assert_error_for(status, &body, 404, "chat.History.NotFound", "//");
    // Namespaces named like paths, over a stream and a header: isolated from each other.
    for ns in ["../../x", "..", "a/b", "micro/..", "😀"] {
        let url = format!("/chat/Connect?chat_id=../../x&user_id=../../x&namespace={}", enc(ns));
        let mut ws = srv.ws(&url, &anon).await;
        ws.rx.fails(404, "chat.Connect.NotFound").await;
        let (status, body) =
            srv.call_bytes_header("/chat/New", "micro-namespace", ns.as_bytes(), json!({ "user_ids": [ns] })).await;
        assert_eq!(status, 200, "namespace {ns:?}: {body}");
        let chat = body["chat_id"].as_str().unwrap().to_owned();
        let url = format!("/chat/Connect?chat_id={}&user_id={}&namespace={}", enc(&chat), enc(ns), enc(ns));
        let mut ws = srv.ws(&url, &anon).await;
        ws.tx.send(json!({ "text": ns, "client_id": ns })).await;
        assert_eq!(ws.rx.message().await["text"], ns);
    }
    // The NUL and the 10,000 bytes: refused.
    let slashes = "/".repeat(10_000);
    for id in ["\u{0}", "../\u{0}", slashes.as_str()] {
        let (status, body) = srv.post_as(&anon, "/chats/CreateChat", json!({ "id": id, "user_ids": ["a", "b"] })).await;
        assert_error_for(status, &body, 400, "chats.CreateChat.BadID", "hostile");
    }

    // Survives a restart, and every file is where it belongs.
    let root = srv.dir.path().to_path_buf();
    let srv = srv.restart().await;
    for id in &ids {
        assert_eq!(texts(&srv.history_as(&anon, id).await), [id.as_str()]);
    }
    srv.send_as(&anon, "../../x", "../../x", "after restart").await;
    let files = files_under(&root);
    assert!(!files.is_empty());
    for file in &files {
        let rel = file.strip_prefix(&root).unwrap();
        let rel = rel.to_string_lossy();
        let ok = rel.strip_prefix("outer/inner/data/wal/").is_some_and(|name| {
            name.len() == 24 && name.ends_with(".wal") && name[..20].bytes().all(|b| b.is_ascii_digit())
        }) || rel.strip_prefix("outer/inner/data/snap/").is_some_and(|name| {
            name == "catalog.snap"
                || [".meta", ".idx"].iter().any(|ext| {
                    name.starts_with("chat-")
                        && name.ends_with(ext)
                        && name["chat-".len()..name.len() - ext.len()].bytes().all(|b| b.is_ascii_hexdigit())
                })
        });
        assert!(ok, "a file outside the store's layout: {rel:?}");
    }
    assert!(!Path::new("/tmp").join(&escape).exists());
    srv.stop().await;
}

// ======== captured logs ========

/// Captured log output.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

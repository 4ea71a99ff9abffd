//! The chat v2 wire shapes (docs/API.md section 10), one test per rule, at the HTTP level: what the
//! published `m3o` client's ChatService reads. Against the real server, in-process on port 0.

mod helpers;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

use chatd::config::ApiKey;
use helpers::{
    bearer, enc, key, spawn_app, spawn_app_with, unix_secs, user_token, TestApp, Who, ACME_KEY, ACME_SECRET,
};

/// `path` with `body` as `who`, expecting 200: the response body.
async fn ok(app: &TestApp, who: &Who, path: &str, body: Value) -> Value {
    let (status, reply) = app.post_as(who, path, body.clone()).await;
    assert_eq!(status, 200, "{path} {body}: {reply}");
    reply
}

/// Asserts a v2 message: exactly its fields, each of the type the client reads.
#[track_caller]
fn assert_v2_message(m: &Value) {
    let mut keys: Vec<&str> =
        m.as_object().unwrap_or_else(|| panic!("not an object: {m}")).keys().map(|k| k.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["client", "group_id", "id", "sent_at", "seq", "subject", "text", "user_id"], "{m}");
    for field in ["client", "group_id", "id", "subject", "text", "user_id"] {
        assert!(m[field].is_string(), "{field} of {m}");
    }
    assert!(m["seq"].is_u64(), "seq of {m}");
    let sent = unix_secs(&m["sent_at"]);
    assert!((chatd::model::now_secs() - sent).abs() < 60, "sent_at {sent} of {m}");
}

fn anon() -> Who {
    Who::default()
}

/// A Send or History naming `group_id` answers v2 messages; naming `chat_id`, v1 ones.
#[actix_web::test]
async fn send_and_history_answer_the_shape_of_the_id_they_name() {
    let app = spawn_app().await;
    let group = ok(&app, &anon(), "/chat/Create", json!({ "name": "g", "user_ids": ["a", "b"] })).await;
    let id = group["group"]["id"].as_str().expect("group id").to_owned();
    let v2 =
        ok(&app, &anon(), "/v1/chat/Send", json!({ "group_id": id, "user_id": "a", "text": "hi", "client": "k1" }))
            .await;
    assert_v2_message(&v2["message"]);
    assert_eq!((v2["message"]["client"].as_str(), v2["message"]["group_id"].as_str()), (Some("k1"), Some(id.as_str())));
    let v1 = ok(&app, &anon(), "/chat/Send", json!({ "chat_id": id, "user_id": "b", "text": "hey" })).await;
    assert_eq!(v1["message"]["chat_id"], id.as_str());
    assert!(v1["message"]["sent_at"].is_i64() && v1["message"]["client_id"].is_string(), "{v1}");

    let history = ok(&app, &anon(), "/v1/chat/History", json!({ "group_id": id })).await;
    let messages = history["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 2);
    messages.iter().for_each(assert_v2_message);
    let history = ok(&app, &anon(), "/chat/History", json!({ "chat_id": id })).await;
    assert!(history["messages"][0]["chat_id"].is_string() && history["messages"][0]["sent_at"].is_i64());
    // A retry through v2 names the same message.
    let again =
        ok(&app, &anon(), "/chat/Send", json!({ "group_id": id, "user_id": "a", "text": "x", "client": "k1" })).await;
    assert_eq!(again["message"]["seq"], 1);
}

/// Every group answer has `created_at` as an RFC 3339 UTC string.
#[actix_web::test]
async fn a_groups_created_at_is_rfc_3339() {
    let app = spawn_app().await;
    let before = chatd::model::now_secs();
    let group = ok(&app, &anon(), "/chat/Create", json!({ "name": "g" })).await;
    let created = unix_secs(&group["group"]["created_at"]);
    assert!((before - 1..=before + 2).contains(&created), "{group}");
}

/// Invite makes the user a member at once, private group or not: they appear in `user_ids`, may
/// send, and List shows them the group.
#[actix_web::test]
async fn invite_makes_a_member() {
    let app = spawn_app().await;
    for private in [false, true] {
        let group =
            ok(&app, &anon(), "/chat/Create", json!({ "name": "g", "private": private, "user_ids": ["a"] })).await;
        let id = group["group"]["id"].as_str().expect("group id").to_owned();
        let invited = ok(&app, &anon(), "/chat/Invite", json!({ "group_id": id, "user_id": "b" })).await;
        assert_eq!(invited["group"]["user_ids"], json!(["a", "b"]), "private {private}");
        ok(&app, &anon(), "/chat/Send", json!({ "group_id": id, "user_id": "b", "text": "I'm in" })).await;
        let list = ok(&app, &anon(), "/chat/List", json!({ "user_id": "b" })).await;
        let ids: Vec<&str> =
            list["groups"].as_array().expect("groups").iter().filter_map(|g| g["id"].as_str()).collect();
        assert!(ids.contains(&id.as_str()), "private {private}: {list}");
    }
}

/// Join adds a user to a public group and streams `{"message": ...}` frames in the v2 shape,
/// without the joiner's own messages; Connect streams bare messages and the sender's echo.
#[actix_web::test]
async fn join_wraps_v2_messages_and_skips_the_joiners_own() {
    let app = spawn_app().await;
    let group = ok(&app, &anon(), "/chat/Create", json!({ "name": "g", "user_ids": ["a"] })).await;
    let id = group["group"]["id"].as_str().expect("group id").to_owned();
    let mut joined = app.ws(&format!("/v1/chat/Join?group_id={}&user_id=b", enc(&id)), &anon()).await;
    let mut connected = app.ws(&format!("/chat/Connect?chat_id={}&user_id=b", enc(&id)), &anon()).await;
    let members = ok(&app, &anon(), "/chat/Leave", json!({ "group_id": id, "user_id": "nobody" })).await;
    assert_eq!(members["group"]["user_ids"], json!(["a", "b"]), "Join made b a member");

    ok(&app, &anon(), "/chat/Send", json!({ "group_id": id, "user_id": "b", "text": "from b" })).await;
    ok(&app, &anon(), "/chat/Send", json!({ "group_id": id, "user_id": "a", "text": "from a" })).await;
    let frame = joined.rx.json().await;
    let keys: Vec<&String> = frame.as_object().expect("an object").keys().collect();
    assert_eq!(keys, ["message"], "{frame}");
    assert_v2_message(&frame["message"]);
    assert_eq!(frame["message"]["text"], "from a", "b's own message is not on b's Join stream");
    joined.rx.assert_silent(Duration::from_millis(300)).await;

    let texts: Vec<Value> = connected.rx.messages(2).await.iter().map(|m| m["text"].clone()).collect();
    assert_eq!(texts, [json!("from b"), json!("from a")], "Connect echoes the sender and stays bare");
}

/// A private group streams only to its members: a non-member's Join is 403; invited, they join.
#[actix_web::test]
async fn a_private_group_streams_only_to_members() {
    let app = spawn_app().await;
    let group = ok(&app, &anon(), "/chat/Create", json!({ "name": "g", "private": true, "user_ids": ["a"] })).await;
    let id = group["group"]["id"].as_str().expect("group id").to_owned();
    let url = format!("/chat/Join?group_id={}&user_id=b", enc(&id));
    app.ws(&url, &anon()).await.rx.fails(403, "chat.Join.Forbidden").await;
    ok(&app, &anon(), "/chat/Invite", json!({ "group_id": id, "user_id": "b" })).await;
    let mut joined = app.ws(&url, &anon()).await;
    ok(&app, &anon(), "/chat/Send", json!({ "group_id": id, "user_id": "a", "text": "welcome" })).await;
    assert_eq!(joined.rx.json().await["message"]["text"], "welcome");
}

const GROUP_KEYS: [&str; 6] = ["created_at", "description", "id", "name", "private", "user_ids"];

/// Leave, Kick and Delete answer `{"group"}`: as it stands after the change, and for Delete as it was.
#[actix_web::test]
async fn leave_kick_and_delete_answer_the_group() {
    let app = spawn_app().await;
    let group = ok(&app, &anon(), "/chat/Create", json!({ "name": "g", "user_ids": ["a", "b", "c"] })).await;
    let id = group["group"]["id"].as_str().expect("group id").to_owned();
    for (path, user, left) in [("/chat/Leave", "b", json!(["a", "c"])), ("/chat/Kick", "c", json!(["a"]))] {
        let answer = ok(&app, &anon(), path, json!({ "group_id": id, "user_id": user })).await;
        let keys: Vec<&String> = answer["group"].as_object().expect("a group").keys().collect();
        assert_eq!(keys, GROUP_KEYS, "{answer}");
        assert_eq!(answer["group"]["user_ids"], left, "{path}");
    }
    let deleted = ok(&app, &anon(), "/chat/Delete", json!({ "group_id": id })).await;
    assert_eq!((deleted["group"]["id"].as_str(), &deleted["group"]["user_ids"]), (Some(id.as_str()), &json!(["a"])));
}

fn keyed(s: &mut chatd::config::Settings) {
    s.auth.api_keys = vec![ApiKey { key: ACME_KEY.into(), namespaces: vec!["acme".into()] }];
    s.auth.user_token_secrets = BTreeMap::from([("acme".to_owned(), ACME_SECRET.to_owned())]);
}

/// `List {}`: every group of the namespace for an API key (private ones included, unnamed chats
/// not); the token's user's chats for a user token, where a private group shows only to members.
/// `List {user_id}`: every chat with that member, unnamed ones included.
#[actix_web::test]
async fn list_with_and_without_a_user() {
    let app = spawn_app_with(keyed).await;
    let backend = key(ACME_KEY, "acme");
    let create = |body: Value| {
        let (app, backend) = (&app, &backend);
        async move { ok(app, backend, "/chat/Create", body).await["group"]["id"].as_str().expect("id").to_owned() }
    };
    let public = create(json!({ "name": "public", "user_ids": ["a"] })).await;
    let private = create(json!({ "name": "private", "private": true, "user_ids": ["a"] })).await;
    let plain = app.new_chat_as(&backend, &["a", "b"]).await;
    let other_ns = spawn_app().await.new_chat(&["a"]).await;
    let ids = |list: &Value| {
        let mut ids: Vec<String> = list["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .map(|g| g["id"].as_str().expect("id").to_owned())
            .collect();
        ids.sort();
        ids
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(ids(&ok(&app, &backend, "/chat/List", json!({})).await), sorted(vec![public.clone(), private.clone()]));
    let a = ok(&app, &backend, "/chat/List", json!({ "user_id": "a" })).await;
    assert_eq!(ids(&a), sorted(vec![public.clone(), private.clone(), plain.clone()]));
    assert!(!ids(&a).contains(&other_ns));
    let as_b = bearer(&user_token("acme", "b"), Some("acme"));
    assert_eq!(ids(&ok(&app, &as_b, "/chat/List", json!({})).await), vec![plain.clone()], "b's own chats only");
    let as_a = bearer(&user_token("acme", "a"), Some("acme"));
    assert_eq!(ids(&ok(&app, &as_a, "/chat/List", json!({})).await), ids(&a), "a member sees the private group");
}

/// With no `micro-namespace` header, an API key bound to exactly one namespace acts in it.
#[actix_web::test]
async fn a_key_bound_to_one_namespace_names_it() {
    let app = spawn_app_with(keyed).await;
    let no_header = bearer(ACME_KEY, None);
    let chat = app.new_chat_as(&no_header, &["a", "b"]).await;
    ok(&app, &no_header, "/chat/Send", json!({ "chat_id": chat, "user_id": "a", "text": "into acme" })).await;
    let history = app.history_as(&key(ACME_KEY, "acme"), &chat).await;
    assert_eq!(history.len(), 1, "the message landed in acme: {history:?}");
    let (status, _) = app.post_as(&key(ACME_KEY, "micro"), "/chat/History", json!({ "chat_id": chat })).await;
    assert_eq!(status, 403, "naming another namespace is still refused");
    // Streams too: the m3o client sends only the Authorization header.
    let url = format!("/chat/Connect?chat_id={}&user_id=a", enc(&chat));
    let mut ws = app.ws(&url, &no_header).await;
    ok(&app, &no_header, "/chat/Send", json!({ "chat_id": chat, "user_id": "b", "text": "live" })).await;
    assert_eq!(ws.rx.message().await["text"], "live");
}

/// Groups and v1 chats are one kind of chat: an Invite to a chat made by New changes which chat
/// New answers for the old member set, and the v2 endpoints work on it.
#[actix_web::test]
async fn new_chats_and_groups_are_one_kind() {
    let app = spawn_app().await;
    let chat = app.new_chat(&["a", "b"]).await;
    let invited = ok(&app, &anon(), "/chat/Invite", json!({ "group_id": chat, "user_id": "c" })).await;
    assert_eq!(invited["group"]["name"], "", "a chat made by New has no name");
    assert_eq!(app.new_chat(&["a", "b", "c"]).await, chat, "New follows the current members");
    assert_ne!(app.new_chat(&["a", "b"]).await, chat);
    let sent = ok(&app, &anon(), "/chat/Send", json!({ "group_id": chat, "user_id": "c", "text": "hi" })).await;
    assert_v2_message(&sent["message"]);
}

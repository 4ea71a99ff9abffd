//! Groups: the m3o chat v2 endpoints on the chat service (Create, Invite, Join, Leave, Kick,
//! List, Delete), membership taking effect at once (open streams included), and deletion
//! erasing a chat's messages from disk. Against the real server started in-process on port 0
//! with a temporary data dir.
//!
//! The server, its clients and the fixture key and token secret are the harness's
//! (`tests/helpers`). Every request, frame and event has a timeout, so a bug fails a test
//! instead of hanging it.

mod helpers;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use chatd::config::{ApiKey, Membership, Settings};
use helpers::{
    assert_error_for, assert_group_shape, assert_message_shape, assert_v2_message_shape, bearer, enc, grep, group_of,
    key, now_secs, seqs, snapshot_files, spawn_app_with, texts, unix_secs, user_token, TestApp, Who, ACME_KEY,
    ACME_SECRET, WAIT,
};

fn secured(s: &mut Settings) {
    s.auth.api_keys = vec![ApiKey { key: ACME_KEY.into(), namespaces: vec!["acme".into()] }];
    s.auth.user_token_secrets = BTreeMap::from([("acme".to_owned(), ACME_SECRET.to_owned())]);
}

/// acme's API key.
fn backend() -> Who {
    key(ACME_KEY, "acme")
}

/// A user token for `sub` in acme.
fn user(sub: &str) -> Who {
    bearer(&user_token("acme", sub), Some("acme"))
}

// ---- 1. Create ----

/// Create answers `{"group"}` with exactly id, name, description, created_at, user_ids (sorted,
/// de-duplicated) and private, on all three paths; every Create is a new group, even with the
/// same members; a user token creating a group is in it.
#[actix_web::test]
async fn create_returns_a_group_with_exactly_its_fields() {
    let srv = spawn_app_with(secured).await;
    let before = now_secs();
    let mut ids = BTreeSet::new();
    for path in ["/chat/Create", "/chat/Chat/Create", "/v1/chat/Create"] {
        let (status, body) = srv
            .post_as(
                &backend(),
                path,
                json!({
                    "name": "Team",
                    "description": "All of us",
                    "user_ids": ["carol", "alice", "alice"],
                    "unknown_field": 1
                }),
            )
            .await;
        assert_eq!(status, 200, "{path}: {body}");
        let keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["group"], "{body}");
        let g = group_of(&body);
        assert_eq!(g["name"], "Team");
        assert_eq!(g["description"], "All of us");
        assert_eq!(g["user_ids"], json!(["alice", "carol"]));
        assert_eq!(g["private"], false);
        let created = unix_secs(&g["created_at"]);
        assert!((before - 1..=now_secs() + 1).contains(&created), "created_at {created}");
        assert!(ids.insert(g["id"].as_str().unwrap().to_owned()), "{body}");
    }
    let (status, body) = srv
        .post_as(&backend(), "/chat/Create", json!({ "name": "Secret", "user_ids": ["alice"], "private": true }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(group_of(&body)["private"], true);
    // A user token is always a member of what it creates.
    for (body, want) in
        [(json!({ "name": "mine", "user_ids": ["bob"] }), json!(["alice", "bob"])), (json!({}), json!(["alice"]))]
    {
        let (status, reply) = srv.post_as(&user("alice"), "/chat/Create", body).await;
        assert_eq!(status, 200, "{reply}");
        assert_eq!(group_of(&reply)["user_ids"], want);
        assert_eq!(group_of(&reply)["name"], reply["group"]["name"]);
    }
    // Wrong types are 400.
    for body in [
        json!({ "name": "x", "user_ids": ["a"], "private": "yes" }),
        json!({ "name": "x", "user_ids": "a" }),
        json!({ "name": 5 }),
    ] {
        let (status, reply) = srv.post_as(&backend(), "/chat/Create", body.clone()).await;
        assert_error_for(status, &reply, 400, "chat.Create.BadRequest", &body.to_string());
    }
}

/// `group_id` is accepted wherever `chat_id` is and `client` wherever `client_id` is: Send
/// (retry-safe by `client`), History, SendMessage, ListMessages, the group endpoints, Connect
/// by query or first frame, and stream frames. Plain chats made with New take them too. A
/// Send or History naming `group_id` answers chat v2 messages (`client`, `group_id`, RFC 3339
/// `sent_at`); naming `chat_id`, the same messages in the v1 shape; Connect streams v1.
#[actix_web::test]
async fn group_id_and_client_are_accepted_wherever_chat_id_and_client_id_are() {
    let srv = spawn_app_with(secured).await;
    let group = srv.create_group(&backend(), json!({ "name": "g", "user_ids": ["alice", "bob"] })).await;
    let plain = srv.new_chat_as(&backend(), &["alice", "bob"]).await;
    for id in [&group, &plain] {
        let mut by_query = srv.ws(&format!("/chat/Connect?group_id={}&user_id=bob", enc(id)), &backend()).await;
        let mut by_frame = srv.ws("/chat/Connect", &Who::default()).await;
        by_frame.tx.send(json!({ "group_id": id, "token": user_token("acme", "alice") })).await;
        let mut sse = srv.sse(&format!("/chat/Connect?group_id={}", enc(id)), &backend()).await;
        let send = json!({ "group_id": id, "user_id": "alice", "text": "one", "client": "c-1" });
        let (status, first) = srv.post_as(&backend(), "/chat/Send", send.clone()).await;
        assert_eq!(status, 200, "{first}");
        assert_v2_message_shape(&first["message"]);
        assert_eq!(first["message"]["client"], "c-1");
        assert_eq!(first["message"]["group_id"], id.as_str());
        let (status, again) = srv.post_as(&backend(), "/chat/Send", send).await;
        assert_eq!(status, 200, "{again}");
        assert_eq!(again["message"], first["message"], "a retry by `client`");
        // The same retry naming chat_id and client_id: the stored message, in the v1 shape.
        let v1_send = json!({ "chat_id": id, "user_id": "alice", "text": "one", "client_id": "c-1" });
        let (status, v1) = srv.post_as(&backend(), "/chat/Send", v1_send).await;
        assert_eq!(status, 200, "{v1}");
        assert_message_shape(&v1["message"]);
        assert_eq!((&v1["message"]["chat_id"], &v1["message"]["client_id"]), (&json!(id), &json!("c-1")));
        assert_eq!((&v1["message"]["id"], &v1["message"]["seq"]), (&first["message"]["id"], &first["message"]["seq"]));
        assert_eq!(unix_secs(&first["message"]["sent_at"]), v1["message"]["sent_at"].as_i64().expect("sent_at"));
        let (status, body) = srv
            .post_as(&backend(), "/chats/SendMessage", json!({ "group_id": id, "author_id": "bob", "text": "two" }))
            .await;
        assert_eq!(status, 200, "{body}");
        by_query.tx.send(json!({ "text": "three", "client": "c-3" })).await;
        for rx in [&mut by_query.rx, &mut by_frame.rx] {
            let got: Vec<Value> = vec![rx.message().await, rx.message().await, rx.message().await];
            got.iter().for_each(assert_message_shape);
            assert_eq!(texts(&got), ["one", "two", "three"]);
            assert_eq!(got[2]["client_id"], "c-3");
        }
        let (_, got) = sse.messages(3).await;
        assert_eq!(texts(&got), ["one", "two", "three"]);
        let (status, body) = srv.post_as(&backend(), "/chat/History", json!({ "group_id": id })).await;
        assert_eq!(status, 200, "{body}");
        let v2 = body["messages"].as_array().unwrap();
        v2.iter().for_each(assert_v2_message_shape);
        assert_eq!(texts(v2), ["one", "two", "three"]);
        assert_eq!(
            (&v2[0]["client"], &v2[2]["client"], &v2[2]["group_id"]),
            (&json!("c-1"), &json!("c-3"), &json!(id))
        );
        let (status, body) = srv.post_as(&backend(), "/chat/History", json!({ "chat_id": id })).await;
        assert_eq!(status, 200, "{body}");
        let v1 = body["messages"].as_array().unwrap();
        v1.iter().for_each(assert_message_shape);
        assert_eq!(texts(v1), ["one", "two", "three"]);
        assert_eq!(v1.iter().map(|m| &m["id"]).collect::<Vec<_>>(), v2.iter().map(|m| &m["id"]).collect::<Vec<_>>());
        assert_eq!(v1[2]["client_id"], "c-3");
        let (status, body) =
            srv.post_as(&backend(), "/chats/ListMessages", json!({ "group_id": id, "order": "asc" })).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["messages"].as_array().unwrap().len(), 3);
        // The group endpoints take chat_id as well as group_id.
        let (status, body) = srv.post_as(&backend(), "/chat/Kick", json!({ "chat_id": id, "user_id": "bob" })).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(group_of(&body)["user_ids"], json!(["alice"]));
        by_query.rx.fails(403, "chat.Connect.Forbidden").await;
    }
}

// ---- 2. Join ----

/// Join adds the user before the stream opens (a send right after the handshake works), then
/// streams the group's messages as chat v2 Join frames (`{"message": V2Message}`, the message as
/// a v2 Send answers it): everyone else's, never the joining user's own, whether sent by Send or
/// as a frame on the Join stream (those still post: the others and History get them). `since`
/// replays the same way. It works over SSE and on all three paths; joining twice changes
/// nothing. Connect beside it keeps bare v1 messages, the sender's own included.
#[actix_web::test]
async fn join_adds_the_user_then_streams_everyone_elses_messages() {
    let srv = spawn_app_with(secured).await;
    let group = srv.create_group(&backend(), json!({ "name": "open", "user_ids": ["alice"] })).await;
    srv.send_as(&backend(), &group, "alice", "before bob").await;
    let mut alice = srv.ws(&format!("/chat/Join?group_id={}", enc(&group)), &user("alice")).await;
    let mut watcher = srv.ws(&format!("/chat/Connect?group_id={}", enc(&group)), &backend()).await;

    // bob joins with his token, naming nobody: the token's user joins.
    let mut bob = srv.ws(&format!("/chat/Join?group_id={}", enc(&group)), &user("bob")).await;
    let (status, body) =
        srv.post_as(&user("bob"), "/chat/Send", json!({ "group_id": group, "text": "bob here" })).await;
    assert_eq!(status, 200, "a member at once: {body}");
    assert_v2_message_shape(&body["message"]);
    let m = alice.rx.v2_message().await;
    assert_eq!((&m["text"], &m["user_id"], &m["group_id"]), (&json!("bob here"), &json!("bob"), &json!(group)));
    assert_eq!(m, body["message"], "a Join frame carries the message as Send answered it");
    let w = watcher.rx.message().await;
    assert_message_shape(&w);
    assert_eq!((&w["text"], &w["seq"]), (&json!("bob here"), &body["message"]["seq"]));
    srv.send_as(&backend(), &group, "alice", "hi bob").await;
    // bob's own message is not delivered to him: his first frame is alice's.
    let m = bob.rx.v2_message().await;
    assert_eq!((&m["text"], &m["user_id"]), (&json!("hi bob"), &json!("alice")));
    assert_eq!(watcher.rx.message().await["text"], "hi bob");
    // A frame on bob's Join stream posts as bob: alice (whose own "hi bob" she did not get) and
    // the watcher get it, bob does not (his next frame is the next message from someone else).
    bob.tx.send(json!({ "text": "framed", "client_id": "f" })).await;
    let m = alice.rx.v2_message().await;
    assert_eq!((&m["text"], &m["user_id"], &m["client"]), (&json!("framed"), &json!("bob"), &json!("f")));
    let w = watcher.rx.message().await;
    assert_eq!((&w["text"], &w["user_id"], &w["client_id"]), (&json!("framed"), &json!("bob"), &json!("f")));
    srv.send_as(&backend(), &group, "alice", "after framed").await;
    assert_eq!(bob.rx.v2_message().await["text"], "after framed");
    assert_eq!(watcher.rx.message().await["text"], "after framed");
    assert_eq!(srv.list_groups(&backend(), "bob").await, [group.as_str()]);
    let all = ["before bob", "bob here", "hi bob", "framed", "after framed"];
    assert_eq!(texts(&srv.history_as(&backend(), &group).await), all);

    // Joining again, on the other paths, with since: a replay of the others' messages only.
    for path in ["/chat/Chat/Join", "/v1/chat/Join"] {
        let mut again = srv.ws(&format!("{path}?group_id={}&user_id=bob&since=0", enc(&group)), &backend()).await;
        let replay = again.rx.v2_messages(3).await;
        assert_eq!(texts(&replay), ["before bob", "hi bob", "after framed"], "{path}");
        assert_eq!(seqs(&replay), [1, 3, 5], "{path}");
    }
    // Connect replays everything, bob's own included, as bare v1 messages.
    let mut connect = srv.ws(&format!("/chat/Connect?group_id={}&user_id=bob&since=0", enc(&group)), &backend()).await;
    let replay = connect.rx.messages(5).await;
    replay.iter().for_each(assert_message_shape);
    assert_eq!(texts(&replay), all);
    // carol joins over SSE; still one bob.
    let mut carol = srv.sse(&format!("/chat/Join?group_id={}&user_id=carol", enc(&group)), &backend()).await;
    let g = srv.group(&backend(), &group).await;
    assert_eq!(g["user_ids"], json!(["alice", "bob", "carol"]));
    srv.send_as(&backend(), &group, "carol", "carol here").await;
    srv.send_as(&backend(), &group, "alice", "hi carol").await;
    let m = carol.v2_message().await;
    assert_eq!((&m["text"], &m["seq"]), (&json!("hi carol"), &json!(7)), "carol's own message is not hers to get");
    assert_eq!(texts(&bob.rx.v2_messages(2).await), ["carol here", "hi carol"]);

    // Errors, as Connect's: one error frame, then close with 4000 + code.
    let cases = [
        ("/chat/Join?group_id=nope&user_id=bob".to_owned(), 404, "chat.Join.NotFound"),
        (format!("/chat/Join?group_id={}", enc(&group)), 400, "chat.Join.MissingUserID"),
        ("/chat/Join?user_id=bob".to_owned(), 400, "chat.Join.MissingChatID"),
    ];
    for (url, code, id) in cases {
        if url.contains("group_id") {
            let mut ws = srv.ws(&url, &backend()).await;
            ws.rx.fails(code, id).await;
        }
        let (status, body) = srv.sse_fails(&url, &backend()).await;
        assert_error_for(status, &body, code, id, &url);
    }
}

/// A private group can be joined only by invited users, whoever asks (keys included); a user
/// token must be a member to invite; an invitation makes exactly that user a member at once
/// (in `user_ids`, able to send and Join), and inviting a member changes nothing.
#[actix_web::test]
async fn private_groups_need_an_invite() {
    let srv = spawn_app_with(secured).await;
    let group = srv.create_group(&user("alice"), json!({ "name": "inner circle", "private": true })).await;
    let join = |who: &str| format!("/chat/Join?group_id={}&user_id={who}", enc(&group));
    let mut ws = srv.ws(&join("bob"), &user("bob")).await;
    ws.rx.fails(403, "chat.Join.Forbidden").await;
    let (status, body) = srv.sse_fails(&join("bob"), &user("bob")).await;
    assert_error_for(status, &body, 403, "chat.Join.Forbidden", "sse");
    let mut ws = srv.ws(&join("dave"), &backend()).await;
    ws.rx.fails(403, "chat.Join.Forbidden").await;
    let (status, body) = srv.post_as(&user("bob"), "/chat/Send", json!({ "group_id": group, "text": "x" })).await;
    assert_error_for(status, &body, 403, "chat.Send.Forbidden", "bob, uninvited");
    assert!(srv.list_groups(&backend(), "bob").await.is_empty());
    assert_eq!(srv.group(&backend(), &group).await["user_ids"], json!(["alice"]));

    // Only a member may invite.
    let (status, body) =
        srv.post_as(&user("carol"), "/chat/Invite", json!({ "group_id": group, "user_id": "carol" })).await;
    assert_error_for(status, &body, 403, "chat.Invite.Forbidden", "carol invites herself");
    let (status, body) =
        srv.post_as(&user("alice"), "/chat/Invite", json!({ "group_id": group, "user_id": "bob" })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(group_of(&body)["id"], group.as_str());
    assert_eq!(group_of(&body)["private"], true);
    assert_eq!(group_of(&body)["user_ids"], json!(["alice", "bob"]), "a member at once");

    // bob is in now, before joining: he sends, then joins and gets alice's messages; carol is
    // still not in.
    let (status, body) = srv.post_as(&user("bob"), "/chat/Send", json!({ "group_id": group, "text": "thanks" })).await;
    assert_eq!(status, 200, "an invited user sends: {body}");
    assert_eq!(srv.list_groups(&backend(), "bob").await, [group.as_str()]);
    let mut ws = srv.ws(&join("bob"), &user("bob")).await;
    srv.send_as(&backend(), &group, "alice", "welcome").await;
    assert_eq!(ws.rx.v2_message().await["text"], "welcome");
    assert_eq!(srv.group(&backend(), &group).await["user_ids"], json!(["alice", "bob"]));
    let mut ws = srv.ws(&join("carol"), &user("carol")).await;
    ws.rx.fails(403, "chat.Join.Forbidden").await;
    // A key invites too.
    let (status, body) = srv.post_as(&backend(), "/chat/Invite", json!({ "group_id": group, "user_id": "dave" })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(group_of(&body)["user_ids"], json!(["alice", "bob", "dave"]));
    let _dave = srv.ws(&join("dave"), &backend()).await;
    assert_eq!(srv.group(&backend(), &group).await["user_ids"], json!(["alice", "bob", "dave"]));
    // Inviting a member again changes nothing.
    let (status, body) =
        srv.post_as(&user("bob"), "/chat/Invite", json!({ "group_id": group, "user_id": "dave" })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(group_of(&body)["user_ids"], json!(["alice", "bob", "dave"]));
    assert_eq!(texts(&srv.history_as(&backend(), &group).await), ["thanks", "welcome"]);
}

// ---- 3. Leave and Kick ----

/// Kick takes effect at once: every open stream of the kicked user (token or key, Connect or
/// Join, WebSocket or SSE) gets one Forbidden error and closes with 4403, and the user's next
/// send, read or stream is refused; everyone else's streams carry on undisturbed.
#[actix_web::test]
async fn a_kicked_users_streams_close_and_their_access_ends_at_once() {
    let srv = spawn_app_with(secured).await;
    let group = srv.create_group(&backend(), json!({ "name": "g", "user_ids": ["alice", "bob", "carol"] })).await;
    let connect = format!("/chat/Connect?group_id={}", enc(&group));
    let mut bob_token = srv.ws(&connect, &user("bob")).await;
    let mut bob_key = srv.ws(&format!("{connect}&user_id=bob"), &backend()).await;
    let mut bob_join = srv.ws(&format!("/chat/Join?group_id={}", enc(&group)), &user("bob")).await;
    let mut bob_sse = srv.sse(&connect, &user("bob")).await;
    let mut carol = srv.ws(&format!("{connect}&user_id=carol"), &backend()).await;
    let mut watcher = srv.ws(&connect, &backend()).await;
    srv.send_as(&backend(), &group, "bob", "bob's last").await;
    srv.send_as(&backend(), &group, "alice", "alice's last").await;
    for rx in [&mut bob_token.rx, &mut bob_key.rx, &mut carol.rx, &mut watcher.rx] {
        assert_eq!(texts(&rx.messages(2).await), ["bob's last", "alice's last"]);
    }
    let (_, got) = bob_sse.messages(2).await;
    assert_eq!(texts(&got), ["bob's last", "alice's last"]);
    // bob's Join stream leaves out his own message.
    assert_eq!(bob_join.rx.v2_message().await["text"], "alice's last");

    let (status, body) =
        srv.post_as(&user("alice"), "/chat/Kick", json!({ "group_id": group, "user_id": "bob" })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(group_of(&body)["user_ids"], json!(["alice", "carol"]));
    assert_group_shape(group_of(&body));

    bob_token.rx.fails(403, "chat.Connect.Forbidden").await;
    bob_key.rx.fails(403, "chat.Connect.Forbidden").await;
    bob_join.rx.fails(403, "chat.Join.Forbidden").await;
    bob_sse.fails(403, "chat.Connect.Forbidden").await;

    // bob is out, at once, everywhere.
    let (status, body) = srv.post_as(&user("bob"), "/chat/Send", json!({ "group_id": group, "text": "x" })).await;
    assert_error_for(status, &body, 403, "chat.Send.Forbidden", "kicked, token");
    let (status, body) =
        srv.post_as(&backend(), "/chat/Send", json!({ "group_id": group, "user_id": "bob", "text": "x" })).await;
    assert_error_for(status, &body, 403, "chat.Send.Forbidden", "kicked, key");
    let (status, body) = srv.post_as(&user("bob"), "/chat/History", json!({ "group_id": group })).await;
    assert_error_for(status, &body, 403, "chat.History.Forbidden", "kicked");
    let mut again = srv.ws(&connect, &user("bob")).await;
    again.rx.fails(403, "chat.Connect.Forbidden").await;
    let (status, body) =
        srv.post_as(&user("bob"), "/chat/Kick", json!({ "group_id": group, "user_id": "alice" })).await;
    assert_error_for(status, &body, 403, "chat.Kick.Forbidden", "kicked kicks back");
    assert!(srv.list_groups(&backend(), "bob").await.is_empty());

    // The others carry on: their next frame is the next message, not an error.
    srv.send_as(&backend(), &group, "carol", "after the kick").await;
    assert_eq!(carol.rx.message().await["text"], "after the kick");
    assert_eq!(watcher.rx.message().await["text"], "after the kick");
    carol.tx.send(json!({ "text": "carol too", "client_id": "c" })).await;
    assert_eq!(carol.rx.message().await["text"], "carol too");
    assert_eq!(watcher.rx.message().await["text"], "carol too");
    let history = srv.history_as(&backend(), &group).await;
    assert_eq!(texts(&history), ["bob's last", "alice's last", "after the kick", "carol too"]);
}

/// Leave removes the user at once: their streams close with 4403 and their sends are refused.
/// A token leaves as its own user (no user_id needed); a key names the user.
#[actix_web::test]
async fn leaving_takes_effect_at_once() {
    let srv = spawn_app_with(secured).await;
    let group = srv.create_group(&backend(), json!({ "name": "g", "user_ids": ["alice", "bob"] })).await;
    let mut bob = srv.ws(&format!("/chat/Connect?group_id={}", enc(&group)), &user("bob")).await;
    let mut alice = srv.ws(&format!("/chat/Connect?group_id={}", enc(&group)), &user("alice")).await;
    let (status, body) = srv.post_as(&user("bob"), "/chat/Leave", json!({ "group_id": group })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(group_of(&body)["user_ids"], json!(["alice"]));
    bob.rx.fails(403, "chat.Connect.Forbidden").await;
    let (status, body) = srv.post_as(&user("bob"), "/chat/Send", json!({ "group_id": group, "text": "x" })).await;
    assert_error_for(status, &body, 403, "chat.Send.Forbidden", "left");
    srv.send_as(&backend(), &group, "alice", "alone").await;
    assert_eq!(alice.rx.message().await["text"], "alone");

    let (status, body) = srv.post_as(&backend(), "/chat/Leave", json!({ "group_id": group, "user_id": "alice" })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(group_of(&body)["user_ids"], json!([]));
    alice.rx.fails(403, "chat.Connect.Forbidden").await;
    // The 400s and 404.
    for (body, code, id) in [
        (json!({ "user_id": "alice" }), 400, "chat.Leave.MissingChatID"),
        (json!({ "group_id": group }), 400, "chat.Leave.MissingUserID"),
        (json!({ "group_id": "nope", "user_id": "alice" }), 404, "chat.Leave.NotFound"),
    ] {
        let (status, reply) = srv.post_as(&backend(), "/chat/Leave", body).await;
        assert_error_for(status, &reply, code, id, "");
    }
}

/// Kicking and inviting by a user token need the token's user to be a member; any member may.
/// A kick removes an invited member of a private group: they may no longer send or Join.
#[actix_web::test]
async fn kick_and_invite_by_a_user_token_need_membership() {
    let srv = spawn_app_with(secured).await;
    let group = srv.create_group(&backend(), json!({ "name": "g", "user_ids": ["alice", "bob"] })).await;
    for (path, body) in [
        ("/chat/Kick", json!({ "group_id": group, "user_id": "bob" })),
        ("/chat/Invite", json!({ "group_id": group, "user_id": "carol" })),
    ] {
        let (status, reply) = srv.post_as(&user("carol"), path, body).await;
        let endpoint = path.trim_start_matches("/chat/");
        assert_error_for(status, &reply, 403, &format!("chat.{endpoint}.Forbidden"), path);
    }
    assert_eq!(srv.group(&backend(), &group).await["user_ids"], json!(["alice", "bob"]));
    let (status, body) =
        srv.post_as(&user("bob"), "/chat/Kick", json!({ "group_id": group, "user_id": "alice" })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(group_of(&body)["user_ids"], json!(["bob"]));

    let private = srv.create_group(&user("alice"), json!({ "name": "p", "private": true })).await;
    let (status, body) =
        srv.post_as(&user("alice"), "/chat/Invite", json!({ "group_id": private, "user_id": "dave" })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(group_of(&body)["user_ids"], json!(["alice", "dave"]));
    let (status, body) =
        srv.post_as(&user("alice"), "/chat/Kick", json!({ "group_id": private, "user_id": "dave" })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(group_of(&body)["user_ids"], json!(["alice"]));
    let mut ws = srv.ws(&format!("/chat/Join?group_id={}", enc(&private)), &user("dave")).await;
    ws.rx.fails(403, "chat.Join.Forbidden").await;
    let (status, body) = srv.post_as(&user("dave"), "/chat/Send", json!({ "group_id": private, "text": "x" })).await;
    assert_error_for(status, &body, 403, "chat.Send.Forbidden", "dave, kicked");
}

/// A user token for someone outside a private group learns nothing about it from the group
/// endpoints: Leave, Kick, Invite, Delete, Join and the reads are all refused without the
/// group's name or members in the answer.
#[actix_web::test]
async fn a_non_member_token_learns_nothing_about_a_private_group() {
    let srv = spawn_app_with(secured).await;
    let secret_name = format!("secret-{}", uuid::Uuid::new_v4().simple());
    let group = srv
        .create_group(
            &user("alice"),
            json!({ "name": secret_name, "description": "top secret", "user_ids": ["bob"], "private": true }),
        )
        .await;
    for (endpoint, body) in [
        ("Leave", json!({ "group_id": group })),
        ("Leave", json!({ "group_id": group, "user_id": "mallory" })),
        ("Kick", json!({ "group_id": group, "user_id": "mallory" })),
        ("Kick", json!({ "group_id": group, "user_id": "bob" })),
        ("Invite", json!({ "group_id": group, "user_id": "mallory" })),
        ("Delete", json!({ "group_id": group })),
        ("History", json!({ "group_id": group })),
    ] {
        let (status, reply) = srv.post_as(&user("mallory"), &format!("/chat/{endpoint}"), body.clone()).await;
        assert!(!reply.to_string().contains(&secret_name), "{endpoint} {body} shows the group: {reply}");
        assert_error_for(status, &reply, 403, &format!("chat.{endpoint}.Forbidden"), &body.to_string());
    }
    let mut ws = srv.ws(&format!("/chat/Join?group_id={}", enc(&group)), &user("mallory")).await;
    ws.rx.fails(403, "chat.Join.Forbidden").await;
    assert!(srv.list_groups(&backend(), "mallory").await.is_empty());
    assert_eq!(srv.group(&backend(), &group).await["user_ids"], json!(["alice", "bob"]));
}

// ---- 4. List ----

/// List `{user_id}` answers the chats a user is a member of (groups, and unnamed chats made by
/// New), oldest first, each with exactly a group's fields; a private group stays out of every
/// non-member's List until they are invited (which makes them a member); a user token lists
/// only its own user's chats (`List {}` or naming itself), and `List {}` by an API key answers
/// every group of the namespace, private ones included, but no unnamed chat.
#[actix_web::test]
async fn list_shows_a_users_own_groups_and_keeps_private_groups_out_of_others() {
    let srv = spawn_app_with(secured).await;
    let p1 = srv.create_group(&backend(), json!({ "name": "p1", "user_ids": ["alice", "bob"], "private": true })).await;
    let g2 = srv.create_group(&backend(), json!({ "name": "g2", "user_ids": ["alice"] })).await;
    let p3 = srv.create_group(&backend(), json!({ "name": "p3", "user_ids": ["carol"], "private": true })).await;
    let plain = srv.new_chat_as(&backend(), &["erin", "frank"]).await;
    let ids = |body: &Value| -> BTreeSet<String> {
        body["groups"].as_array().unwrap().iter().map(|g| g["id"].as_str().unwrap().to_owned()).collect()
    };
    let set = |ids: &[&String]| -> BTreeSet<String> { ids.iter().map(|id| id.to_string()).collect() };
    // Not yet invited: p3 is not in alice's List.
    let (status, body) = srv.post_as(&user("alice"), "/chat/List", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body), set(&[&p1, &g2]));
    let (status, body) = srv.post_as(&backend(), "/chat/Invite", json!({ "group_id": p3, "user_id": "alice" })).await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = srv.post_as(&user("alice"), "/chat/List", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["groups"]);
    for g in body["groups"].as_array().unwrap() {
        assert_group_shape(g);
    }
    assert_eq!(ids(&body), set(&[&p1, &g2, &p3]));
    let (status, body) = srv.post_as(&user("alice"), "/chat/List", json!({ "user_id": "alice" })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body), set(&[&p1, &g2, &p3]), "a token naming its own user");
    for path in ["/chat/List", "/chat/Chat/List", "/v1/chat/List"] {
        let (status, body) = srv.post_as(&backend(), path, json!({ "user_id": "alice" })).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(ids(&body), set(&[&p1, &g2, &p3]), "{path}");
    }
    assert_eq!(srv.list_groups(&backend(), "bob").await, [p1.as_str()]);
    assert_eq!(srv.list_groups(&backend(), "carol").await, [p3.as_str()]);
    assert!(srv.list_groups(&backend(), "dave").await.is_empty());
    // An unnamed chat is listed to its members, with an empty name.
    assert_eq!(srv.list_groups(&backend(), "erin").await, [plain.as_str()]);
    let (_, body) = srv.post_as(&backend(), "/chat/List", json!({ "user_id": "frank" })).await;
    assert_eq!((&body["groups"][0]["name"], &body["groups"][0]["user_ids"]), (&json!(""), &json!(["erin", "frank"])));
    let (status, body) = srv.post_as(&user("carol"), "/chat/List", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body), set(&[&p3]));
    let (status, body) = srv.post_as(&user("erin"), "/chat/List", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body), set(&[&plain]));
    // A token lists only its own user's chats: a non-member sees none of the groups.
    let (status, body) = srv.post_as(&user("dave"), "/chat/List", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({ "groups": [] }));
    let (status, body) = srv.post_as(&user("dave"), "/chat/List", json!({ "user_id": "carol" })).await;
    assert_error_for(status, &body, 403, "chat.List.Forbidden", "dave lists carol");
    // A key with no user: every group of the namespace, private ones included, no unnamed chat.
    let (status, body) = srv.post_as(&backend(), "/chat/List", json!({})).await;
    assert_eq!(status, 200, "{body}");
    body["groups"].as_array().unwrap().iter().for_each(assert_group_shape);
    assert_eq!(ids(&body), set(&[&p1, &g2, &p3]), "key, no user");
    // Changes show at once.
    let (status, body) = srv.post_as(&user("bob"), "/chat/Leave", json!({ "group_id": p1 })).await;
    assert_eq!(status, 200, "{body}");
    assert!(srv.list_groups(&backend(), "bob").await.is_empty());
    let (status, body) = srv.post_as(&user("carol"), "/chat/Kick", json!({ "group_id": p3, "user_id": "alice" })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(srv.list_groups(&backend(), "alice").await.into_iter().collect::<BTreeSet<_>>(), set(&[&p1, &g2]));
    let _join = srv.ws(&format!("/chat/Join?group_id={}", enc(&g2)), &user("dave")).await;
    assert_eq!(srv.list_groups(&backend(), "dave").await, [g2.as_str()]);
}

// ---- 5. Delete ----

/// Delete answers the group, closes its streams with NotFound (4404), makes every endpoint
/// answer 404 at once, and erases its messages from disk (overwritten in the log, snapshot
/// removed) without touching any other chat's; it stays gone after a restart, and a new chat
/// made with its id starts empty.
#[actix_web::test]
async fn delete_erases_the_chat_from_disk_for_good() {
    let srv = spawn_app_with(secured).await;
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let (doomed_name, doomed_text, doomed_subject, doomed_client, survivor) = (
        format!("doomed-name-{tag}"),
        format!("doomed-text-{tag}"),
        format!("doomed-subject-{tag}"),
        format!("doomed-client-{tag}"),
        format!("survivor-text-{tag}"),
    );
    let group = srv
        .create_group(&backend(), json!({ "name": doomed_name, "description": "d", "user_ids": ["alice", "bob"] }))
        .await;
    let other = srv.new_chat_as(&backend(), &["alice", "bob"]).await;
    for i in 0..5 {
        let (status, body) = srv
            .post_as(
                &backend(),
                "/chat/Send",
                json!({
                    "group_id": group, "user_id": "alice", "text": format!("{doomed_text}-{i}"),
                    "subject": doomed_subject, "client_id": format!("{doomed_client}-{i}")
                }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    srv.send_as(&backend(), &other, "bob", &survivor).await;
    // A checkpoint writes both chats' snapshots.
    srv.checkpoint().await;
    let data = srv.data_dir();
    assert!(grep(&data.join("wal"), &doomed_text) > 0, "the text is in the log");
    assert!(grep(&data.join("wal"), &doomed_subject) > 0);
    assert_eq!(grep(&data.join("snap"), &doomed_client), 1, "one chat snapshot");
    let snaps_before = snapshot_files(&data).len();

    // Refusals first: unknown is 404, a non-member token is 403; nothing is deleted.
    let (status, body) = srv.post_as(&backend(), "/chat/Delete", json!({ "group_id": "nope" })).await;
    assert_error_for(status, &body, 404, "chat.Delete.NotFound", "");
    let (status, body) = srv.post_as(&user("carol"), "/chat/Delete", json!({ "group_id": group })).await;
    assert_error_for(status, &body, 403, "chat.Delete.Forbidden", "");
    let (status, body) = srv.post_as(&backend(), "/chat/Delete", json!({})).await;
    assert_error_for(status, &body, 400, "chat.Delete.MissingChatID", "");
    assert_eq!(srv.history_as(&backend(), &group).await.len(), 5);

    let connect = format!("/chat/Connect?group_id={}", enc(&group));
    let mut ws = srv.ws(&connect, &user("bob")).await;
    let mut sse = srv.sse(&connect, &backend()).await;
    let (status, body) = srv.post_as(&user("bob"), "/chat/Delete", json!({ "group_id": group })).await;
    assert_eq!(status, 200, "{body}");
    let g = group_of(&body);
    assert_group_shape(g);
    assert_eq!((&g["id"], &g["name"], &g["user_ids"]), (&json!(group), &json!(doomed_name), &json!(["alice", "bob"])));
    ws.rx.fails(404, "chat.Connect.NotFound").await;
    sse.fails(404, "chat.Connect.NotFound").await;

    // Gone, at once, from every endpoint.
    assert_gone(&srv, &group).await;
    assert!(!srv.list_groups(&backend(), "alice").await.contains(&group));

    // Gone from disk: the log's copies are overwritten, the snapshot removed; others stay.
    let check_disk = |data: &Path| {
        assert_eq!(grep(&data.join("wal"), &doomed_text), 0, "the text is still in the log");
        assert_eq!(grep(&data.join("wal"), &doomed_subject), 0);
        assert_eq!(grep(&data.join("wal"), &doomed_client), 0);
        assert_eq!(grep(data, &doomed_text), 0, "the text is still on disk");
        assert_eq!(grep(&data.join("snap"), &doomed_client), 0, "its snapshot is still there");
        assert!(grep(&data.join("wal"), &survivor) > 0, "another chat's message was lost");
    };
    check_disk(&data);
    assert_eq!(snapshot_files(&data).len(), snaps_before - 1);
    // The next checkpoint's catalog no longer names it.
    srv.checkpoint().await;
    assert_eq!(grep(&data.join("snap"), &doomed_name), 0, "the catalog names it");

    // After a restart: still gone, still erased, the other chat intact.
    let srv = srv.restart().await;
    assert_gone(&srv, &group).await;
    check_disk(&data);
    assert_eq!(texts(&srv.history_as(&backend(), &other).await), [survivor.as_str()]);
    // A new chat with the same id starts empty.
    let (status, body) =
        srv.post_as(&backend(), "/chats/CreateChat", json!({ "id": group, "user_ids": ["alice", "zed"] })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["chat"]["id"], group.as_str(), "{body}");
    assert_eq!(body["chat"]["user_ids"], json!(["alice", "zed"]), "{body}");
    assert!(srv.history_as(&backend(), &group).await.is_empty());
    srv.send_as(&backend(), &group, "alice", "a fresh start").await;
    let srv = srv.restart().await;
    assert_eq!(texts(&srv.history_as(&backend(), &group).await), ["a fresh start"]);
    check_disk(&data);
    srv.stop().await;
}

/// A chat whose actor is not running (stopped while idle, or never loaded since a restart) is
/// erased from disk on Delete just the same.
#[actix_web::test]
async fn deleting_a_chat_that_is_not_loaded_erases_it_too() {
    let srv = spawn_app_with(|s| {
        secured(s);
        s.chat.idle_timeout_secs = 1;
    })
    .await;
    let data = srv.data_dir();
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let idle_text = format!("idle-text-{tag}");
    let cold_text = format!("cold-text-{tag}");
    let idle = srv.create_group(&backend(), json!({ "name": "idle", "user_ids": ["alice"] })).await;
    let cold = srv.create_group(&backend(), json!({ "name": "cold", "user_ids": ["alice"] })).await;
    srv.send_as(&backend(), &idle, "alice", &idle_text).await;
    srv.send_as(&backend(), &cold, "alice", &cold_text).await;

    // The idle chat: wait until no chat actor runs.
    let deadline = Instant::now() + WAIT;
    while srv.live_chats().await > 0 {
        assert!(Instant::now() < deadline, "the chat actors never stopped");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(grep(&data.join("wal"), &idle_text) > 0);
    let (status, body) = srv.post_as(&backend(), "/chat/Delete", json!({ "group_id": idle })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(grep(&data, &idle_text), 0, "the idle chat's text is still on disk");
    assert_gone(&srv, &idle).await;

    // The cold chat: restart, touch nothing, delete.
    let srv = srv.restart().await;
    assert!(grep(&data.join("wal"), &cold_text) > 0);
    let (status, body) = srv.post_as(&backend(), "/chat/Delete", json!({ "group_id": cold })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(grep(&data, &cold_text), 0, "the cold chat's text is still on disk");
    assert_gone(&srv, &cold).await;
    let srv = srv.restart().await;
    assert_gone(&srv, &idle).await;
    assert_gone(&srv, &cold).await;
    assert_eq!(grep(&data, &idle_text) + grep(&data, &cold_text), 0);
    srv.stop().await;
}

// ---- 6. persistence and edge cases ----

/// Membership changes are durable, invitations (which make members) included: after a restart
/// the members, private flags and refusals are as they were.
#[actix_web::test]
async fn membership_changes_survive_a_restart() {
    let srv = spawn_app_with(secured).await;
    let private =
        srv.create_group(&user("alice"), json!({ "name": "p", "user_ids": ["bob", "carol"], "private": true })).await;
    for (path, u, members) in [
        ("/chat/Kick", "bob", json!(["alice", "carol"])),
        ("/chat/Invite", "dave", json!(["alice", "carol", "dave"])),
        ("/chat/Invite", "erin", json!(["alice", "carol", "dave", "erin"])),
    ] {
        let (status, body) = srv.post_as(&user("alice"), path, json!({ "group_id": private, "user_id": u })).await;
        assert_eq!(status, 200, "{path} {u}: {body}");
        assert_eq!(group_of(&body)["user_ids"], members, "{path} {u}");
    }
    let (status, body) = srv.post_as(&user("carol"), "/chat/Leave", json!({ "group_id": private })).await;
    assert_eq!(status, 200, "{body}");
    drop(srv.ws(&format!("/chat/Join?group_id={}", enc(&private)), &user("dave")).await);
    let before = srv.group(&backend(), &private).await;
    assert_eq!(before["user_ids"], json!(["alice", "dave", "erin"]));

    let srv = srv.restart().await;
    let after = srv.group(&backend(), &private).await;
    assert_eq!(after, before);
    assert_eq!(after["private"], true);
    for u in ["bob", "carol"] {
        let (status, body) = srv.post_as(&user(u), "/chat/Send", json!({ "group_id": private, "text": "x" })).await;
        assert_error_for(status, &body, 403, "chat.Send.Forbidden", &format!("{u}, out, after restart"));
    }
    // dave (invited, joined) and erin (invited, never joined) are members still.
    for u in ["dave", "erin"] {
        let (status, body) =
            srv.post_as(&user(u), "/chat/Send", json!({ "group_id": private, "text": "still in" })).await;
        assert_eq!(status, 200, "{u}: {body}");
    }
    let join = |u: &str| format!("/chat/Join?group_id={}&user_id={u}", enc(&private));
    let _erin = srv.ws(&join("erin"), &backend()).await;
    for u in ["bob", "carol", "frank"] {
        let mut ws = srv.ws(&join(u), &backend()).await;
        ws.rx.fails(403, "chat.Join.Forbidden").await;
    }
    assert_eq!(srv.group(&backend(), &private).await["user_ids"], json!(["alice", "dave", "erin"]));
    srv.stop().await;
}

/// A key may watch a chat with a user_id that is not a member (it reads any chat). That
/// stream is not a member's: someone else joining must not close it.
#[actix_web::test]
async fn a_non_members_key_stream_survives_someone_else_joining() {
    let srv = spawn_app_with(secured).await;
    let group = srv.create_group(&backend(), json!({ "name": "g", "user_ids": ["alice"] })).await;
    let mut observer = srv.ws(&format!("/chat/Connect?group_id={}&user_id=observer", enc(&group)), &backend()).await;
    let _bob = srv.ws(&format!("/chat/Join?group_id={}", enc(&group)), &user("bob")).await;
    srv.send_as(&backend(), &group, "alice", "after bob joined").await;
    assert_eq!(observer.rx.message().await["text"], "after bob joined");
}

/// With `chat.membership = "open"` anyone may watch and send; a membership change among the
/// members must not close a non-member's stream.
#[actix_web::test]
async fn with_open_membership_a_non_members_stream_survives_membership_changes() {
    let srv = spawn_app_with(|s| {
        secured(s);
        s.chat.membership = Membership::Open;
    })
    .await;
    let group = srv.create_group(&backend(), json!({ "name": "g", "user_ids": ["alice", "bob"] })).await;
    let mut trudy = srv.ws(&format!("/chat/Connect?group_id={}", enc(&group)), &user("trudy")).await;
    trudy.tx.send(json!({ "text": "open door", "client_id": "t" })).await;
    assert_eq!(trudy.rx.message().await["text"], "open door");
    let (status, body) = srv.post_as(&backend(), "/chat/Kick", json!({ "group_id": group, "user_id": "bob" })).await;
    assert_eq!(status, 200, "{body}");
    srv.send_as(&backend(), &group, "alice", "still open").await;
    assert_eq!(trudy.rx.message().await["text"], "still open");
}

/// Every group endpoint on a chat another namespace's key cannot see, or with ids that are
/// paths or too long, answers 404 or 400 and changes nothing.
#[actix_web::test]
async fn group_endpoints_refuse_bad_ids() {
    let srv = spawn_app_with(secured).await;
    let group = srv.create_group(&backend(), json!({ "name": "g", "user_ids": ["alice"] })).await;
    let huge = "z".repeat(10_000);
    for (endpoint, body) in [
        ("Invite", json!({ "group_id": huge, "user_id": "bob" })),
        ("Invite", json!({ "group_id": group, "user_id": huge })),
        ("Kick", json!({ "group_id": "a\u{0}b", "user_id": "bob" })),
        ("Leave", json!({ "group_id": group, "user_id": "b\u{0}b" })),
        ("Delete", json!({ "group_id": huge })),
        ("List", json!({ "user_id": huge })),
        ("Create", json!({ "name": "x", "user_ids": ["ok", "\u{7}"] })),
    ] {
        let (status, reply) = srv.post_as(&backend(), &format!("/chat/{endpoint}"), body).await;
        assert_error_for(status, &reply, 400, &format!("chat.{endpoint}.BadID"), endpoint);
    }
    for id in ["../../x", "/", ".."] {
        for endpoint in ["Invite", "Kick", "Leave", "Delete"] {
            let (status, reply) = srv
                .post_as(&backend(), &format!("/chat/{endpoint}"), json!({ "group_id": id, "user_id": "bob" }))
                .await;
            assert_error_for(status, &reply, 404, &format!("chat.{endpoint}.NotFound"), id);
        }
    }
    let mut ws = srv.ws(&format!("/chat/Join?group_id={}&user_id=bob", enc(&huge)), &backend()).await;
    ws.rx.fails(400, "chat.Join.BadID").await;
    assert_eq!(srv.group(&backend(), &group).await["user_ids"], json!(["alice"]));
}

/// A stream the chat ends (its user kicked or leaving, or the chat deleted) always gets its
/// error frame first, then the 4000 + code close; an SSE stream always gets its error event.
#[actix_web::test]
async fn a_closed_streams_always_get_their_error_frame_first() {
    const N: usize = 12;
    let srv = spawn_app_with(secured).await;
    let users: Vec<String> = (0..N).map(|i| format!("u{i}")).collect();
    let group = srv.create_group(&backend(), json!({ "name": "g", "user_ids": users })).await;
    let connect = format!("/chat/Connect?group_id={}", enc(&group));
    let mut kicked = Vec::new();
    let mut sses = Vec::new();
    for u in &users[..N / 2] {
        kicked.push(srv.ws(&connect, &user(u)).await);
        sses.push(srv.sse(&connect, &user(u)).await);
    }
    let mut remaining = Vec::new();
    for u in &users[N / 2..] {
        remaining.push(srv.ws(&format!("{connect}&user_id={u}"), &backend()).await);
    }
    for (u, ws) in users.iter().zip(&mut kicked) {
        let (status, body) = srv.post_as(&backend(), "/chat/Kick", json!({ "group_id": group, "user_id": u })).await;
        assert_eq!(status, 200, "{body}");
        ws.rx.fails(403, "chat.Connect.Forbidden").await;
    }
    for sse in &mut sses {
        let event = sse.next().await.expect("an error event, not the end");
        assert_eq!(event.event.as_deref(), Some("error"), "{}", event.data);
    }
    let (status, body) = srv.post_as(&backend(), "/chat/Delete", json!({ "group_id": group })).await;
    assert_eq!(status, 200, "{body}");
    for ws in &mut remaining {
        ws.rx.fails(404, "chat.Connect.NotFound").await;
    }
}

async fn assert_gone(srv: &TestApp, group: &str) {
    for (endpoint, body) in [
        ("chat.Send", json!({ "group_id": group, "user_id": "alice", "text": "x" })),
        ("chat.History", json!({ "group_id": group })),
        ("chat.Invite", json!({ "group_id": group, "user_id": "x" })),
        ("chat.Leave", json!({ "group_id": group, "user_id": "alice" })),
        ("chat.Kick", json!({ "group_id": group, "user_id": "alice" })),
        ("chat.Delete", json!({ "group_id": group })),
        ("chats.SendMessage", json!({ "chat_id": group, "author_id": "alice", "text": "x" })),
        ("chats.ListMessages", json!({ "chat_id": group })),
    ] {
        let path = format!("/{}", endpoint.replace('.', "/"));
        let (status, reply) = srv.post_as(&backend(), &path, body).await;
        assert_error_for(status, &reply, 404, &format!("{endpoint}.NotFound"), &path);
    }
    for (endpoint, path) in [("chat.Connect", "/chat/Connect"), ("chat.Join", "/chat/Join")] {
        let mut ws = srv.ws(&format!("{path}?group_id={}&user_id=alice", enc(group)), &backend()).await;
        ws.rx.fails(404, &format!("{endpoint}.NotFound")).await;
    }
}

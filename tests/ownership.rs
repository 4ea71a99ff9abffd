//! One owner per chat: what a chat answers follows its current state, wherever it is asked,
//! before and after a restart; deletion leaves nothing acknowledged behind; a membership change
//! costs its own size on disk. Against the real server, in-process on port 0.

mod helpers;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::future::join_all;
use serde_json::{json, Value};

use chatd::config::ApiKey;
use helpers::{bearer, files_under, key, spawn_app, spawn_app_with, user_token, TestApp, ACME_KEY, ACME_SECRET};

/// `path` with `body`, expecting 200: the response body.
async fn ok(app: &TestApp, path: &str, body: Value) -> Value {
    let (status, reply) = app.post(path, body.clone()).await;
    assert_eq!(status, 200, "{path} {body}: {reply}");
    reply
}

async fn members_of(app: &TestApp, chat: &str) -> Vec<String> {
    // Leave of a non-member changes nothing and shows the chat as it stands.
    let group = ok(app, "/chat/Leave", json!({ "group_id": chat, "user_id": "nobody" })).await;
    group["group"]["user_ids"].as_array().expect("user_ids").iter().map(|u| u.as_str().expect("id").into()).collect()
}

/// `New` answers the chat whose *current* members are the set: after Leave and Kick a set names
/// another chat (a new one, or one that now has exactly those members), and every member of the
/// answer may send to it. Before the fix, New [m1, m2] after m2 left answered the chat that only
/// has m1, and m2's send to it was 403.
#[actix_web::test]
async fn new_follows_current_membership_after_leave_and_kick() {
    let app = spawn_app().await;
    let a = app.new_chat(&["m1", "m2"]).await;
    ok(&app, "/chat/Leave", json!({ "group_id": a, "user_id": "m2" })).await;
    assert_eq!(members_of(&app, &a).await, ["m1"]);

    let b = app.new_chat(&["m1", "m2"]).await;
    assert_ne!(a, b, "the chat m2 left no longer has the set [m1, m2]");
    assert_eq!(members_of(&app, &b).await, ["m1", "m2"]);
    app.send(&b, "m2", "m2 is a member here").await;
    assert_eq!(app.new_chat(&["m1"]).await, a, "the chat whose members are now [m1]");

    // Kick: the same, from the other side.
    ok(&app, "/chat/Kick", json!({ "group_id": b, "user_id": "m1" })).await;
    let c = app.new_chat(&["m1", "m2"]).await;
    assert!(c != a && c != b, "neither earlier chat has [m1, m2] now");
    assert_eq!(app.new_chat(&["m2"]).await, b);
    // Two chats may share a member set now: the oldest is the answer, every time.
    assert_eq!(app.new_chat(&["m1"]).await, a);
    let (status, body) = app.post("/chats/CreateChat", json!({ "user_ids": ["m1", "m2"] })).await;
    assert_eq!((status.as_u16(), body["chat"]["id"].as_str()), (200, Some(c.as_str())), "{body}");
}

/// After a chat is deleted, `New` and `CreateChat` with its users make a new chat, even when its
/// members had changed before. Before the fix both answered 404 until a restart.
#[actix_web::test]
async fn new_and_create_chat_after_delete() {
    let app = spawn_app().await;
    let a = app.new_chat(&["m1", "m2"]).await;
    ok(&app, "/chat/Leave", json!({ "group_id": a, "user_id": "m2" })).await;
    ok(&app, "/chat/Delete", json!({ "group_id": a })).await;
    let (status, body) = app.post("/chats/CreateChat", json!({ "id": "fresh", "user_ids": ["m1", "m2"] })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["chat"]["id"], "fresh");
    ok(&app, "/chat/Delete", json!({ "group_id": "fresh" })).await;
    let b = app.new_chat(&["m1", "m2"]).await;
    assert_ne!(a, b);
    app.send(&b, "m1", "a new chat").await;
}

/// The chats `New` answers for each member set are the same before and after a restart, after
/// invitations (which make members), leaves, kicks and deletions.
#[actix_web::test]
async fn new_answers_the_same_chats_after_a_restart() {
    let app = spawn_app().await;
    let a = app.new_chat(&["m1", "m2"]).await;
    ok(&app, "/chat/Leave", json!({ "group_id": a, "user_id": "m2" })).await;
    let m1 = app.new_chat(&["m1"]).await;
    let pair = app.new_chat(&["m1", "m2"]).await;
    let c = app.new_chat(&["m1", "m3"]).await;
    ok(&app, "/chat/Invite", json!({ "group_id": c, "user_id": "m4" })).await;
    assert_eq!(members_of(&app, &c).await, ["m1", "m3", "m4"], "an Invite makes a member");
    ok(&app, "/chat/Kick", json!({ "group_id": c, "user_id": "m3" })).await;
    let d = app.new_chat(&["m3"]).await;
    ok(&app, "/chat/Delete", json!({ "group_id": d })).await;
    let sets: [&[&str]; 5] = [&["m1"], &["m1", "m2"], &["m1", "m3"], &["m3"], &["m1", "m4"]];
    let mut before = Vec::new();
    for set in sets {
        before.push(app.new_chat(set).await);
    }
    assert_eq!((before[0].as_str(), before[1].as_str()), (m1.as_str(), pair.as_str()));
    assert_eq!(m1, a, "a's members are [m1] since m2 left");
    assert!(before[2] != c && before[3] != d, "c no longer has [m1, m3]; d is deleted");
    assert_eq!(before[4], c, "c's members are now [m1, m4]: invited m4 in, m3 kicked");

    let app = app.restart().await;
    for (set, was) in sets.iter().zip(&before) {
        assert_eq!(&app.new_chat(set).await, was, "New {set:?} after the restart");
    }
    assert_eq!(members_of(&app, &c).await, ["m1", "m4"], "m4 was invited, m3 kicked");
}

/// A SendMessage `id` equal to a stored message's server-allocated `id`, or to its `client_id`,
/// returns that message and stores nothing. Before the fix the first stored a second message.
#[actix_web::test]
async fn send_message_id_matching_any_stored_id_returns_that_message() {
    let app = spawn_app().await;
    let chat = app.new_chat(&["m1", "m2"]).await;
    let first = app.send(&chat, "m1", "server-made id").await;
    let second = ok(&app, "/chat/Send", json!({ "chat_id": chat, "user_id": "m1", "text": "b", "client_id": "c2" }))
        .await["message"]
        .clone();
    assert_ne!(second["id"], second["client_id"]);
    for (id, want) in [(&first["id"], &first), (&second["id"], &second), (&second["client_id"], &second)] {
        let body = json!({ "chat_id": chat, "author_id": "m2", "text": "a retry", "id": id });
        let got = ok(&app, "/chats/SendMessage", body).await;
        assert_eq!(got["message"]["seq"], want["seq"], "{got}");
        assert_eq!(got["message"]["text"], want["text"], "{got}");
    }
    assert_eq!(app.history(json!({ "chat_id": chat })).await.len(), 2, "nothing more was stored");
}

/// The size of every file under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    files_under(dir).iter().map(|file| std::fs::metadata(file).expect("metadata").len()).sum()
}

/// Each invitation writes a record of itself, not the group's whole metadata again: 900
/// invitations of 250-byte ids to a group with a 16 KB description grow the data dir by less
/// than 4 MiB. Before the fix they grew it by about 80 MB.
#[actix_web::test]
async fn invitations_cost_their_own_size_on_disk() {
    let app = spawn_app().await;
    let description = "d".repeat(16 * 1024);
    let group = ok(&app, "/chat/Create", json!({ "name": "big", "description": description, "user_ids": ["owner"] }))
        .await["group"]["id"]
        .as_str()
        .expect("group id")
        .to_owned();
    let before = dir_bytes(app.dir.path());
    for i in 0..900 {
        let user = format!("{i:0>250}");
        let (status, body) = app.post("/chat/Invite", json!({ "group_id": group, "user_id": user })).await;
        assert_eq!(status, 200, "invite {i}: {body}");
    }
    let grown = dir_bytes(app.dir.path()) - before;
    assert!(grown < 4 << 20, "900 invitations grew the data dir by {grown} bytes");
}

/// Invitations are bounded like members are (an Invite makes a member): with
/// `limits.max_members = 3` a group of one takes two invitations, the next is 400 and changes
/// nothing; inviting a member of a full group changes nothing and is no error.
#[actix_web::test]
async fn invitations_are_bounded_by_max_members() {
    let app = spawn_app_with(|s| s.limits.max_members = 3).await;
    let group = ok(&app, "/chat/Create", json!({ "name": "g", "private": true, "user_ids": ["owner"] })).await["group"]
        ["id"]
        .as_str()
        .expect("group id")
        .to_owned();
    for user in ["a", "b"] {
        ok(&app, "/chat/Invite", json!({ "group_id": group, "user_id": user })).await;
    }
    assert_eq!(members_of(&app, &group).await, ["a", "b", "owner"]);
    for user in ["c", "d"] {
        let (status, body) = app.post("/chat/Invite", json!({ "group_id": group, "user_id": user })).await;
        helpers::assert_error(status, &body, 400, "chat.Invite.BadRequest");
    }
    let again = ok(&app, "/chat/Invite", json!({ "group_id": group, "user_id": "a" })).await;
    assert_eq!(again["group"]["user_ids"], json!(["a", "b", "owner"]));
    assert_eq!(members_of(&app, &group).await, ["a", "b", "owner"]);
}

/// A user token's membership changes count against the user's send rate (429 beyond); an API
/// key's do not. Before the fix a user token could invite without limit.
#[actix_web::test]
async fn a_user_tokens_membership_changes_are_rate_limited() {
    let app = spawn_app_with(|s| {
        s.auth.api_keys = vec![ApiKey { key: ACME_KEY.into(), namespaces: vec!["acme".into()] }];
        s.auth.user_token_secrets = BTreeMap::from([("acme".to_owned(), ACME_SECRET.to_owned())]);
        s.limits.sends_per_second = 1;
        s.limits.send_burst = 3;
    })
    .await;
    let owner = bearer(&user_token("acme", "owner"), Some("acme"));
    let backend = key(ACME_KEY, "acme");
    let (status, body) = app.post_as(&owner, "/chat/Create", json!({ "name": "g" })).await;
    assert_eq!(status, 200, "{body}");
    let group = body["group"]["id"].as_str().expect("group id").to_owned();
    let mut statuses = Vec::new();
    for i in 0..6 {
        let invite = json!({ "group_id": group, "user_id": format!("u{i}") });
        statuses.push(app.post_as(&owner, "/chat/Invite", invite).await.0.as_u16());
    }
    assert_eq!(&statuses[..3], [200, 200, 200], "the burst: {statuses:?}");
    assert!(statuses[3..].contains(&429), "beyond the burst: {statuses:?}");
    for i in 0..6 {
        let invite = json!({ "group_id": group, "user_id": format!("k{i}") });
        assert_eq!(app.post_as(&backend, "/chat/Invite", invite).await.0, 200, "an API key is never limited");
    }
}

/// Every `marker-...-end` string in any file under `dir`, with the file it is in.
fn markers_on_disk(dir: &Path) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    for path in files_under(dir) {
        let bytes = std::fs::read(&path).expect("read");
        let mut at = 0;
        while let Some(start) = bytes[at..].windows(7).position(|w| w == b"marker-").map(|p| p + at) {
            let end = bytes[start..].windows(4).position(|w| w == b"-end").map_or(bytes.len(), |p| start + p + 4);
            found.insert(String::from_utf8_lossy(&bytes[start..end]).into_owned(), path.display().to_string());
            at = start + 7;
        }
    }
    found
}

/// Fails if any of `acked` is on disk.
#[track_caller]
fn assert_erased(dir: &Path, acked: &[String], when: &str) {
    let on_disk = markers_on_disk(dir);
    let left: Vec<_> = acked.iter().filter_map(|m| on_disk.get(m).map(|file| format!("{m} in {file}"))).collect();
    assert!(left.is_empty(), "{when}: {} acknowledged messages are still on disk: {left:?}", left.len());
}

/// Delete raced by 16 senders, 20 times: once Delete has answered, no acknowledged message of
/// the chat is in any data file (before and after a restart), and every later send is 404.
/// Before the fix, messages acknowledged around the deletion stayed in the log in plain text.
#[actix_web::test]
async fn delete_raced_by_senders_leaves_no_acknowledged_message() {
    let mut app = spawn_app().await;
    let mut acked_all: Vec<String> = Vec::new();
    for round in 0..20 {
        let group = ok(&app, "/chat/Create", json!({ "name": "doomed", "user_ids": ["s"] })).await["group"]["id"]
            .as_str()
            .expect("group id")
            .to_owned();
        let acked = Arc::new(Mutex::new(Vec::new()));
        let deleted = Arc::new(AtomicBool::new(false));
        let late = Arc::new(Mutex::new(Vec::new()));
        let senders = (0..16).map(|sender| {
            let (app, group, acked, deleted, late) = (&app, &group, acked.clone(), deleted.clone(), late.clone());
            async move {
                for n in 0.. {
                    let started_after_delete = deleted.load(Ordering::SeqCst);
                    let marker = format!("marker-{round}-{sender}-{n}-end");
                    let body = json!({ "chat_id": group, "user_id": "s", "text": marker });
                    let (status, reply) = app.post("/chat/Send", body).await;
                    match status.as_u16() {
                        200 => acked.lock().expect("lock").push(marker),
                        404 => {}
                        other => panic!("send answered {other}: {reply}"),
                    }
                    if started_after_delete {
                        late.lock().expect("lock").push(status.as_u16());
                        if n > 0 && late.lock().expect("lock").len() >= 16 {
                            break;
                        }
                    }
                }
            }
        });
        let delete = async {
            actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
            ok(&app, "/chat/Delete", json!({ "group_id": group })).await;
            deleted.store(true, Ordering::SeqCst);
            // Delete has answered: nothing acknowledged may be left on disk.
            let acked = acked.lock().expect("lock").clone();
            assert!(!acked.is_empty(), "round {round}: some sends were acknowledged before the delete");
            assert_erased(app.dir.path(), &acked, &format!("round {round}, as Delete answered"));
        };
        let mut all: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>> = vec![Box::pin(delete)];
        all.extend(senders.map(|s| Box::pin(s) as std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>));
        join_all(all).await;
        let late = late.lock().expect("lock").clone();
        assert!(late.iter().all(|&s| s == 404), "round {round}: sends begun after Delete answered got {late:?}");
        acked_all.extend(acked.lock().expect("lock").iter().cloned());
        assert_erased(app.dir.path(), &acked_all, &format!("round {round}, after the race"));
    }
    app = app.restart().await;
    assert_erased(app.dir.path(), &acked_all, "after a restart");
}

/// A Delete that arrives just as its chat turns idle is answered 200 and the chat is gone,
/// before and after a restart. Each of 120 chats is deleted within a few milliseconds of the
/// moment its idle check first finds it idle (checks run every second from the chat's start;
/// the chat is idle from the second one), across a spread of offsets, so some deletion records
/// are in flight when the check runs. Before the fix the check stopped such a chat while its
/// deletion record was being written: the erasure that follows it was dropped, and the Delete
/// answered 500 "the chat stopped before it was deleted".
#[actix_web::test]
async fn a_delete_racing_the_idle_stop_is_answered_and_done() {
    let app = spawn_app_with(|s| s.chat.idle_timeout_secs = 1).await;
    let app = std::rc::Rc::new(app);
    let deletes = (0..120u64).map(|i| {
        let app = app.clone();
        async move {
            let chat = app.new_chat(&[&format!("racer-{i}"), "other"]).await;
            // From 1.985 s to 2.009 s after the chat answered, in 0.2 ms steps.
            tokio::time::sleep(std::time::Duration::from_micros(1_985_000 + 200 * i)).await;
            let (status, body) = app.post("/chat/Delete", json!({ "group_id": chat })).await;
            (chat, status.as_u16(), body)
        }
    });
    let results = join_all(deletes).await;
    let failed: Vec<_> = results.iter().filter(|(_, status, _)| *status != 200).collect();
    assert!(failed.is_empty(), "{} of 120 deletes failed, e.g. {:?}", failed.len(), failed.first());
    let app = std::rc::Rc::into_inner(app).expect("the only owner").restart().await;
    for (chat, _, _) in &results {
        let (status, body) = app.post("/chat/History", json!({ "chat_id": chat })).await;
        assert_eq!(status, 404, "deleted chat {chat} after a restart: {body}");
    }
}

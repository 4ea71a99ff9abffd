//! The operator page's lists (src/http/admin.rs, src/telemetry/tally.rs): `/admin/namespaces`
//! counts each namespace's chats exactly and the messages of the chats opened since the start
//! (an idle chat's join when it is next loaded), through deletion and restart; it answers at
//! most 100 rows and says how many more there are; `/admin/held` lists the chats held out of
//! service after corruption, and only them; no other origin may read them. (Off-loopback refusal: tests/ops.rs; the page in a
//! browser: tests/browser.rs.)

mod helpers;

use actix_web::http::Method;
use serde_json::{json, Value};

use helpers::{spawn_app, spawn_app_with, TestApp};

async fn get(app: &TestApp, path: &str) -> Value {
    let reply = app.request(Method::GET, path, &[], "").await;
    assert_eq!(reply.status, 200, "GET {path}: {}", reply.body);
    reply.body
}

/// `ns`'s row: (chats, messages, counted_chats), or `None` if it is not listed.
async fn counts(app: &TestApp, ns: &str) -> Option<(u64, u64, u64)> {
    let list = get(app, "/admin/namespaces").await;
    let rows = list["namespaces"].as_array().expect("rows");
    rows.iter().find(|r| r["namespace"] == ns).map(|r| {
        (r["chats"].as_u64().expect("n"), r["messages"].as_u64().expect("n"), r["counted_chats"].as_u64().expect("n"))
    })
}

/// Waits (up to 5 s) for `ns`'s row to read `want`: a send is answered when it is durable, and
/// its chat counts it as it hears so, a moment later. Asserts on the last reading.
async fn assert_counts(app: &TestApp, ns: &str, want: Option<(u64, u64, u64)>, what: &str) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let got = counts(app, ns).await;
        if got == want || std::time::Instant::now() > until {
            assert_eq!(got, want, "{ns}: {what} (chats, messages, counted chats)");
            return;
        }
        helpers::sleep_ms(20).await;
    }
}

async fn create(app: &TestApp, ns: &str, id: &str) {
    let (status, body) = app.post_ns(ns, "/chats/CreateChat", json!({ "id": id, "user_ids": ["a", id] })).await;
    assert_eq!(status, 200, "{body}");
}

async fn send(app: &TestApp, ns: &str, id: &str, n: usize) {
    for i in 0..n {
        let (status, body) = app
            .post_ns(ns, "/chats/SendMessage", json!({ "chat_id": id, "author_id": "a", "text": format!("m{i}") }))
            .await;
        assert_eq!(status, 200, "{body}");
    }
}

#[actix_web::test]
async fn namespaces_count_their_chats_and_messages_through_deletion_and_restart() {
    let app = spawn_app().await;
    assert_eq!(get(&app, "/admin/namespaces").await, json!({ "namespaces": [], "total": 0, "more": 0 }));
    create(&app, "alpha", "one").await;
    create(&app, "alpha", "two").await;
    create(&app, "beta", "x").await;
    send(&app, "alpha", "one", 3).await;
    send(&app, "alpha", "two", 1).await;
    send(&app, "beta", "x", 2).await;
    // A repeated client id is one message, not two.
    for _ in 0..2 {
        let body = json!({ "chat_id": "x", "user_id": "a", "text": "again", "client": "c-1" });
        let (status, reply) = app.post_ns("beta", "/chat/Send", body).await;
        assert_eq!(status, 200, "{reply}");
    }
    assert_counts(&app, "alpha", Some((2, 4, 2)), "two chats, four sends").await;
    assert_counts(&app, "beta", Some((1, 3, 1)), "a repeated send counted once").await;
    let list = get(&app, "/admin/namespaces").await;
    assert_eq!((list["total"].as_u64(), list["more"].as_u64()), (Some(2), Some(0)));

    // A deleted chat takes its messages with it.
    let (status, body) = app.post_ns("alpha", "/chat/Delete", json!({ "group_id": "two" })).await;
    assert_eq!(status, 200, "{body}");
    assert_counts(&app, "alpha", Some((1, 3, 1)), "after a deletion").await;

    // After a restart the chats are counted at once, their messages once each chat loads.
    let app = app.restart().await;
    assert_counts(&app, "alpha", Some((1, 0, 0)), "after a restart").await;
    let (status, body) = app.post_ns("alpha", "/chat/History", json!({ "chat_id": "one" })).await;
    assert_eq!(status, 200, "{body}");
    assert_counts(&app, "alpha", Some((1, 3, 1)), "counted when it loaded").await;
    send(&app, "alpha", "one", 1).await;
    assert_counts(&app, "alpha", Some((1, 4, 1)), "a send after the restart").await;
    assert_counts(&app, "beta", Some((1, 0, 0)), "an idle chat is not read to count it").await;
    assert_eq!(get(&app, "/admin/held").await, json!({ "chats": [], "total": 0, "more": 0 }));
    app.stop().await;
}

#[actix_web::test]
async fn the_namespace_list_answers_at_most_100_rows_and_says_how_many_more() {
    let app = spawn_app().await;
    for n in 0..130 {
        create(&app, &format!("ns-{n:03}"), "c").await;
    }
    let list = get(&app, "/admin/namespaces").await;
    let rows = list["namespaces"].as_array().expect("rows");
    assert_eq!(rows.len(), 100);
    assert_eq!((list["total"].as_u64(), list["more"].as_u64()), (Some(130), Some(30)));
    assert_eq!(rows[0]["namespace"], "ns-000", "by name");
    assert_eq!(rows[99]["namespace"], "ns-099");
    app.stop().await;
}

/// A chat held out after a log segment went missing is listed, with its namespace and id; the
/// chat that serves is not.
#[actix_web::test]
async fn a_chat_held_out_after_corruption_is_listed() {
    let app = spawn_app_with(|s| s.storage.segment_bytes = 4096).await;
    let early = app.new_chat(&["a"]).await;
    for n in 0..40 {
        app.send(&early, "a", &format!("early message {n} {}", "x".repeat(200))).await;
    }
    app.checkpoint().await;
    let late = app.new_chat(&["b"]).await;
    app.send(&late, "b", "late").await;
    let app = app
        .restart_after(|data| {
            let mut segments: Vec<_> =
                std::fs::read_dir(data.join("wal")).expect("wal").map(|e| e.expect("entry").path()).collect();
            segments.sort();
            assert!(segments.len() >= 4, "several segments: {segments:?}");
            std::fs::remove_file(&segments[1]).expect("remove a segment");
        })
        .await;
    let held = get(&app, "/admin/held").await;
    assert_eq!((held["total"].as_u64(), held["more"].as_u64()), (Some(1), Some(0)), "{held}");
    assert_eq!(held["chats"][0]["namespace"], "micro", "{held}");
    assert_eq!(held["chats"][0]["id"], early.as_str(), "{held}");
    assert!(held["chats"][0]["chat"].is_u64(), "{held}");
    app.stop().await;
}

/// A browser on the server's host is a loopback peer: no other origin may read what the
/// operator's resources answer it (no `Access-Control-Allow-Origin`), while the API keeps CORS.
#[actix_web::test]
async fn no_other_origin_may_read_the_operators_resources() {
    let app = spawn_app().await;
    let origin = [("origin", "http://elsewhere.example")];
    for path in ["/admin", "/admin/namespaces", "/admin/held", "/metrics", "/ready"] {
        let reply = app.request(Method::GET, path, &origin, "").await;
        assert_eq!(reply.status, 200, "GET {path}");
        assert_eq!(reply.header("access-control-allow-origin"), None, "GET {path} from another origin");
        let preflight = app.request(Method::OPTIONS, path, &origin, "").await;
        assert_eq!(preflight.header("access-control-allow-origin"), None, "OPTIONS {path}");
    }
    let reply = app.post_raw("/chat/List", "{}", &origin).await;
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"), "the API keeps CORS");
    app.stop().await;
}

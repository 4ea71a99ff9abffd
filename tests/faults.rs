//! Storage faults the server must survive without a restart or a lie (docs/DESIGN.md section 2,
//! rules 4-6). A full disk is a real one: a small tmpfs mounted for the test (root only; the test
//! skips elsewhere unless `CHATD_REQUIRE_POWERCUT=1`, as `.ci/run` sets).

mod helpers;

use std::io::Write;
use std::path::Path;
use std::process::Command;

use serde_json::json;

use helpers::{free_port, Chatd};

/// A tmpfs of `size` at `at`, unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).expect("mount point");
        let ok = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(at).status();
        match ok {
            Ok(status) if status.success() => Some(Tmpfs(at.to_path_buf())),
            _ if std::env::var("CHATD_REQUIRE_POWERCUT").is_ok_and(|v| v == "1") => {
                panic!("CHATD_REQUIRE_POWERCUT=1 but a tmpfs cannot be mounted here (root is needed)")
            }
            _ => None,
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes zeros to `path` until the filesystem is full.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).expect("filler");
    let chunk = vec![0u8; 64 << 10];
    while file.write_all(&chunk).is_ok() {}
    let _ = file.sync_all();
}

/// A full disk answers 507 `DiskFull` and harms nothing acknowledged; once space returns, sends
/// succeed again without a restart, with seqs gap-free (the messages refused in flight leave no
/// hole, and none of them is stored); every acknowledged message survives a `kill -9` after that.
/// Before the fix the first full-disk write put the log out of service for good (507 until a
/// restart).
#[actix_web::test]
async fn a_full_disk_is_507_and_sends_resume_once_space_returns() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(disk) = Tmpfs::mount(&dir.path().join("disk"), "8m") else {
        eprintln!("skipped: a tmpfs cannot be mounted here (root is needed)");
        return;
    };
    let port = free_port();
    let server = Chatd::start(&disk.0, port).await;
    let api = server.api.clone();
    let chat = api.new_chat(&["u"]).await;
    let text = "x".repeat(16_000);
    let send = |n: usize| {
        let (api, chat, text) = (api.clone(), chat.clone(), text.clone());
        async move {
            let body =
                json!({ "chat_id": chat, "user_id": "u", "text": format!("{n} {text}"), "client_id": format!("m{n}") });
            api.post("/chat/Send", body).await.expect("an answer")
        }
    };
    // client id -> seq of every acknowledged message; the refused ones must not be stored.
    let mut acked = std::collections::BTreeMap::new();
    let mut refused = std::collections::BTreeSet::new();
    for n in 0..10 {
        let (status, body) = send(n).await;
        assert_eq!(status, 200, "{body}");
        acked.insert(format!("m{n}"), body["message"]["seq"].as_u64().expect("seq"));
    }
    fill(&disk.0.join("filler"));
    // The log's preallocated room takes some more; then the disk is full, with 16 sends in
    // flight at a time, so some are refused while others of the same chat are queued.
    let mut n = 10;
    while refused.is_empty() && n < 4000 {
        let answers = futures_util::future::join_all((n..n + 16).map(send)).await;
        for (i, (status, body)) in answers.into_iter().enumerate() {
            let id = format!("m{}", n + i);
            match status {
                200 => drop(acked.insert(id, body["message"]["seq"].as_u64().expect("seq"))),
                507 => {
                    assert_eq!(body["id"], "chat.Send.DiskFull", "{body}");
                    refused.insert(id);
                }
                other => panic!("send {id} answered {other}: {body}"),
            }
        }
        n += 16;
    }
    assert!(!refused.is_empty(), "the disk filled up");
    // A batch of 16 may not fit where a single message still does: use up the log's room.
    loop {
        let (status, body) = send(n).await;
        match status {
            200 => drop(acked.insert(format!("m{n}"), body["message"]["seq"].as_u64().expect("seq"))),
            507 => break,
            other => panic!("send m{n} answered {other}: {body}"),
        }
        n += 1;
        assert!(n < 8000, "the disk never filled for single sends");
    }

    std::fs::remove_file(disk.0.join("filler")).expect("free the space");
    let (status, body) = send(n).await;
    assert_eq!(status, 200, "space is back, no restart: {body}");
    acked.insert(format!("m{n}"), body["message"]["seq"].as_u64().expect("seq"));
    let check = |history: Vec<serde_json::Value>, when: &str| {
        let seqs: Vec<u64> = history.iter().map(|m| m["seq"].as_u64().expect("seq")).collect();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "{when}: seqs gap-free");
        let stored: std::collections::BTreeMap<String, u64> = history
            .iter()
            .map(|m| (m["client_id"].as_str().expect("client_id").to_owned(), m["seq"].as_u64().expect("seq")))
            .collect();
        assert_eq!(stored, acked, "{when}: exactly the acknowledged messages, at their seqs");
    };
    check(api.history(&chat).await, "after the disk filled");
    assert!(refused.iter().all(|id| !acked.contains_key(id)));

    server.kill9();
    let server = Chatd::start(&disk.0, port).await;
    check(server.api.history(&chat).await, "after kill -9");
    server.kill9();
}

/// A chat's snapshot (its metadata or its index) truncated, or replaced by garbage, is rebuilt
/// from the log: every message is served as before. An index cut at a chunk boundary looks
/// whole: its metadata snapshot's count tells it from a torn append.
#[actix_web::test]
async fn a_damaged_snapshot_is_rebuilt_from_the_log() {
    for (damage, files) in [
        ("truncate", helpers::snapshot_files as fn(&std::path::Path) -> Vec<std::path::PathBuf>),
        ("garbage", helpers::snapshot_files),
        ("truncate", helpers::index_files),
        ("garbage", helpers::index_files),
        ("empty", helpers::index_files),
    ] {
        let app = helpers::spawn_app().await;
        let chat = app.new_chat(&["a", "b"]).await;
        for n in 0..20 {
            app.send(&chat, "a", &format!("message {n}")).await;
        }
        let before = app.history(json!({ "chat_id": chat })).await;
        let app = app
            .restart_after(|data| {
                let snaps = files(data);
                assert_eq!(snaps.len(), 1, "one chat snapshot: {snaps:?}");
                match damage {
                    "empty" => std::fs::write(&snaps[0], b"").expect("empty"),
                    "truncate" => {
                        let len = std::fs::metadata(&snaps[0]).expect("snapshot").len();
                        let file = std::fs::OpenOptions::new().write(true).open(&snaps[0]).expect("open");
                        file.set_len(len / 2).expect("cut");
                    }
                    _ => std::fs::write(&snaps[0], b"not a snapshot at all").expect("garbage"),
                }
            })
            .await;
        assert_eq!(app.history(json!({ "chat_id": chat })).await, before, "{damage}: served from the log");
        app.stop().await;
    }
}

/// A log segment gone missing is reported and never passed over: the chats whose records it held
/// answer 503 (across restarts too), every other chat serves. Before, such a chat was not held
/// out at all.
#[actix_web::test]
async fn a_missing_log_segment_holds_out_its_chats_and_no_other() {
    let app = helpers::spawn_app_with(|s| s.storage.segment_bytes = 4096).await;
    let early = app.new_chat(&["a"]).await;
    for n in 0..40 {
        app.send(&early, "a", &format!("early message {n} {}", "x".repeat(200))).await;
    }
    app.checkpoint().await;
    let late = app.new_chat(&["b"]).await;
    for n in 0..5 {
        app.send(&late, "b", &format!("late message {n}")).await;
    }
    let app = app
        .restart_after(|data| {
            let wal = data.join("wal");
            let mut segments: Vec<_> =
                std::fs::read_dir(&wal).expect("wal").map(|e| e.expect("entry").path()).collect();
            segments.sort();
            assert!(segments.len() >= 4, "several segments: {segments:?}");
            // A segment of the early chat's messages, well before the checkpoint.
            std::fs::remove_file(&segments[1]).expect("remove a segment");
        })
        .await;
    let (status, body) = app.post("/chat/History", json!({ "chat_id": early })).await;
    helpers::assert_error(status, &body, 503, "chat.History.Unavailable");
    assert_eq!(app.history(json!({ "chat_id": late })).await.len(), 5, "the other chat serves");
    let app = app.restart().await;
    let (status, _) = app.post("/chat/History", json!({ "chat_id": early })).await;
    assert_eq!(status, 503, "still held out after another restart");
    app.stop().await;
}

/// An fsync that fails (EIO, from the power-loss filesystem) puts the log out of service: that
/// send and every later write answer 500, a retry is never answered as if it had been stored,
/// and a restart serves every message acknowledged before the failure, each once; the message
/// that failed may be sent again and is stored once. (With the failure retried as a success,
/// the sends after it would be acknowledged and lost.)
#[actix_web::test]
async fn a_failed_fsync_stops_the_log_and_a_restart_recovers_everything_acknowledged() {
    if !helpers::can_run_powercut("the fsync EIO test") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut pc, mnt) = helpers::PowerCut::mount_in(dir.path());
    let port = free_port();
    let server = Chatd::start(&mnt, port).await;
    let api = server.api.clone();
    let chat = api.new_chat(&["u"]).await;
    let other = api.new_chat(&["v"]).await;
    let mut acked = Vec::new();
    for n in 0..10 {
        let id = format!("before-{n}");
        api.send_ok(&chat, &id).await;
        acked.push(id);
    }
    pc.command("eio-fsync 1").expect("arm the fault");
    let (status, body) = api.send(&chat, "failed").await.expect("an answer");
    helpers::assert_error(status.try_into().expect("a status"), &body, 500, "chat.Send.Internal");
    for (chat, id) in [(&chat, "failed"), (&chat, "after"), (&other, "elsewhere")] {
        let (status, body) = api.send(chat, id).await.expect("an answer");
        assert_eq!(status, 500, "the log takes no more writes ({id}): {body}");
    }
    let (status, body) = api.post("/chat/New", json!({ "user_ids": ["w"] })).await.expect("an answer");
    assert_eq!(status, 500, "nor creations: {body}");
    server.kill9();

    pc.command("clear").expect("disarm");
    let server = Chatd::start(&mnt, port).await;
    let ids: Vec<String> =
        server.api.history(&chat).await.iter().map(|m| m["client_id"].as_str().expect("id").into()).collect();
    assert_eq!(ids[..acked.len()], acked[..], "every acknowledged message, once, in order");
    // The write that failed its fsync was never acknowledged: it may or may not have reached the
    // disk, and nothing written after the failure did.
    assert!(ids[acked.len()..].iter().all(|id| id == "failed"), "only the unacknowledged one: {ids:?}");
    let seq = server.api.send_ok(&chat, "failed").await;
    assert_eq!(seq, acked.len() as u64 + 1);
    assert_eq!(server.api.send_ok(&chat, "failed").await, seq, "a retry of it is stored once");
    assert_eq!(server.api.history(&chat).await.len(), acked.len() + 1);
    server.kill9();
    pc.unmount();
}

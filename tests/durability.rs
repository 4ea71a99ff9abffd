//! Durability (docs/API.md section 6, docs/DESIGN.md section 2): crashes under load, torn and garbage log
//! tails, clean SIGTERM stops, idle chats leaving memory, corruption in the middle of the log.
//!
//! Most tests run the real `chatd` binary as a child process ([`helpers::Chatd`]), so a crash is
//! a real `kill -9`. Every message a test sends has the text `text of <client_id>`
//! ([`helpers::text_of`]), so any message read back can be checked against its client id.

mod helpers;

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use chatd::config::Membership;
use helpers::{check_chat, free_port, server_log, sleep_ms, snapshot_files, spawn_app_with, text_of, Api, Chatd};

// ---------------------------------------------------------------------------------------------
// Load and log-segment helpers of these tests (the server and client helpers are the harness's)
// ---------------------------------------------------------------------------------------------

/// A sent message that got its 200: (chat, client id, seq).
type Acked = (String, String, u64);
/// A send that got no answer: (chat, client id).
type Unanswered = (String, String);
type Sender = actix_web::rt::task::JoinHandle<(Vec<Acked>, Unanswered)>;

/// Starts `tasks` senders that each send to every chat in turn, as fast as answers come, until
/// their first failure (the server going away). Each returns what was acknowledged and the send
/// it got no answer to. An HTTP error answer fails the test.
fn start_load(api: &Api, chats: &[String], tasks: usize) -> Vec<Sender> {
    (0..tasks)
        .map(|t| {
            let (api, chats) = (api.clone(), chats.to_vec());
            actix_web::rt::spawn(async move {
                let mut acked = Vec::new();
                for i in 0.. {
                    let chat = chats[(t + i) % chats.len()].clone();
                    let client_id = format!("task{t}-msg{i}");
                    match api.send(&chat, &client_id).await {
                        Ok((200, body)) => {
                            let seq = body["message"]["seq"].as_u64().expect("seq");
                            acked.push((chat, client_id, seq));
                        }
                        Ok((status, body)) => panic!("Send {client_id}: {status} {body}"),
                        Err(_) => return (acked, (chat, client_id)),
                    }
                }
                unreachable!()
            })
        })
        .collect()
}

async fn join_load(senders: Vec<Sender>) -> (Vec<Acked>, Vec<Unanswered>) {
    let (mut acked, mut unanswered) = (Vec::new(), Vec::new());
    for sender in senders {
        let (a, u) = sender.await.expect("a sender panicked");
        acked.extend(a);
        unanswered.push(u);
    }
    (acked, unanswered)
}

/// The highest-numbered log segment (names are zero-padded numbers, so they sort).
fn last_segment(dir: &Path) -> PathBuf {
    let mut segments: Vec<PathBuf> = fs::read_dir(dir.join("data/wal"))
        .expect("read wal dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    segments.sort();
    segments.pop().expect("no log segment")
}

/// Where the records of a log segment end: frames are a 20-byte header (the payload length
/// first) and the payload; the writer lays zeros ahead of the last one.
fn data_end(bytes: &[u8]) -> u64 {
    let mut at = 0;
    while at + 20 <= bytes.len() && bytes[at..at + 20].iter().any(|&b| b != 0) {
        at += 20 + u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
    }
    at.min(bytes.len()) as u64
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// Proves "ack after durable" and "retry-safe" across a real crash: after kill -9 in the middle of
/// concurrent sends to several chats, every acknowledged message is there exactly once at the seq
/// it was acknowledged with, seqs have no gaps, and retrying the unanswered sends stores each at
/// most once (a retry of one that did reach the log returns the stored seq).
#[actix_web::test]
async fn crash_mid_load_keeps_every_acknowledged_message_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let server = Chatd::start(dir.path(), port).await;
    let mut chats = Vec::new();
    for i in 0..4 {
        chats.push(server.api.new_chat(&[&format!("user{i}"), "u"]).await);
    }

    let load = start_load(&server.api, &chats, 8);
    sleep_ms(400).await;
    server.kill9();
    let (acked, unacked) = join_load(load).await;
    assert!(acked.len() >= 50, "only {} sends acknowledged", acked.len());

    let server = Chatd::start(dir.path(), port).await;
    let mut stored = HashMap::new();
    for chat in &chats {
        stored.insert(chat.clone(), check_chat(chat, &server.api.history(chat).await));
    }
    for (chat, client_id, seq) in &acked {
        assert_eq!(stored[chat].get(client_id), Some(seq), "acknowledged {client_id} (seq {seq}) in chat {chat}");
    }

    // Retry every unanswered send: one that reached the log answers with its stored seq.
    let mut reached_log = 0;
    for (chat, client_id) in &unacked {
        let seq = server.api.send_ok(chat, client_id).await;
        match stored[chat].get(client_id) {
            Some(&was) => {
                assert_eq!(seq, was, "retry of stored {client_id}");
                reached_log += 1;
            }
            None => assert!(seq > stored[chat].len() as u64, "{client_id} got seq {seq}"),
        }
    }
    for chat in &chats {
        let now = check_chat(chat, &server.api.history(chat).await);
        for (client_id, seq) in &stored[chat] {
            assert_eq!(now.get(client_id), Some(seq), "{client_id} moved");
        }
        for (_, client_id) in unacked.iter().filter(|(c, _)| c == chat) {
            assert!(now.contains_key(client_id), "retried {client_id} is missing");
        }
    }
    eprintln!(
        "{} acknowledged, {} unanswered at the kill ({} of which had reached the log)",
        acked.len(),
        unacked.len(),
        reached_log
    );
}

/// Proves a torn last record (a crash in the middle of a write) is cut off with a warning: the
/// server starts, serves every message before it gap-free, gives the next send the torn
/// message's seq, and that send is stored where later reads and restarts find it.
#[actix_web::test]
async fn torn_tail_is_cut_and_server_serves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let server = Chatd::start(dir.path(), port).await;
    let chat = server.api.new_chat(&["alice", "bob"]).await;
    for i in 1..=20 {
        assert_eq!(server.api.send_ok(&chat, &format!("first-{i:02}")).await, i);
    }
    let (status, _) = server.sigterm().await;
    assert!(status.success(), "clean stop: {status}");

    // Messages 21..=30 are only in the log (no checkpoint runs this fast), then a crash.
    let server = Chatd::start(dir.path(), port).await;
    for i in 21..=30 {
        assert_eq!(server.api.send_ok(&chat, &format!("second-{i:02}")).await, i);
    }
    server.kill9();

    // Tear the last record (message 30) in half.
    let segment = last_segment(dir.path());
    let end = data_end(&fs::read(&segment).expect("read segment"));
    let file = OpenOptions::new().write(true).open(&segment).expect("open");
    file.set_len(end - 5).expect("truncate");
    drop(file);

    let server = Chatd::start(dir.path(), port).await;
    assert!(server_log(dir.path()).contains("torn write"), "no warning about the torn write");
    let msgs = server.api.history(&chat).await;
    check_chat(&chat, &msgs);
    assert_eq!(msgs.len(), 29, "every message before the torn one");
    assert_eq!(msgs[19]["client_id"], "first-20");
    assert_eq!(msgs[28]["client_id"], "second-29");
    assert_eq!(server.api.send_ok(&chat, "after-the-cut").await, 30);
    assert_eq!(server.api.history(&chat).await[29]["client_id"], "after-the-cut");

    // The new record was appended where the cut left the log: a crash now loses nothing.
    server.kill9();
    let server = Chatd::start(dir.path(), port).await;
    let msgs = server.api.history(&chat).await;
    check_chat(&chat, &msgs);
    assert_eq!(msgs.len(), 30);
    assert_eq!(msgs[29]["client_id"], "after-the-cut");
}

/// Proves garbage after the last record (random bytes, or the zero-filled tail a file system may
/// leave after a crash) is cut off: the log is truncated back to its last good record, every
/// acknowledged message is served, and the next send gets the next seq and survives a crash.
#[actix_web::test]
async fn garbage_tail_is_cut_and_server_serves() {
    let random: Vec<u8> = (0..7).flat_map(|_| uuid::Uuid::new_v4().into_bytes()).collect();
    for garbage in [random, vec![0u8; 4096]] {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let server = Chatd::start(dir.path(), port).await;
        let chat = server.api.new_chat(&["carol", "dave"]).await;
        for i in 1..=15 {
            assert_eq!(server.api.send_ok(&chat, &format!("msg-{i:02}")).await, i);
        }
        server.kill9();

        // The garbage goes right after the last record (over the zeros the writer lays ahead).
        let segment = last_segment(dir.path());
        let good_end = data_end(&fs::read(&segment).expect("read segment"));
        let file = OpenOptions::new().write(true).open(&segment).expect("open");
        file.write_all_at(&garbage, good_end).expect("write garbage");
        drop(file);

        let server = Chatd::start(dir.path(), port).await;
        let bytes = fs::read(&segment).expect("read segment");
        assert_eq!(data_end(&bytes), good_end, "the log does not end at its last good record");
        assert!(bytes[good_end as usize..].iter().all(|&b| b == 0), "the garbage was not cut off");
        let msgs = server.api.history(&chat).await;
        check_chat(&chat, &msgs);
        assert_eq!(msgs.len(), 15);
        assert_eq!(server.api.send_ok(&chat, "after-the-cut").await, 16);
        server.kill9();

        let server = Chatd::start(dir.path(), port).await;
        let msgs = server.api.history(&chat).await;
        check_chat(&chat, &msgs);
        assert_eq!(msgs.len(), 16);
        assert_eq!(msgs[15]["client_id"], "after-the-cut");
    }
}

/// Proves a SIGTERM during concurrent sends stops the server with exit status 0 within 10 s,
/// snapshots the chats, and keeps every acknowledged message at its seq; seqs continue after
/// the restart.
#[actix_web::test]
async fn sigterm_exits_zero_and_keeps_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let server = Chatd::start(dir.path(), port).await;
    let chats = vec![server.api.new_chat(&["erin", "u"]).await, server.api.new_chat(&["frank", "u"]).await];
    let load = start_load(&server.api, &chats, 4);
    sleep_ms(200).await;
    let (status, took) = server.sigterm().await;
    let (acked, _) = join_load(load).await;
    assert!(status.success(), "SIGTERM: {status}");
    assert!(!acked.is_empty());
    assert!(snapshot_files(&dir.path().join("data")).len() >= chats.len(), "the clean stop wrote no chat snapshots");

    let server = Chatd::start(dir.path(), port).await;
    for chat in &chats {
        let stored = check_chat(chat, &server.api.history(chat).await);
        for (_, client_id, seq) in acked.iter().filter(|(c, ..)| c == chat) {
            assert_eq!(stored.get(client_id), Some(seq), "acknowledged {client_id}");
        }
        let next = stored.len() as u64 + 1;
        assert_eq!(server.api.send_ok(chat, &format!("after-{chat}")).await, next);
    }
    let (status, _) = server.sigterm().await;
    assert!(status.success(), "second SIGTERM: {status}");
    eprintln!("exited {took:?} after SIGTERM, {} acknowledged", acked.len());
}

/// Proves idle chat actors stop (memory follows the chats in use), snapshot their index on the
/// way out, and are reloaded on demand with every message in order, their de-duplication
/// state intact and seqs continuing; a second idle cycle keeps the new message too.
#[actix_web::test]
async fn idle_chats_leave_memory_and_read_back() {
    let app = spawn_app_with(|s| {
        s.chat.idle_timeout_secs = 1;
        s.chat.membership = Membership::Open;
    })
    .await;
    let api = Api::new(app.port);

    let live = || app.live_chats();
    let wait_idle = || async {
        let deadline = Instant::now() + Duration::from_secs(10);
        while live().await > 0 {
            assert!(Instant::now() < deadline, "chats still live after 10 s idle");
            sleep_ms(100).await;
        }
    };

    let mut chats = Vec::new();
    for name in ["gina", "hank", "ivan"] {
        chats.push(api.new_chat(&[name, "u"]).await);
    }
    for i in 1..=5 {
        for chat in &chats {
            assert_eq!(api.send_ok(chat, &format!("{chat}-{i}")).await, i);
        }
    }
    assert!(live().await > 0, "the chats in use are live");
    wait_idle().await;
    assert_eq!(snapshot_files(&app.data_dir()).len(), chats.len());

    for chat in &chats {
        let msgs = api.history(chat).await;
        check_chat(chat, &msgs);
        let ids: Vec<String> = (1..=5).map(|i| format!("{chat}-{i}")).collect();
        assert_eq!(msgs.iter().map(|m| m["client_id"].clone()).collect::<Vec<_>>(), ids);
        // The reloaded chat still knows its client ids: a retry is answered, not stored again.
        assert_eq!(api.send_ok(chat, &format!("{chat}-3")).await, 3);
        assert_eq!(api.send_ok(chat, &format!("{chat}-6")).await, 6);
    }
    assert!(live().await > 0, "reads and sends start the chats again");

    // Stopping again snapshots the message sent after the reload.
    wait_idle().await;
    for chat in &chats {
        let msgs = api.history(chat).await;
        check_chat(chat, &msgs);
        assert_eq!(msgs.len(), 6);
        assert_eq!(msgs[5]["client_id"], format!("{chat}-6"));
    }

    app.stop().await;
}

/// Proves a damaged record followed by good ones is not served as data nor silently dropped:
/// the server starts, the chat that lost a message answers 503 `Unavailable` (History and
/// Send), the other chat, whose records surround the damage, serves every message.
#[actix_web::test]
async fn corruption_before_the_tail_is_not_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let (a, b) = corrupt_message_of_a(dir.path(), port, 2).await;

    let server = Chatd::start(dir.path(), port).await;
    assert!(server_log(dir.path()).contains("CORRUPTION"), "not reported");
    check_damaged_a_and_healthy_b(&server.api, &a, &b).await;
    assert_eq!(server.api.send_ok(&b, "b-11").await, 11);
}

/// Writes chats A and B with messages interleaved in the log (A1 B1 A2 B2 ... A10 B10, only in
/// the log: no checkpoint runs this fast), crashes, and flips a byte inside A's message `n`.
async fn corrupt_message_of_a(dir: &Path, port: u16, n: u32) -> (String, String) {
    let server = Chatd::start(dir, port).await;
    let a = server.api.new_chat(&["anna", "u"]).await;
    let b = server.api.new_chat(&["bert", "u"]).await;
    for i in 1..=10 {
        server.api.send_ok(&a, &format!("a-{i:02}")).await;
        server.api.send_ok(&b, &format!("b-{i:02}")).await;
    }
    server.kill9();

    let segment = last_segment(dir);
    let mut bytes = fs::read(&segment).expect("read segment");
    let needle = text_of(&format!("a-{n:02}")).into_bytes();
    let found: Vec<usize> = (0..bytes.len() - needle.len()).filter(|&i| bytes[i..].starts_with(&needle)).collect();
    assert_eq!(found.len(), 1, "the record of a-{n:02} is not unique");
    bytes[found[0] + 2] ^= 0x20;
    fs::write(&segment, bytes).expect("write segment");
    (a, b)
}

async fn check_damaged_a_and_healthy_b(api: &Api, a: &str, b: &str) {
    for (path, body) in [
        ("/chat/History", json!({ "chat_id": a, "after_seq": 0, "limit": 1000 })),
        ("/chat/Send", json!({ "chat_id": a, "user_id": "u", "text": text_of("a-new"), "client_id": "a-new" })),
    ] {
        let (status, body) = api.post(path, body).await.expect(path);
        let endpoint = path.trim_start_matches("/chat/");
        assert_eq!(status, 503, "{path} of the damaged chat: {body}");
        assert_eq!(body["id"], format!("chat.{endpoint}.Unavailable"), "{body}");
    }
    let msgs = api.history(b).await;
    check_chat(b, &msgs);
    let ids: Vec<String> = (1..=10).map(|i| format!("b-{i:02}")).collect();
    assert_eq!(msgs.iter().map(|m| m["client_id"].clone()).collect::<Vec<_>>(), ids);
}

/// Proves the same damage still keeps chat A out of service after a second restart: recovery
/// must not forget the corruption once it has moved its replay point past the damaged record
/// (the catalog keeps the held-out chats).
#[actix_web::test]
async fn corruption_stays_held_out_after_another_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let (a, b) = corrupt_message_of_a(dir.path(), port, 2).await;
    let server = Chatd::start(dir.path(), port).await;
    check_damaged_a_and_healthy_b(&server.api, &a, &b).await;
    server.kill9();

    let server = Chatd::start(dir.path(), port).await;
    check_damaged_a_and_healthy_b(&server.api, &a, &b).await;
}

/// Proves damage to a chat's *last* record is caught too, with no later record of that chat to
/// reveal a gap: the record's own checksummed header names its chat, so the damage is pinned on
/// it rather than silently dropped.
#[actix_web::test]
async fn damage_to_a_chats_last_record_holds_that_chat_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let (a, b) = corrupt_message_of_a(dir.path(), port, 10).await;
    let server = Chatd::start(dir.path(), port).await;
    check_damaged_a_and_healthy_b(&server.api, &a, &b).await;
}

/// The frames of a log segment as (offset, length), in order, up to the zeros laid ahead.
fn frames(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 20 <= bytes.len() && bytes[at..at + 20].iter().any(|&b| b != 0) {
        let len = 20 + u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        out.push((at, len));
        at += len;
    }
    out
}

/// Proves a torn final write is cut, not mistaken for corruption, even when pages after the
/// damage reached the disk (power loss may persist a write's pages out of order). The disk is
/// made to look like power failed before the last two batches were fsynced: they lose their
/// commit records and the first of them a byte, leaving a valid record after the damage but no
/// commit after it. Such batches were never acknowledged under fsync = "always"; the server cuts
/// them with a warning, holds no chat out, and everything before serves.
#[actix_web::test]
async fn a_torn_final_write_with_good_pages_after_the_damage_is_cut() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let server = Chatd::start(dir.path(), port).await;
    let chat = server.api.new_chat(&["erin", "frank"]).await;
    for i in 1..=10 {
        assert_eq!(server.api.send_ok(&chat, &format!("m-{i:02}")).await, i);
    }
    server.kill9();

    // Sequential sends: the last four frames are [m-09][commit][m-10][commit].
    let segment = last_segment(dir.path());
    let mut bytes = fs::read(&segment).expect("read segment");
    let frames = frames(&bytes);
    let [m09, commit09, m10, commit10] = frames[frames.len() - 4..] else { panic!("too few frames") };
    assert_eq!((commit09.1, commit10.1), (21, 21), "not commit records where expected");
    assert!(m10.1 > 21);
    bytes[m09.0 + m09.1 - 3] ^= 0x40;
    for (at, len) in [commit09, commit10] {
        bytes[at..at + len].fill(0);
    }
    fs::write(&segment, &bytes).expect("write segment");

    let server = Chatd::start(dir.path(), port).await;
    let log = server_log(dir.path());
    assert!(log.contains("torn write"), "no warning about the torn write");
    assert!(!log.contains("CORRUPTION"), "a torn write was reported as corruption");
    let msgs = server.api.history(&chat).await;
    check_chat(&chat, &msgs);
    assert_eq!(msgs.len(), 8, "the two unacknowledged batches are cut, everything before stays");
    assert_eq!(server.api.send_ok(&chat, "after-the-cut").await, 9);
}

/// Membership changes and deletions made since the last checkpoint replay from their records
/// after `kill -9`: members are as they were (an Invite, which makes a member, included), `New`
/// answers the same chats, a deleted chat stays gone and its messages erased.
#[actix_web::test]
async fn membership_and_deletion_replay_after_kill_9() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let server = Chatd::start(dir.path(), port).await;
    let api = &server.api;
    let ok = |path: &'static str, body: serde_json::Value| async move {
        let (status, reply) = api.post(path, body).await.expect("an answer");
        assert_eq!(status, 200, "{path}: {reply}");
        reply
    };
    let a = api.new_chat(&["m1", "m2"]).await;
    ok("/chat/Leave", json!({ "group_id": a, "user_id": "m2" })).await;
    let pair = api.new_chat(&["m1", "m2"]).await;
    let group = ok("/chat/Create", json!({ "name": "g", "private": true, "user_ids": ["m1", "m3"] })).await;
    let group = group["group"]["id"].as_str().expect("group id").to_owned();
    let invited = ok("/chat/Invite", json!({ "group_id": group, "user_id": "m4" })).await;
    assert_eq!(invited["group"]["user_ids"], json!(["m1", "m3", "m4"]), "an Invite makes a member");
    let kicked = ok("/chat/Kick", json!({ "group_id": group, "user_id": "m3" })).await;
    assert_eq!(kicked["group"]["user_ids"], json!(["m1", "m4"]));
    let doomed = api.new_chat(&["m5"]).await;
    api.send_ok(&doomed, "doomed-message").await;
    ok("/chat/Delete", json!({ "group_id": doomed })).await;
    server.kill9();

    let server = Chatd::start(dir.path(), port).await;
    let api = &server.api;
    let members = |id: String| async move {
        let (status, body) =
            api.post("/chat/Leave", json!({ "group_id": id, "user_id": "nobody" })).await.expect("Leave");
        assert_eq!(status, 200, "{body}");
        body["group"]["user_ids"].clone()
    };
    assert_eq!(members(a.clone()).await, json!(["m1"]));
    assert_eq!(members(group.clone()).await, json!(["m1", "m4"]));
    assert_eq!(api.new_chat(&["m1"]).await, a);
    assert_eq!(api.new_chat(&["m1", "m2"]).await, pair);
    let (status, _) = api.post("/chat/History", json!({ "chat_id": doomed })).await.expect("History");
    assert_eq!(status, 404, "a deleted chat stays deleted");
    assert_eq!(helpers::grep(&dir.path().join("data"), &text_of("doomed-message")), 0);
    server.kill9();
}

/// Proves a chat made and never written to costs no file of its own, and loses nothing for it:
/// a chat from `New` (with a member who left) and a group from `Create` with only members keep
/// their members and creation time across a clean stop, and across a `kill -9` after a
/// checkpoint (and one made after it), with no `chat-*` file in `snap/` (their catalog entries
/// hold them) and without the slow rebuild from the whole log; the first message then gives a
/// chat its files.
/// Fails with the snapshot of such chats writing their files as before (the files are there),
/// or with the catalog dropping their creation times (each chat is rebuilt from the log).
#[actix_web::test]
async fn a_chat_never_written_to_has_no_files_and_survives_stop_and_kill_9() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let port = free_port();
    let env = [("CHATD__STORAGE__CHECKPOINT_INTERVAL_SECS", "1")];
    let chat_files = || {
        let snap = fs::read_dir(data.join("snap")).expect("snap dir");
        let names = snap.map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned());
        names.filter(|n| n.starts_with("chat-")).collect::<Vec<_>>()
    };
    // What a chat is: (members, creation time), as Leave of nobody answers it.
    let describe = |api: Api, id: String| async move {
        let (status, body) =
            api.post("/chat/Leave", json!({ "group_id": id, "user_id": "nobody" })).await.expect("Leave");
        assert_eq!(status, 200, "{body}");
        (body["group"]["user_ids"].clone(), body["group"]["created_at"].clone())
    };

    let server = Chatd::start_with(dir.path(), port, &env).await;
    let api = server.api.clone();
    let pair = api.new_chat(&["nf1", "nf2", "nf3"]).await;
    let (status, body) = api.post("/chat/Leave", json!({ "group_id": pair, "user_id": "nf3" })).await.expect("Leave");
    assert_eq!(status, 200, "{body}");
    let (status, body) = api.post("/chat/Create", json!({ "user_ids": ["nf4", "nf5"] })).await.expect("Create");
    assert_eq!(status, 200, "{body}");
    let group = body["group"]["id"].as_str().expect("group id").to_owned();
    let before_stop = [describe(api.clone(), pair.clone()).await, describe(api.clone(), group.clone()).await];
    assert_eq!(before_stop[0].0, json!(["nf1", "nf2"]));
    sleep_ms(1100).await; // creation times are whole seconds: a rebuilt one would not differ otherwise
    let (status, _) = server.sigterm().await;
    assert!(status.success(), "SIGTERM: {status}");
    assert_eq!(chat_files(), Vec::<String>::new(), "chats never written to have no files after a clean stop");

    let server = Chatd::start_with(dir.path(), port, &env).await;
    let api = server.api.clone();
    let after_stop = [describe(api.clone(), pair.clone()).await, describe(api.clone(), group.clone()).await];
    assert_eq!(after_stop, before_stop, "members and creation times after a clean stop");
    assert_eq!(api.new_chat(&["nf1", "nf2"]).await, pair, "found by its members");
    // One more chat and one more change, then a checkpoint (it writes the catalog with both).
    let late = api.new_chat(&["nf6", "nf7"]).await;
    let (status, body) = api.post("/chat/Leave", json!({ "group_id": group, "user_id": "nf5" })).await.expect("Leave");
    assert_eq!(status, 200, "{body}");
    let before_kill = [
        describe(api.clone(), pair.clone()).await,
        describe(api.clone(), group.clone()).await,
        describe(api.clone(), late.clone()).await,
    ];
    let catalog = data.join("snap/catalog.snap");
    let has_late = || fs::read(&catalog).is_ok_and(|b| b.windows(late.len()).any(|w| w == late.as_bytes()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !has_late() {
        assert!(Instant::now() < deadline, "no checkpoint wrote the new chat into the catalog in 10 s");
        sleep_ms(100).await;
    }
    sleep_ms(1100).await; // and the next checkpoint after that, whole
                          // And one made after the last checkpoint: only the log has it.
    let (status, body) = api.post("/chat/Create", json!({ "user_ids": ["nf8"] })).await.expect("Create");
    assert_eq!(status, 200, "{body}");
    let fresh = body["group"]["id"].as_str().expect("group id").to_owned();
    let fresh_before = describe(api.clone(), fresh.clone()).await;
    server.kill9();
    assert_eq!(chat_files(), Vec::<String>::new(), "chats never written to have no files after a checkpoint");

    let server = Chatd::start_with(dir.path(), port, &env).await;
    let api = server.api.clone();
    let after_kill = [
        describe(api.clone(), pair.clone()).await,
        describe(api.clone(), group.clone()).await,
        describe(api.clone(), late.clone()).await,
    ];
    assert_eq!(after_kill, before_kill, "members and creation times after a kill -9");
    assert_eq!(describe(api.clone(), fresh.clone()).await, fresh_before, "a chat only the log has");
    assert_eq!(after_kill[1].0, json!(["nf4"]));
    // The first message gives a chat its files, and it keeps the message.
    api.send_ok(&pair, "first-of-pair").await;
    let (status, _) = server.sigterm().await;
    assert!(status.success(), "SIGTERM: {status}");
    assert_eq!(chat_files().len(), 2, "the chat written to has its files: {:?}", chat_files());
    let server = Chatd::start_with(dir.path(), port, &env).await;
    let msgs = server.api.history(&pair).await;
    assert_eq!(check_chat(&pair, &msgs).get("first-of-pair"), Some(&1));
    assert_eq!(describe(server.api.clone(), pair.clone()).await, before_kill[0]);
    let log = server_log(dir.path());
    assert!(!log.contains("rebuilding the chat from the log"), "a bare chat was rebuilt from the log:\n{log}");
    server.kill9();
}

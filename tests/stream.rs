//! Real-time streams (`chat.Connect`, docs/API.md section 4): WebSocket and Server-Sent Events,
//! against the real server started in-process on port 0 with a temporary data dir.
//!
//! The server and its clients are the harness's (`tests/helpers`). Every read has a timeout,
//! so a bug fails a test instead of hanging it.

mod helpers;

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::time::timeout;

use chatd::config::{FsyncMode, Membership};
use helpers::{
    assert_error_frame, assert_message_shape, connect_url, enc, seqs, spawn_app, spawn_app_with, Got, Who, WsReader,
    WAIT,
};

// ---- 1. live delivery ----

/// Messages sent over HTTP and over two WebSockets reach every subscriber (two WebSockets
/// and a third, read-only one) in the same seq order, the senders' own echoes included.
#[actix_web::test]
async fn every_subscriber_gets_every_message_in_the_same_order_with_its_own_echo() {
    const N: usize = 60;
    let srv = spawn_app().await;
    let chat = srv.new_chat(&["alice", "bob"]).await;
    // Three paths, and the three ways of naming the chat: query, query, headers.
    let a = srv.ws(&connect_url("/chat/Connect", &chat, "alice"), &Who::default()).await;
    let b = srv.ws(&connect_url("/chat/Chat/Connect", &chat, "bob"), &Who::default()).await;
    let c = srv.ws_with("/v1/chat/Connect", &[("Chat-Id", &chat), ("User-Id", "carol")]).await;

    let read_all = |mut rx: WsReader| actix_web::rt::spawn(async move { rx.messages(N).await });
    let (got_a, got_b, got_c) = (read_all(a.rx), read_all(b.rx), read_all(c.rx));
    let (mut a_tx, mut b_tx) = (a.tx, b.tx);

    // client_id -> (user, text, way); and each way's client ids in the order sent.
    let mut sent: HashMap<String, (&str, String, &str)> = HashMap::new();
    let mut order: HashMap<&str, Vec<String>> = HashMap::new();
    let mut http_replies: HashMap<String, Value> = HashMap::new();
    for i in 0..N {
        let (user, way) = match i % 4 {
            0 => ("alice", "http"),
            1 => ("alice", "ws-a"),
            2 => ("bob", "http"),
            _ => ("bob", "ws-b"),
        };
        let client_id = format!("{way}-{i}");
        let text = format!("message {i} from {user} over {way}");
        match way {
            "http" => {
                let reply = srv.send_with_client_id(&Who::default(), &chat, user, &text, &client_id).await;
                http_replies.insert(client_id.clone(), reply);
            }
            "ws-a" => a_tx.send(json!({ "text": text, "client_id": client_id, "subject": "s" })).await,
            _ => b_tx.send(json!({ "text": text, "client_id": client_id, "subject": "s" })).await,
        }
        sent.insert(client_id.clone(), (user, text, way));
        order.entry(way).or_default().push(client_id);
    }

    let got_a = got_a.await.expect("reader a");
    let got_b = got_b.await.expect("reader b");
    let got_c = got_c.await.expect("reader c");
    assert_eq!(seqs(&got_a), (1..=N as u64).collect::<Vec<_>>());
    assert_eq!(got_a, got_b, "two subscribers saw different streams");
    assert_eq!(got_a, got_c, "the read-only subscriber saw a different stream");

    let mut seen = HashSet::new();
    for m in &got_a {
        assert_message_shape(m);
        assert_eq!(m["chat_id"], chat.as_str(), "{m}");
        let client_id = m["client_id"].as_str().expect("client_id").to_owned();
        assert!(seen.insert(client_id.clone()), "delivered twice: {m}");
        let (user, text, way) = sent.get(&client_id).unwrap_or_else(|| panic!("a message nobody sent: {m}"));
        assert_eq!(m["user_id"], *user, "{m}");
        assert_eq!(m["text"], text.as_str(), "{m}");
        if *way == "http" {
            assert_eq!(&http_replies[&client_id], m, "Send's reply differs from the streamed copy");
        } else {
            assert_eq!(m["subject"], "s", "{m}");
        }
    }
    assert_eq!(seen.len(), N);
    // Each sender's messages keep the order they were sent in.
    for (way, want) in &order {
        let got: Vec<String> =
            got_a.iter().map(|m| m["client_id"].as_str().unwrap().to_owned()).filter(|c| sent[c].2 == *way).collect();
        assert_eq!(&got, want, "order of the messages sent over {way}");
    }
    // The streams are what History holds.
    assert_eq!(srv.history_as(&Who::default(), &chat).await, got_a);
}

// ---- 2. retry-safety over the stream ----

/// A frame sent again with the same client_id (over the socket and over HTTP, racing and
/// after the fact) is stored once and streamed once.
#[actix_web::test]
async fn a_websocket_send_retried_with_the_same_client_id_is_stored_and_streamed_once() {
    let srv = spawn_app().await;
    let chat = srv.new_chat(&["alice", "bob"]).await;
    let mut a = srv.ws(&connect_url("/chat/Connect", &chat, "alice"), &Who::default()).await;
    let mut b = srv.ws(&connect_url("/chat/Connect", &chat, "bob"), &Who::default()).await;

    let frame = json!({ "text": "hello", "client_id": "retry-1" });
    a.tx.send(frame.clone()).await;
    // The same client_id over HTTP, racing the frame: one of them stores it, the other waits.
    let racing = srv.send_with_client_id(&Who::default(), &chat, "alice", "hello", "retry-1").await;
    a.tx.send(frame.clone()).await;
    a.tx.send(json!({ "text": "a different text", "client_id": "retry-1" })).await;
    let first = a.rx.message().await;
    assert_eq!(first["client_id"], "retry-1");
    assert_eq!(first["seq"], 1);
    assert_eq!(first["text"], "hello");
    assert_eq!(racing, first, "the racing HTTP retry got another message");
    // Once it is durable, an HTTP retry returns the stored message.
    let later = srv.send_with_client_id(&Who::default(), &chat, "alice", "yet another text", "retry-1").await;
    assert_eq!(later, first);
    a.tx.send(frame).await;
    a.tx.send(json!({ "text": "after", "client_id": "after-1" })).await;

    // Frames are handled in order, so the marker comes after every retry was answered.
    let next = a.rx.message().await;
    assert_eq!(next["client_id"], "after-1", "a retry was streamed again");
    assert_eq!(next["seq"], 2);
    assert_eq!(b.rx.messages(2).await, vec![first.clone(), next.clone()]);
    a.rx.assert_silent(Duration::from_millis(300)).await;
    b.rx.assert_silent(Duration::from_millis(300)).await;

    let history = srv.history_as(&Who::default(), &chat).await;
    assert_eq!(history, vec![first, next], "History after the retries");
}

// ---- 3. resuming with `since` ----

/// A reader that drops its socket twice and reconnects with `since` = the last seq it saw,
/// while another task keeps sending, ends up with exactly seq 1..N: no gap, no duplicate.
#[actix_web::test]
async fn resuming_with_since_while_others_send_loses_and_repeats_nothing() {
    const N: u64 = 240;
    const PER_CONNECTION: usize = 40;
    let srv = Rc::new(spawn_app().await);
    let chat = srv.new_chat(&["alice", "bob"]).await;
    let mut ws = srv.ws(&connect_url("/chat/Connect", &chat, "bob"), &Who::default()).await;

    let sent = Rc::new(Cell::new(0u64));
    let sender = {
        let (srv, chat, sent) = (srv.clone(), chat.clone(), sent.clone());
        actix_web::rt::spawn(async move {
            for i in 1..=N {
                srv.send_with_client_id(&Who::default(), &chat, "alice", &format!("m{i}"), &format!("c{i}")).await;
                sent.set(i);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };

    let mut all: Vec<Value> = Vec::new();
    let mut resumed_while_sending = 0;
    let paths = ["/chat/Chat/Connect", "/v1/chat/Connect"];
    for path in paths {
        all.extend(ws.rx.messages(PER_CONNECTION).await);
        drop(ws); // the socket goes away mid-stream
        tokio::time::sleep(Duration::from_millis(30)).await;
        let last = all.last().expect("a message")["seq"].as_u64().unwrap();
        if sent.get() < N {
            resumed_while_sending += 1;
        }
        let url = format!("{}&since={last}", connect_url(path, &chat, "bob"));
        ws = srv.ws(&url, &Who::default()).await;
        let next = ws.rx.message().await;
        assert_eq!(next["seq"], last + 1, "the first message after since={last}");
        all.push(next);
    }
    loop {
        let last = all.last().unwrap()["seq"].as_u64().unwrap();
        if last >= N {
            break;
        }
        all.push(ws.rx.message().await);
    }
    timeout(WAIT, sender).await.expect("the sender finishes").expect("the sender task");
    ws.rx.assert_silent(Duration::from_millis(200)).await;

    assert!(resumed_while_sending > 0, "the sender finished before any reconnect: nothing concurrent was tested");
    let got = seqs(&all);
    assert_eq!(got, (1..=N).collect::<Vec<_>>(), "gaps or duplicates");
    for m in &all {
        let seq = m["seq"].as_u64().unwrap();
        assert_eq!(m["text"], format!("m{seq}"), "{m}");
    }
}

/// A replay longer than one page of the log (500) joins the live stream with no gap and no
/// duplicate, on a WebSocket and on SSE, while another task keeps sending.
#[actix_web::test]
async fn a_long_replay_joins_the_live_stream_without_gap() {
    const BEFORE: usize = 1200;
    const DURING: usize = 100;
    const N: u64 = (BEFORE + DURING) as u64;
    let srv = Rc::new(spawn_app_with(|s| s.storage.fsync = FsyncMode::Never).await);
    let chat = srv.new_chat(&["alice", "bob"]).await;
    futures_util::stream::iter(1..=BEFORE)
        .map(|i| {
            let (srv, chat) = (srv.clone(), chat.clone());
            async move {
                srv.send_with_client_id(&Who::default(), &chat, "alice", "old", &format!("c{i}")).await;
            }
        })
        .buffer_unordered(8)
        .collect::<()>()
        .await;

    let mut ws = srv.ws(&format!("{}&since=0", connect_url("/chat/Connect", &chat, "bob")), &Who::default()).await;
    let mut sse = srv.sse(&format!("{}&since=0", connect_url("/chat/Connect", &chat, "bob")), &Who::default()).await;
    let sender = {
        let (srv, chat) = (srv.clone(), chat.clone());
        actix_web::rt::spawn(async move {
            for i in 1..=DURING {
                srv.send_with_client_id(&Who::default(), &chat, "alice", "new", &format!("d{i}")).await;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    let mut ws_seqs = Vec::new();
    let mut sse_seqs = Vec::new();
    while ws_seqs.len() < N as usize || sse_seqs.len() < N as usize {
        if ws_seqs.len() < N as usize {
            ws_seqs.extend(seqs(&ws.rx.messages(50).await));
        }
        if sse_seqs.len() < N as usize {
            sse_seqs.extend(sse.messages(50).await.0);
        }
    }
    timeout(WAIT, sender).await.expect("the sender finishes").expect("the sender task");
    assert_eq!(ws_seqs, (1..=N).collect::<Vec<_>>(), "WebSocket");
    assert_eq!(sse_seqs, (1..=N).collect::<Vec<_>>(), "SSE");
    ws.rx.assert_silent(Duration::from_millis(200)).await;
}

// ---- 4. slow readers ----

/// A subscriber that stops reading is disconnected (1013, or the connection ends) before it
/// gets everything, while another one receives every message in order.
#[actix_web::test]
async fn a_reader_that_stops_reading_is_cut_off_while_others_get_everything() {
    // 256 queued messages plus the socket buffers hold a few MB: send well over that.
    const N: usize = 2500;
    const SENDERS: usize = 4;
    let srv = Rc::new(
        spawn_app_with(|s| {
            s.storage.fsync = FsyncMode::Never;
            s.chat.membership = Membership::Open;
        })
        .await,
    );
    let chat = srv.new_chat(&["alice"]).await;
    let mut slow = srv.ws(&connect_url("/chat/Connect", &chat, "slow"), &Who::default()).await;
    let fast = srv.ws(&connect_url("/chat/Connect", &chat, "fast"), &Who::default()).await;
    let mut fast_rx = fast.rx;
    let fast_reader = actix_web::rt::spawn(async move { fast_rx.seqs_of(N).await });

    let padding = "x".repeat(16_000);
    futures_util::stream::iter(1..=N)
        .map(|i| {
            let srv = srv.clone();
            let text = format!("{i} {padding}");
            let chat = chat.clone();
            async move {
                srv.send_with_client_id(&Who::default(), &chat, "alice", &text, &format!("c{i}")).await;
            }
        })
        .buffer_unordered(SENDERS)
        .collect::<()>()
        .await;

    let fast_seqs = timeout(WAIT, fast_reader).await.expect("the fast reader finishes").expect("the fast reader task");
    assert_eq!(fast_seqs, (1..=N as u64).collect::<Vec<_>>());

    // Now the slow one reads: what was buffered, then the end.
    let mut got = 0u64;
    let end = loop {
        match slow.rx.next().await {
            Got::Json(m) => {
                got += 1;
                assert_eq!(m["seq"], got, "the slow reader's stream is not in order: {m}");
            }
            other => break other,
        }
    };
    match &end {
        Got::Closed(Some(reason)) => {
            assert_eq!(u16::from(reason.code), 1013, "close reason for a slow reader: {reason:?}")
        }
        Got::Closed(None) => panic!("closed without a code; expected 1013"),
        Got::Ended | Got::Failed(_) => {}
        Got::Json(_) => unreachable!(),
    }
    assert!((got as usize) < N, "the slow reader got all {N} messages: it was never cut off");
    eprintln!("the slow reader got {got} of {N} messages, then {end:?}");
}

// ---- 5. SSE ----

/// SSE events carry the seq as `id:`; `since` replays; `Last-Event-ID` resumes (and wins over
/// `since`); without either only new messages arrive.
#[actix_web::test]
async fn sse_streams_with_seq_ids_and_resumes_from_last_event_id() {
    let srv = spawn_app().await;
    let chat = srv.new_chat(&["alice", "bob"]).await;
    for i in 1..=3 {
        srv.send_with_client_id(&Who::default(), &chat, "alice", &format!("m{i}"), &format!("c{i}")).await;
    }

    let mut s1 = srv.sse(&format!("{}&since=0", connect_url("/chat/Connect", &chat, "bob")), &Who::default()).await;
    assert_eq!(s1.messages(3).await.0, vec![1, 2, 3], "replay of since=0");
    for i in 4..=6 {
        srv.send_with_client_id(&Who::default(), &chat, "alice", &format!("m{i}"), &format!("c{i}")).await;
    }
    assert_eq!(s1.messages(3).await.0, vec![4, 5, 6], "live");

    // An EventSource reconnecting: its original URL (since=1) plus Last-Event-ID: 4.
    let mut s2 = srv
        .sse_with(&format!("{}&since=1", connect_url("/v1/chat/Connect", &chat, "bob")), &[("Last-Event-ID", "4")])
        .await;
    assert_eq!(s2.messages(2).await.0, vec![5, 6], "resume after Last-Event-ID: 4");
    // Without since or Last-Event-ID: only new messages.
    let mut s3 = srv.sse(&connect_url("/chat/Chat/Connect", &chat, "bob"), &Who::default()).await;
    srv.send_with_client_id(&Who::default(), &chat, "alice", "m7", "c7").await;
    assert_eq!(s2.messages(1).await.0, vec![7]);
    assert_eq!(s3.messages(1).await.0, vec![7], "a stream without since");
    let (seqs_1, msgs_1) = s1.messages(1).await;
    assert_eq!(seqs_1, vec![7]);

    // The data is the Message exactly as History returns it.
    let history = srv.history_as(&Who::default(), &chat).await;
    assert_eq!(history.len(), 7);
    assert_eq!(msgs_1[0], history[6]);
    let mut s4 = srv.sse_with(&connect_url("/chat/Connect", &chat, "bob"), &[("Last-Event-ID", "0")]).await;
    assert_eq!(s4.messages(7).await.1, history, "Last-Event-ID: 0 replays all");
}

// ---- 6. fatal errors ----

/// An unknown chat: one error frame `chat.Connect.NotFound`, then close 4404. No chat named
/// (the first frame names none): `chat.Connect.MissingChatID`, then close 4400.
#[actix_web::test]
async fn connect_errors_send_one_error_frame_then_close_with_4000_plus_code() {
    let srv = spawn_app().await;
    let chat = srv.new_chat(&["alice"]).await;

    let mut ws = srv.ws(&connect_url("/chat/Connect", "no-such-chat", "alice"), &Who::default()).await;
    let frame = ws.rx.json().await;
    assert_error_frame(&frame, 404, "chat.Connect.NotFound", None);
    let reason = ws.rx.closed().await;
    assert_eq!(u16::from(reason.code), 4404, "{reason:?}");
    assert_eq!(reason.description.as_deref(), Some("chat.Connect.NotFound"));

    // The chat exists, but in another namespace than the one named.
    let mut ws =
        srv.ws(&format!("{}&namespace=elsewhere", connect_url("/chat/Connect", &chat, "alice")), &Who::default()).await;
    assert_error_frame(&ws.rx.json().await, 404, "chat.Connect.NotFound", None);
    assert_eq!(u16::from(ws.rx.closed().await.code), 4404);

    let mut ws = srv.ws("/chat/Connect", &Who::default()).await;
    ws.tx.send(json!({ "user_id": "alice" })).await;
    let frame = ws.rx.json().await;
    assert_error_frame(&frame, 400, "chat.Connect.MissingChatID", None);
    let reason = ws.rx.closed().await;
    assert_eq!(u16::from(reason.code), 4400, "{reason:?}");
    assert_eq!(reason.description.as_deref(), Some("chat.Connect.MissingChatID"));

    // The same errors on SSE are plain micro error responses.
    let (status, body) = srv.sse_fails(&connect_url("/chat/Connect", "no-such-chat", "alice"), &Who::default()).await;
    assert_eq!(status, 404, "{body}");
    assert_error_frame(&body, 404, "chat.Connect.NotFound", None);
    let (status, body) = srv.sse_fails("/chat/Connect?user_id=alice", &Who::default()).await;
    assert_eq!(status, 400, "{body}");
    assert_error_frame(&body, 400, "chat.Connect.MissingChatID", None);
}

// ---- 7. the first frame ----

/// With no query parameters or headers, a first frame names the chat, user, namespace and
/// `since`; the stream then works both ways.
#[actix_web::test]
async fn a_first_frame_can_name_the_chat() {
    let srv = spawn_app().await;
    let ns = "acme";
    let chat = srv.new_chat_as(&Who::in_namespace(ns), &["alice", "bob"]).await;
    for i in 1..=3 {
        srv.send_with_client_id(&Who::in_namespace(ns), &chat, "bob", &format!("m{i}"), &format!("c{i}")).await;
    }

    let mut ws = srv.ws("/chat/Connect", &Who::default()).await;
    ws.tx.send(json!({ "chat_id": chat, "user_id": "alice", "namespace": ns, "since": "1" })).await;
    let replay = ws.rx.messages(2).await;
    assert_eq!(seqs(&replay), vec![2, 3], "replay after since=1");
    assert_eq!(replay[0]["text"], "m2");

    ws.tx.send(json!({ "text": "hi from a first-frame stream", "client_id": "ff-1" })).await;
    let echo = ws.rx.message().await;
    assert_eq!(echo["seq"], 4);
    assert_eq!(echo["client_id"], "ff-1");
    assert_eq!(echo["user_id"], "alice", "the user named in the first frame");
    assert_eq!(echo["chat_id"], chat.as_str());

    srv.send_with_client_id(&Who::in_namespace(ns), &chat, "bob", "m5", "c5").await;
    let live = ws.rx.message().await;
    assert_eq!((live["seq"].as_u64(), live["text"].as_str()), (Some(5), Some("m5")));

    let history = srv.history_as(&Who::in_namespace(ns), &chat).await;
    assert_eq!(history.len(), 5);
    assert_eq!(history[3], echo);
}

/// `since` in a first frame is an integer field: a JSON number must do as well as a string
/// (docs/API.md section 1: integer fields accept a number or a numeric string).
#[actix_web::test]
async fn a_first_frame_may_give_since_as_a_number() {
    let srv = spawn_app().await;
    let chat = srv.new_chat(&["alice"]).await;
    for i in 1..=3 {
        srv.send_with_client_id(&Who::default(), &chat, "alice", &format!("m{i}"), &format!("c{i}")).await;
    }
    let mut ws = srv.ws("/chat/Connect", &Who::default()).await;
    ws.tx.send(json!({ "chat_id": chat, "user_id": "alice", "since": 1 })).await;
    let first = ws.rx.json().await;
    assert_eq!(first["seq"], 2, "expected the replay of seq 2, got {first}");
}

// ---- 8. frames that fail Send's checks ----

/// A frame that fails Send's checks gets an error frame carrying its client_id; the stream
/// stays open and a later valid frame is posted and echoed.
#[actix_web::test]
async fn a_bad_frame_gets_an_error_frame_and_the_stream_stays_open() {
    let srv = spawn_app().await;
    let chat = srv.new_chat(&["alice", "bob"]).await;
    let mut ws = srv.ws(&connect_url("/chat/Connect", &chat, "alice"), &Who::default()).await;
    let mut watcher = srv.ws(&connect_url("/chat/Connect", &chat, "bob"), &Who::default()).await;

    ws.tx.send(json!({ "subject": "no text", "client_id": "bad-1" })).await;
    assert_error_frame(&ws.rx.json().await, 400, "chat.Send.MissingText", Some("bad-1"));
    ws.tx.send(json!({ "text": "", "client_id": "bad-2" })).await;
    assert_error_frame(&ws.rx.json().await, 400, "chat.Send.MissingText", Some("bad-2"));
    ws.tx.send_text("this is not JSON").await;
    assert_error_frame(&ws.rx.json().await, 400, "chat.Send.BadRequest", None);
    let too_long = "x".repeat(srv.settings.limits.max_text_bytes + 1);
    ws.tx.send(json!({ "text": too_long, "client_id": "bad-3" })).await;
    assert_error_frame(&ws.rx.json().await, 413, "chat.Send.TooLarge", Some("bad-3"));

    ws.tx.send(json!({ "text": "fine", "client_id": "good-1" })).await;
    let echo = ws.rx.message().await;
    assert_eq!(echo["client_id"], "good-1");
    assert_eq!(echo["seq"], 1, "a failed frame used up a seq");
    assert_eq!(watcher.rx.message().await, echo);

    // A stream without a user, and a non-member's stream, can read but not send.
    let mut anonymous = srv.ws(&format!("/chat/Connect?chat_id={}", enc(&chat)), &Who::default()).await;
    anonymous.tx.send(json!({ "text": "who am I", "client_id": "anon-1" })).await;
    assert_error_frame(&anonymous.rx.json().await, 400, "chat.Send.MissingUserID", Some("anon-1"));
    let mut outsider = srv.ws(&connect_url("/chat/Connect", &chat, "mallory"), &Who::default()).await;
    outsider.tx.send(json!({ "text": "let me in", "client_id": "out-1" })).await;
    assert_error_frame(&outsider.rx.json().await, 403, "chat.Send.Forbidden", Some("out-1"));

    ws.tx.send(json!({ "text": "still fine", "client_id": "good-2" })).await;
    let echo2 = ws.rx.message().await;
    assert_eq!(echo2["seq"], 2);
    assert_eq!(anonymous.rx.message().await, echo2);
    assert_eq!(outsider.rx.message().await, echo2);
    assert_eq!(srv.history_as(&Who::default(), &chat).await, vec![echo, echo2]);
}

// ---- 9. shutdown ----

/// Stopping the server closes open WebSockets with 1001 and ends SSE streams, and the
/// server still stops cleanly.
#[actix_web::test]
async fn shutdown_closes_open_streams_with_1001() {
    let srv = spawn_app().await;
    let chat = srv.new_chat(&["alice"]).await;
    let mut ws = srv.ws(&connect_url("/chat/Connect", &chat, "alice"), &Who::default()).await;
    let mut sse = srv.sse(&connect_url("/chat/Connect", &chat, "alice"), &Who::default()).await;
    srv.send_with_client_id(&Who::default(), &chat, "alice", "before the end", "c1").await;
    assert_eq!(ws.rx.message().await["seq"], 1);
    assert_eq!(sse.messages(1).await.0, vec![1]);

    let stopper = srv.handle.clone();
    let stopping = actix_web::rt::spawn(async move { stopper.stop(true).await });
    let reason = ws.rx.closed().await;
    assert_eq!(u16::from(reason.code), 1001, "{reason:?}");
    assert!(sse.next().await.is_none(), "the SSE stream goes on after shutdown");
    timeout(WAIT, stopping).await.expect("stop returns").expect("the stop task");
    srv.wait_stopped().await;
}

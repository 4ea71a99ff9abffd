//! Hardening (issue 8; docs/API.md sections 4, 5 and 8): what a hostile or stalled client can make
//! the server hold, and what credentials and settings give away. Each test runs against the real
//! server: in-process through `helpers`, or the `chatd` binary where its memory is measured.
//!
//! The clients here are raw TCP sockets where the point is a client that misbehaves at the
//! byte level (a frame header announcing 2^40 bytes, a socket that never reads).

mod helpers;

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command};
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix_web::rt::net::TcpStream;
use awc::ws::Frame;
use futures_util::StreamExt;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{sleep, timeout};

use chatd::config::{ApiKey, FsyncMode, Membership, Settings};
use helpers::{assert_error, spawn_app, spawn_app_with, TestApp};

const ACME_KEY: &str = "acme-backend-key-hardening-0123";
const ACME_SECRET: &str = "acme's user token secret, hardening";
const BETA_SECRET: &str = "beta's user token secret, hardening";

// ---- 1. WebSocket frames ----

/// A frame header announcing 2^40 bytes, then bytes as fast as the socket takes them, before
/// any chat is named: the server refuses it at once with close 1009, its memory does not grow
/// with the bytes, and it soon ends the connection. Measured on the `chatd` binary, so nothing
/// else in this test process counts.
#[test]
fn a_frame_announcing_2_pow_40_bytes_closes_1009_and_is_never_buffered() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    /// Past this growth the test has failed: stop feeding the server before it eats the machine.
    const GIVE_UP_KIB: u64 = 64 << 10;
    let chatd = Binary::start(&[]);
    let mut socket = std::net::TcpStream::connect(("127.0.0.1", chatd.port)).expect("connect");
    socket.set_read_timeout(Some(Duration::from_secs(20))).expect("read timeout");
    socket.write_all(upgrade_request("/chat/Connect").as_bytes()).expect("handshake");
    let mut buf = Vec::new();
    let head = read_head_blocking(&mut socket, &mut buf);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let before = chatd.rss_kib();

    // Reads every server frame until the close (or the end), concurrently with the writer.
    let mut reader = socket.try_clone().expect("clone");
    let read = std::thread::spawn(move || {
        let mut frames = Vec::new();
        let mut chunk = [0u8; 16 << 10];
        loop {
            while let Some((frame, used)) = parse_server_frame(&buf) {
                buf.drain(..used);
                let close = frame.0 == 0x8;
                frames.push(frame);
                if close {
                    return frames;
                }
            }
            match reader.read(&mut chunk) {
                Ok(0) | Err(_) => return frames,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    });
    // Writes until the server ends the connection (or 10 s, or the test gives up).
    let give_up = Arc::new(AtomicBool::new(false));
    let write = {
        let give_up = give_up.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut header = vec![0x81, 0x80 | 127];
            header.extend_from_slice(&(1u64 << 40).to_be_bytes());
            header.extend_from_slice(&[1, 2, 3, 4]);
            let mut sent = 0usize;
            let mut ended = socket.write_all(&header).is_err();
            let block = vec![b'x'; 64 << 10];
            while !ended && !give_up.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(10) {
                match socket.write(&block) {
                    Ok(n) => sent += n,
                    Err(_) => ended = true,
                }
            }
            (sent, ended.then(|| started.elapsed()))
        })
    };
    let mut peak = before;
    while !write.is_finished() {
        peak = peak.max(chatd.rss_kib());
        if peak - before > GIVE_UP_KIB {
            give_up.store(true, Ordering::Relaxed);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let (sent, ended) = write.join().expect("the writer");
    let frames = read.join().expect("the reader");
    let grew = peak - before;
    eprintln!(
        "sent {} MiB after the header; RSS grew by {grew} KiB; the server ended the connection after {ended:?}",
        sent >> 20
    );
    assert!(grew < 16 << 10, "the server grew by {grew} KiB while {} MiB arrived", sent >> 20);
    assert_eq!(close_code(&frames), Some(1009), "frames: {frames:?}");
    let error: Value = frames
        .iter()
        .find(|f| f.0 == 0x1)
        .and_then(|f| serde_json::from_slice(&f.1).ok())
        .unwrap_or_else(|| panic!("no error frame: {frames:?}"));
    assert_eq!(error["id"], "chat.Connect.TooLarge", "{error}");
    assert!(ended.is_some_and(|t| t < Duration::from_secs(5)), "the connection was still open after {ended:?}");
}

/// A text frame that is not UTF-8 closes the stream with 1007, whether it names the chat or
/// is sent on a stream already serving one.
#[actix_web::test]
async fn a_text_frame_that_is_not_utf8_closes_1007() {
    let app = spawn_app().await;
    let chat = app.new_chat(&["alice"]).await;
    for path in [format!("/chat/Connect?chat_id={chat}&user_id=alice"), "/chat/Connect".to_owned()] {
        let mut ws = RawWs::open(&app, &path).await;
        ws.send(0x1, &[b'h', b'i', 0xC3, 0x28, 0xFF]).await;
        let frames = ws.until_close(Duration::from_secs(10)).await;
        assert_eq!(close_code(&frames), Some(1007), "{path}: {frames:?}");
    }
}

/// A WebSocket that names no chat (no parameters and no first frame) gets an error frame and
/// a close 10 s after the upgrade, not a stream that holds the connection forever.
#[actix_web::test]
async fn a_websocket_that_names_no_chat_within_10_s_is_closed_with_an_error() {
    let app = spawn_app().await;
    let mut ws = RawWs::open(&app, "/chat/Connect").await;
    let started = Instant::now();
    let frames = ws.until_close(Duration::from_secs(15)).await;
    let took = started.elapsed();
    let error: Value = frames
        .iter()
        .find(|f| f.0 == 0x1)
        .and_then(|f| serde_json::from_slice(&f.1).ok())
        .unwrap_or_else(|| panic!("no error frame: {frames:?}"));
    assert_eq!(error["id"], "chat.Connect.BadRequest", "{error}");
    assert_eq!(close_code(&frames), Some(4400), "{frames:?}");
    assert!(took >= Duration::from_secs(9) && took < Duration::from_secs(13), "closed after {took:?}");
}

// ---- 2. stalled readers ----

/// A WebSocket and an SSE client that never read are disconnected (their sockets are reset)
/// within 45 s while sends of big texts go on, and a reading subscriber of the same chat gets
/// every message in order meanwhile.
#[actix_web::test]
async fn stalled_websocket_and_sse_readers_are_cut_off_within_45_s_while_others_get_everything() {
    let app = Rc::new(
        spawn_app_with(|s| {
            s.storage.fsync = FsyncMode::Never;
            s.chat.membership = Membership::Open;
        })
        .await,
    );
    let chat = app.new_chat(&["alice"]).await;
    let path = format!("/chat/Connect?chat_id={chat}&user_id=reader");

    // The stalled ones: after the upgrade (resp. the request) they read nothing at all.
    let stalled_ws = RawWs::open(&app, &path).await.stream;
    let mut stalled_sse = TcpStream::connect(("127.0.0.1", app.port)).await.expect("connect");
    let sse_request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n");
    stalled_sse.write_all(sse_request.as_bytes()).await.expect("the SSE request");

    // The reading one: every seq it gets, in arrival order.
    let (_, conn) = app.client.ws(format!("{}{path}", app.address)).connect().await.expect("a WebSocket");
    let got = Rc::new(RefCell::new(Vec::<u64>::new()));
    let reading = {
        let got = got.clone();
        actix_web::rt::spawn(async move {
            let (_sink, mut frames) = conn.split();
            while let Some(Ok(frame)) = frames.next().await {
                if let Frame::Text(bytes) = frame {
                    let m: Value = serde_json::from_slice(&bytes).expect("a JSON frame");
                    got.borrow_mut().push(m["seq"].as_u64().expect("seq"));
                }
            }
        })
    };
    // Give the SSE request time to subscribe before the first send.
    sleep(Duration::from_millis(300)).await;

    // The load: a burst far beyond what the socket buffers hold, then a steady trickle.
    let sent = Rc::new(Cell::new(0u64));
    let stop = Rc::new(Cell::new(false));
    let load = {
        let (app, chat, sent, stop) = (app.clone(), chat.clone(), sent.clone(), stop.clone());
        actix_web::rt::spawn(async move {
            let padding = "x".repeat(16_000);
            let mut i = 0u64;
            while !stop.get() {
                i += 1;
                app.send(&chat, "alice", &format!("{i} {padding}")).await;
                sent.set(i);
                if i > 1000 {
                    sleep(Duration::from_millis(200)).await;
                }
            }
        })
    };

    let started = Instant::now();
    let (mut ws_gone, mut sse_gone) = (None, None);
    while (ws_gone.is_none() || sse_gone.is_none()) && started.elapsed() < Duration::from_secs(45) {
        sleep(Duration::from_millis(250)).await;
        if ws_gone.is_none() && reset(&stalled_ws) {
            ws_gone = Some(started.elapsed());
        }
        if sse_gone.is_none() && reset(&stalled_sse) {
            sse_gone = Some(started.elapsed());
        }
    }
    stop.set(true);
    load.await.expect("the load");
    let sent = sent.get();
    eprintln!("sent {sent}; the stalled WebSocket was cut off after {ws_gone:?}, the SSE stream after {sse_gone:?}");
    assert!(ws_gone.is_some(), "the stalled WebSocket still holds its connection after 45 s");
    assert!(sse_gone.is_some(), "the stalled SSE stream still holds its connection after 45 s");

    let deadline = Instant::now() + Duration::from_secs(30);
    while (got.borrow().len() as u64) < sent && Instant::now() < deadline {
        sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(*got.borrow(), (1..=sent).collect::<Vec<_>>(), "the reading subscriber missed or reordered");
    reading.abort();
}

/// Shutdown with a stalled WebSocket and a stalled SSE reader (their sockets full): the stop
/// takes less than actix's 5 s shutdown timeout, and both stalled connections are reset.
#[actix_web::test]
async fn shutdown_does_not_wait_on_stalled_readers() {
    let app = spawn_app_with(|s| {
        s.storage.fsync = FsyncMode::Never;
        s.chat.membership = Membership::Open;
    })
    .await;
    let chat = app.new_chat(&["alice"]).await;
    let path = format!("/chat/Connect?chat_id={chat}&user_id=reader");
    let stalled_ws = RawWs::open(&app, &path).await.stream;
    let mut stalled_sse = TcpStream::connect(("127.0.0.1", app.port)).await.expect("connect");
    let sse_request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n");
    stalled_sse.write_all(sse_request.as_bytes()).await.expect("the SSE request");
    sleep(Duration::from_millis(300)).await;
    // Far more than the socket buffers and the streams' queues hold.
    let padding = "x".repeat(16_000);
    for i in 0..1000 {
        app.send(&chat, "alice", &format!("{i} {padding}")).await;
    }
    sleep(Duration::from_secs(1)).await;

    let started = Instant::now();
    timeout(Duration::from_secs(20), app.stop()).await.expect("the server stops");
    let took = started.elapsed();
    eprintln!("the server stopped in {took:?}");
    assert!(took < Duration::from_millis(4500), "the stop waited {took:?} on stalled readers");
    assert!(reset(&stalled_ws), "the stalled WebSocket's connection was not reset");
    assert!(reset(&stalled_sse), "the stalled SSE connection was not reset");
}

// ---- 3. request bodies that never arrive ----

/// `Content-Length: 1000` and then too few bytes: 408 with a micro error body after 10 s.
#[actix_web::test]
async fn a_body_not_complete_10_s_after_its_headers_is_408() {
    let app = spawn_app().await;
    let mut socket = TcpStream::connect(("127.0.0.1", app.port)).await.expect("connect");
    let request = "POST /chat/Send HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
                   Content-Length: 1000\r\n\r\n{\"chat_id\":";
    socket.write_all(request.as_bytes()).await.expect("write");
    let started = Instant::now();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let (status, body) = loop {
        let n = timeout(Duration::from_secs(15), socket.read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("no answer {:?} after the headers", started.elapsed()))
            .unwrap_or(0);
        assert!(n > 0, "the connection closed without an answer: {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
        if let Some(answer) = parse_response(&buf) {
            break answer;
        }
    };
    let took = started.elapsed();
    assert_error(status, &body, 408, "chat.Send.Timeout");
    assert!(took >= Duration::from_secs(9) && took < Duration::from_secs(13), "answered after {took:?}");
}

// ---- 4. user tokens ----

/// `nbf` in the future is 401; `aud` and `iat` are accepted and not checked; every bad token
/// gets one and the same 401 detail, which names no namespace and carries no library text.
#[actix_web::test]
async fn user_tokens_check_nbf_accept_aud_and_iat_and_refuse_alike() {
    let app = spawn_app_with(secured).await;
    let chat = {
        let reply = app
            .post_raw(
                "/chat/New",
                json!({ "user_ids": ["alice"] }).to_string(),
                &[("authorization", &format!("Bearer {ACME_KEY}")), ("micro-namespace", "acme")],
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body["chat_id"].as_str().expect("chat_id").to_owned()
    };
    let now = now_secs();
    let claims = |extra: Value| {
        let mut c = json!({ "sub": "alice", "exp": now + 3600, "ns": "acme" });
        c.as_object_mut().expect("an object").extend(extra.as_object().expect("an object").clone());
        c
    };
    let history = |token: String| {
        let app = &app;
        let chat = chat.clone();
        async move {
            let auth = format!("Bearer {token}");
            let headers = [("authorization", auth.as_str()), ("micro-namespace", "acme")];
            let reply = app.post_raw("/chat/History", json!({ "chat_id": chat }).to_string(), &headers).await;
            (reply.status, reply.body)
        }
    };

    for (what, extra) in [
        ("aud", json!({ "aud": "some-other-service" })),
        ("aud list", json!({ "aud": ["a", "b"] })),
        ("iat", json!({ "iat": now })),
        ("iat in the future", json!({ "iat": now + 600 })),
        ("nbf in the past", json!({ "nbf": now - 60 })),
        ("all of them", json!({ "aud": "x", "iat": now, "nbf": now - 1 })),
    ] {
        let (status, body) = history(jwt(ACME_SECRET, &claims(extra))).await;
        assert_eq!(status, 200, "{what}: {body}");
    }

    let bad: Vec<(&str, String)> = vec![
        ("nbf in the future", jwt(ACME_SECRET, &claims(json!({ "nbf": now + 3600 })))),
        ("bad signature", jwt("not acme's secret", &claims(json!({})))),
        ("another namespace's secret", jwt(BETA_SECRET, &claims(json!({})))),
        ("expired", jwt(ACME_SECRET, &claims(json!({ "exp": now - 10 })))),
        ("missing exp", jwt(ACME_SECRET, &json!({ "sub": "alice", "ns": "acme" }))),
        ("wrong alg", jwt_with(Header::new(Algorithm::HS512), ACME_SECRET, &claims(json!({})))),
        ("garbage", "a.b.c".to_owned()),
        ("not a token at all", "hello".to_owned()),
        ("not JSON inside", format!("{}.{}.x", b64("{\"alg\":\"HS256\"}"), b64("not json"))),
    ];
    let mut details = Vec::new();
    for (what, token) in &bad {
        let (status, body) = history(token.clone()).await;
        assert_error(status, &body, 401, "chat.History.Unauthorized");
        details.push((what.to_string(), body["detail"].as_str().unwrap_or_default().to_owned()));
    }
    // A namespace with no token secret: refused exactly alike, so nobody learns which have one.
    let gamma = jwt(ACME_SECRET, &json!({ "sub": "alice", "exp": now + 3600, "ns": "gamma" }));
    let auth = format!("Bearer {gamma}");
    let reply = app
        .post_raw(
            "/chat/New",
            json!({ "user_ids": ["alice"] }).to_string(),
            &[("authorization", &auth), ("micro-namespace", "gamma")],
        )
        .await;
    assert_error(reply.status, &reply.body, 401, "chat.New.Unauthorized");
    details.push(("a namespace without a secret".into(), reply.body["detail"].as_str().unwrap_or_default().to_owned()));

    let first = details[0].1.clone();
    for (what, detail) in &details {
        assert_eq!(detail, &first, "{what} is refused with another detail than {:?}", details[0].0);
    }
    let lower = first.to_lowercase();
    for leak in [
        "acme",
        "beta",
        "gamma",
        "configured",
        "signature",
        "base64",
        "json",
        "claim",
        "algorithm",
        "expired",
        "immature",
        "invalid token:",
    ] {
        assert!(!lower.contains(leak), "the 401 detail {first:?} gives away {leak:?}");
    }
    // A token for another namespace is still 403 (after the 401s, docs/API.md section 5).
    let (status, body) = history(jwt(ACME_SECRET, &claims(json!({ "ns": "beta" })))).await;
    assert_error(status, &body, 403, "chat.History.Forbidden");
}

// ---- 5. secrets in Debug output ----

/// Neither API keys nor token secrets appear in the settings' Debug output or in the log
/// (at trace level, refusals included), and keys from a config file and secrets from env
/// overrides still load and serve as before.
#[actix_web::test]
async fn keys_and_secrets_stay_out_of_debug_output_and_logs() {
    let mut settings = Settings::default();
    secured(&mut settings);
    for shown in [format!("{settings:?}"), format!("{settings:#?}"), format!("{:?}", settings.auth)] {
        assert!(!shown.contains(ACME_KEY), "the API key shows: {shown}");
        assert!(!shown.contains(ACME_SECRET), "a token secret shows: {shown}");
        assert!(!shown.contains(BETA_SECRET), "a token secret shows: {shown}");
        assert!(shown.contains("acme"), "the namespaces are not secret: {shown}");
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("chatd.toml");
    let toml = format!(
        "[[auth.api_keys]]\nkey = \"{ACME_KEY}\"\nnamespaces = [\"acme\"]\n\
         [auth.user_token_secrets]\nacme = \"{ACME_SECRET}\"\n"
    );
    std::fs::write(&file, toml).expect("write the config");
    let loaded = Settings::load(&file).expect("the config loads");
    assert!(!format!("{loaded:?}").contains(ACME_KEY));
    assert!(!format!("{loaded:?}").contains(ACME_SECRET));

    // The binary: the key from the file, beta's secret from an env override.
    let chatd =
        Binary::start_with(&file, &[("CHATD__AUTH__USER_TOKEN_SECRETS__BETA", BETA_SECRET), ("RUST_LOG", "trace")]);
    let client = awc::Client::default();
    let call = |ns: &'static str, bearer: String, path: &'static str, body: Value| {
        let req = client
            .post(format!("http://127.0.0.1:{}{path}", chatd.port))
            .insert_header(("authorization", format!("Bearer {bearer}")))
            .insert_header(("micro-namespace", ns));
        async move {
            let mut res = req.send_body(body.to_string()).await.expect("an answer");
            let body: Value = res.json().await.expect("a JSON body");
            (res.status(), body)
        }
    };
    let (status, body) = call("acme", ACME_KEY.into(), "/chat/New", json!({ "user_ids": ["alice"] })).await;
    assert_eq!(status, 200, "the key from the file: {body}");
    for (ns, secret) in [("acme", ACME_SECRET), ("beta", BETA_SECRET)] {
        let token = jwt(secret, &json!({ "sub": "alice", "exp": now_secs() + 60, "ns": ns }));
        let (status, body) = call(ns, token, "/chat/List", json!({})).await;
        assert_eq!(status, 200, "{ns}'s secret: {body}");
    }
    let wrong = jwt(ACME_SECRET, &json!({ "sub": "alice", "exp": now_secs() - 60, "ns": "acme" }));
    let (status, _) = call("acme", wrong, "/chat/List", json!({})).await;
    assert_eq!(status, 401);
    let log = chatd.log();
    assert!(log.contains("refused a user token"), "the trace log is not being captured: {log}");
    for secret in [ACME_KEY, ACME_SECRET, BETA_SECRET] {
        assert!(!log.contains(secret), "the log shows {secret:?}");
    }
}

// ======== helpers ========

fn secured(s: &mut Settings) {
    s.auth.api_keys = vec![ApiKey { key: ACME_KEY.into(), namespaces: vec!["acme".into()] }];
    s.auth.user_token_secrets.insert("acme".into(), ACME_SECRET.into());
    s.auth.user_token_secrets.insert("beta".into(), BETA_SECRET.into());
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("a clock after 1970").as_secs()
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

fn jwt(secret: &str, claims: &Value) -> String {
    jwt_with(Header::default(), secret, claims)
}

fn jwt_with(header: Header, secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret.as_bytes())).expect("a token")
}

fn upgrade_request(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// A server frame (opcode, payload) at the start of `buf`, and the bytes it took.
fn parse_server_frame(buf: &[u8]) -> Option<((u8, Vec<u8>), usize)> {
    if buf.len() < 2 {
        return None;
    }
    let (len, start) = match buf[1] & 0x7F {
        126 => (u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize, 4),
        127 => (u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize, 10),
        n => (n as usize, 2),
    };
    let payload = buf.get(start..start + len)?;
    Some(((buf[0] & 0x0F, payload.to_vec()), start + len))
}

/// The close code of the close frame among `frames`.
fn close_code(frames: &[(u8, Vec<u8>)]) -> Option<u16> {
    frames.iter().find(|f| f.0 == 0x8).and_then(|f| Some(u16::from_be_bytes(f.1.get(..2)?.try_into().ok()?)))
}

/// A masked client frame.
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xFA, 0x21, 0x3D];
    let mut frame = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= 0xFFFF => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// The status and JSON body of a complete HTTP response in `buf`, if it is all there.
fn parse_response(buf: &[u8]) -> Option<(awc::http::StatusCode, Value)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
    let len: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok())?;
    let body = buf.get(end + 4..end + 4 + len)?;
    let status = awc::http::StatusCode::from_bytes(head.get(9..12)?.as_bytes()).ok()?;
    Some((status, serde_json::from_slice(body).unwrap_or(Value::Null)))
}

fn read_head_blocking(socket: &mut std::net::TcpStream, buf: &mut Vec<u8>) -> String {
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            return head;
        }
        let n = socket.read(&mut chunk).expect("the response head");
        assert!(n > 0, "closed before the response head");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// True once the peer has reset the connection (read without consuming any data).
fn reset(socket: &TcpStream) -> bool {
    matches!(socket.take_error(), Ok(Some(_)) | Err(_))
}

/// A WebSocket over a raw TCP socket: frames are written and read byte by byte.
struct RawWs {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl RawWs {
    /// Upgrades `path`, expecting 101.
    async fn open(app: &TestApp, path: &str) -> RawWs {
        let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.expect("connect");
        stream.write_all(upgrade_request(path).as_bytes()).await.expect("the handshake");
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        let head = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                buf.drain(..end + 4);
                break head;
            }
            let n = timeout(Duration::from_secs(10), stream.read(&mut chunk))
                .await
                .expect("a handshake answer")
                .expect("read");
            assert!(n > 0, "{path}: closed before the response head");
            buf.extend_from_slice(&chunk[..n]);
        };
        assert!(head.starts_with("HTTP/1.1 101"), "{path}: {head}");
        RawWs { stream, buf }
    }

    async fn send(&mut self, opcode: u8, payload: &[u8]) {
        self.stream.write_all(&client_frame(opcode, payload)).await.expect("a frame");
    }

    /// Every frame until the close frame (included) or the end of the connection.
    async fn until_close(&mut self, within: Duration) -> Vec<(u8, Vec<u8>)> {
        let deadline = Instant::now() + within;
        let mut frames = Vec::new();
        let mut chunk = [0u8; 16 << 10];
        loop {
            while let Some((frame, used)) = parse_server_frame(&self.buf) {
                self.buf.drain(..used);
                let close = frame.0 == 0x8;
                frames.push(frame);
                if close {
                    return frames;
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match timeout(left, self.stream.read(&mut chunk)).await {
                Err(_) => panic!("no close within {within:?}; frames so far: {frames:?}"),
                Ok(Ok(0)) | Ok(Err(_)) => return frames,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// The `chatd` binary on a free port with a temporary data dir; killed when dropped.
struct Binary {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Binary {
    fn start(env: &[(&str, &str)]) -> Binary {
        Binary::start_with(Path::new("/nonexistent.toml"), env)
    }

    /// With config file `config` and `env` on top; the log goes to `log_path()`.
    fn start_with(config: &Path, env: &[(&str, &str)]) -> Binary {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = std::fs::File::create(dir.path().join("chatd.log")).expect("the log file");
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_chatd"));
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("CHATD")) {
            cmd.env_remove(key);
        }
        cmd.arg("--config")
            .arg(config)
            .env("CHATD__SERVER__PORT", port.to_string())
            .env("CHATD__SERVER__WORKERS", "1")
            .env("CHATD__STORAGE__DATA_DIR", dir.path().join("data"))
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .stdout(log.try_clone().expect("the log file"))
            .stderr(log);
        for (key, value) in env {
            cmd.env(key, value);
        }
        let child = cmd.spawn().expect("spawn chatd");
        let binary = Binary { child, port, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        // It listens while it recovers (answering 503): wait until /ready says it serves.
        while !ready(port) {
            assert!(Instant::now() < deadline, "chatd was not ready within 20 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        binary
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("chatd.log")).unwrap_or_default()
    }

    /// The process's resident memory, in KiB.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(Path::new("/proc").join(self.child.id().to_string()).join("status"))
            .expect("/proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }
}

/// Whether the server on `port` answers `GET /ready` with 200.
fn ready(port: u16) -> bool {
    let Ok(mut socket) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = socket.set_read_timeout(Some(Duration::from_secs(5)));
    if socket.write_all(b"GET /ready HTTP/1.1\r\nhost: chatd\r\nconnection: close\r\n\r\n").is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    socket.read_exact(&mut head).is_ok() && head.ends_with(b" 200")
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

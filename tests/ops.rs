//! What an operator relies on (src/http/admin.rs, src/http/observe.rs, src/telemetry/): `/health`,
//! `/ready`, `/metrics` and the operator page with its lists answer loopback or the admin key
//! (a bearer, or a Basic password) only; `/ready` turns 503 once the log
//! fails an fsync; `/metrics` parses as Prometheus text and moves with traffic; every answer
//! carries an `x-request-id`; JSON logs parse line by line and hold no secret and no message text.

mod helpers;

use std::net::{IpAddr, UdpSocket};
use std::time::{Duration, Instant};

use base64::Engine;
use futures_util::StreamExt;
use serde_json::{json, Value};

use helpers::{free_port, server_log, sleep_ms, Chatd};

/// GET `url` with `headers`: the status, headers and body.
async fn get(url: &str, headers: &[(&str, &str)]) -> (u16, awc::http::header::HeaderMap, String) {
    let mut request = awc::Client::builder().timeout(Duration::from_secs(20)).finish().get(url);
    for (name, value) in headers {
        request = request.insert_header((*name, *value));
    }
    let mut res = request.send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let body = res.body().limit(16 << 20).await.expect("the body");
    (res.status().as_u16(), res.headers().clone(), String::from_utf8_lossy(&body).into_owned())
}

/// Asserts a micro error body with `id` and `code`.
fn assert_micro(body: &str, code: u16, id: &str) {
    let error: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("not a micro error ({e}): {body}"));
    assert_eq!(error["id"], id, "{error}");
    assert_eq!(error["code"], code, "{error}");
    assert!(error["detail"].is_string() && error["status"].is_string(), "{error}");
}

/// This machine's address other hosts would see, if it has one besides loopback. No packet is
/// sent: connecting a UDP socket only picks the route.
fn non_loopback_ip() -> Option<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("203.0.113.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[actix_web::test]
async fn admin_endpoints_answer_loopback_or_the_admin_key_only() {
    let Some(ip) = non_loopback_ip() else {
        eprintln!("SKIPPED: this machine has no address besides loopback to call from");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let env = [
        ("CHATD__SERVER__HOST", "0.0.0.0"),
        ("CHATD__AUTH__ALLOW_ANONYMOUS", "true"),
        ("CHATD__AUTH__ADMIN_KEY", "the-admin-key"),
    ];
    let server = Chatd::start_with(dir.path(), port, &env).await;
    let admin = [
        ("/health", "chatd.Health"),
        ("/ready", "chatd.Ready"),
        ("/metrics", "chatd.Metrics"),
        ("/admin", "chatd.Admin"),
        ("/admin/namespaces", "chatd.AdminNamespaces"),
        ("/admin/held", "chatd.AdminHeld"),
    ];
    // The key as a Basic password (any user name): how a browser opens the operator page.
    let basic = |key: &str| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("ops:{key}")));
    for (path, id) in admin {
        let (status, _, body) = get(&format!("http://127.0.0.1:{port}{path}"), &[]).await;
        assert_eq!(status, 200, "{path} on loopback: {body}");
        let outside = format!("http://{ip}:{port}{path}");
        let (status, headers, body) = get(&outside, &[]).await;
        assert_eq!(status, 401, "{path} off loopback without a key: {body}");
        assert_micro(&body, 401, &format!("{id}.Unauthorized"));
        // The page's 401 asks a browser for the key; the others leave that to their clients.
        let challenge = headers.get("www-authenticate").and_then(|v| v.to_str().ok());
        assert_eq!(challenge.is_some_and(|c| c.starts_with("Basic ")), path == "/admin", "{path}: {challenge:?}");
        let (status, _, body) = get(&outside, &[("authorization", &basic("not-the-key"))]).await;
        assert_eq!(status, 403, "{path} off loopback with another Basic password: {body}");
        assert_micro(&body, 403, &format!("{id}.Forbidden"));
        let (status, _, body) = get(&outside, &[("authorization", &basic("the-admin-key"))]).await;
        assert_eq!(status, 200, "{path} off loopback with the admin key as Basic password: {body}");
        let (status, _, body) = get(&outside, &[("authorization", "Bearer not-the-key")]).await;
        assert_micro(&body, 403, &format!("{id}.Forbidden"));
        assert_eq!(status, 403);
        let (status, _, body) = get(&outside, &[("authorization", "Bearer the-admin-key")]).await;
        assert_eq!(status, 200, "{path} off loopback with the admin key: {body}");
    }
    // The API itself is not an admin endpoint.
    let (status, body) = server.api.post("/chat/New", json!({ "user_ids": ["a"] })).await.expect("New");
    assert_eq!(status, 200, "{body}");
    assert!(!server_log(dir.path()).contains("the-admin-key"), "the admin key is never logged");
    drop(server);

    // Without an admin key, off loopback is refused outright.
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let _server = Chatd::start_with(dir.path(), port, &env[..2]).await;
    let (status, _, body) = get(&format!("http://{ip}:{port}/ready"), &[("authorization", "Bearer ")]).await;
    assert_eq!(status, 403, "{body}");
    assert_micro(&body, 403, "chatd.Ready.Forbidden");
}

/// Every sample of `name` whose labels include `want`, summed (a histogram counts its samples).
fn sample(text: &str, name: &str, want: &[(&str, &str)]) -> f64 {
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text");
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && want.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => *v,
            prometheus_parse::Value::Untyped(v) => *v,
            prometheus_parse::Value::Histogram(buckets) => {
                buckets.iter().find(|b| b.less_than.is_infinite()).map_or(0.0, |b| b.count)
            }
            prometheus_parse::Value::Summary(_) => panic!("{name}: a summary, not a histogram"),
        })
        .sum()
}

#[actix_web::test]
async fn metrics_parse_as_prometheus_text_and_move_with_traffic() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let server = Chatd::start(dir.path(), port).await;
    let metrics = || async move {
        let (status, headers, body) = get(&format!("http://127.0.0.1:{port}/metrics"), &[]).await;
        assert_eq!(status, 200, "{body}");
        let kind = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        assert!(kind.starts_with("text/plain"), "{kind}");
        body
    };
    let before = metrics().await;
    let sends = [("endpoint", "chat.Send"), ("status", "200")];
    let chat = server.api.new_chat(&["u"]).await;
    for n in 0..7 {
        server.api.send_ok(&chat, &format!("m{n}")).await;
    }
    let (status, _) = server.api.post("/chat/History", json!({ "chat_id": "nowhere" })).await.expect("History");
    assert_eq!(status, 404);
    let (_, mut conn) = awc::Client::new()
        .ws(format!("ws://127.0.0.1:{port}/chat/Connect?chat_id={chat}"))
        .connect()
        .await
        .expect("a stream");
    let after = metrics().await;

    let moved = |name: &str, labels: &[(&str, &str)]| sample(&after, name, labels) - sample(&before, name, labels);
    assert_eq!(moved("chatd_requests_total", &sends), 7.0, "the sends, by endpoint and status");
    assert_eq!(moved("chatd_requests_total", &[("endpoint", "chat.History"), ("status", "404")]), 1.0);
    assert_eq!(moved("chatd_send_seconds", &[("endpoint", "chat.Send")]), 7.0, "a latency per send");
    assert!(moved("chatd_log_batch_records", &[]) >= 1.0, "log batches are measured");
    assert!(moved("chatd_log_fsync_seconds", &[]) >= 7.0, "an fsync per sequential send at least");
    assert!(sample(&after, "chatd_live_chats", &[]) >= 1.0);
    assert_eq!(sample(&after, "chatd_open_streams", &[("kind", "chat.Connect")]), 1.0, "the open stream");
    assert!(sample(&after, "chatd_disk_bytes", &[("kind", "log")]) > 0.0);
    assert!(after.contains("chatd_recovery_seconds "), "recovery time:\n{after}");
    assert_eq!(sample(&after, "chatd_log_writable", &[]), 1.0);

    // A stream closed is no longer counted.
    let _ = futures_util::SinkExt::close(&mut conn).await;
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_secs(5), conn.next()).await {}
    let deadline = Instant::now() + Duration::from_secs(10);
    while sample(&metrics().await, "chatd_open_streams", &[("kind", "chat.Connect")]) != 0.0 {
        assert!(Instant::now() < deadline, "the closed stream is still counted");
        sleep_ms(50).await;
    }
}

/// An fsync failing with EIO (the power-loss filesystem) puts the log out of service: `/ready`
/// turns 503 naming it, while `/health` stays 200 (the process is alive).
#[actix_web::test]
async fn ready_is_503_once_the_log_failed_an_fsync() {
    if !helpers::can_run_powercut("the /ready fsync EIO test") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut pc, mnt) = helpers::PowerCut::mount_in(dir.path());
    let port = free_port();
    let server = Chatd::start(&mnt, port).await;
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
    let chat = server.api.new_chat(&["u"]).await;
    server.api.send_ok(&chat, "before").await;
    let (status, _, body) = get(&url("/ready"), &[]).await;
    assert_eq!(status, 200, "ready before the fault: {body}");

    pc.command("eio-fsync 1").expect("arm the fault");
    let (status, body) = server.api.send(&chat, "failed").await.expect("an answer");
    assert_eq!(status, 500, "{body}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let (status, _, body) = get(&url("/ready"), &[]).await;
        if status == 503 {
            break body;
        }
        assert!(Instant::now() < deadline, "/ready still {status} after the failed fsync: {body}");
        sleep_ms(20).await;
    };
    assert_micro(&body, 503, "chatd.Ready.Unavailable");
    assert!(body.contains("log"), "the reason names the log: {body}");
    let (status, _, _) = get(&url("/health"), &[]).await;
    assert_eq!(status, 200, "alive all the same");
    let (_, _, metrics) = get(&url("/metrics"), &[]).await;
    assert_eq!(sample(&metrics, "chatd_log_writable", &[]), 0.0);
    server.kill9();
    pc.command("clear").expect("disarm");
    pc.unmount();
}

#[actix_web::test]
async fn every_answer_carries_a_request_id() {
    let app = helpers::spawn_app().await;
    let id_of = |headers: &awc::http::header::HeaderMap| {
        headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned).expect("an x-request-id header")
    };
    let (_, headers, _) = get(&app.url("/health"), &[("x-request-id", "from-the-proxy.42")]).await;
    assert_eq!(id_of(&headers), "from-the-proxy.42", "a sane incoming id is kept");
    let long = "x".repeat(500);
    for bad in ["has spaces in it", "quote\"s", long.as_str()] {
        let (_, headers, _) = get(&app.url("/health"), &[("x-request-id", bad)]).await;
        let id = id_of(&headers);
        assert_ne!(id, bad);
        assert!(id.len() <= 128 && id.chars().all(|c| c.is_ascii_hexdigit()), "a fresh one instead: {id}");
    }
    let mut seen = std::collections::HashSet::new();
    for path in ["/health", "/nowhere", "/openapi.json"] {
        let (_, headers, _) = get(&app.url(path), &[]).await;
        assert!(seen.insert(id_of(&headers)), "each request its own id");
    }
    let res = app.client.post(app.url("/chat/New")).send_json(&json!({ "user_ids": ["a"] })).await.expect("New");
    assert!(res.headers().contains_key("x-request-id"), "API answers too");
    let res = app.client.post(app.url("/chat/Send")).send_json(&json!({})).await.expect("Send");
    assert_eq!(res.status(), 400);
    assert!(res.headers().contains_key("x-request-id"), "errors too");
    app.stop().await;
}

#[actix_web::test]
async fn json_logs_parse_and_hold_no_secret_or_message_text() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let env = [("CHATD__LOG__FORMAT", "json"), ("RUST_LOG", "debug"), ("CHATD__AUTH__ADMIN_KEY", "admin-secret-4711")];
    let server = Chatd::start_with(dir.path(), port, &env).await;
    let (status, _, _) = get(&format!("http://127.0.0.1:{port}/health"), &[("x-request-id", "trace-me-4711")]).await;
    assert_eq!(status, 200);
    let res = awc::Client::new()
        .post(format!("http://127.0.0.1:{port}/chat/Send"))
        .insert_header(("x-request-id", "send-4711"))
        .send_json(&json!({ "chat_id": "nowhere", "user_id": "u", "text": "the words of a private message" }))
        .await
        .expect("Send");
    assert_eq!(res.status(), 404);
    let chat = server.api.new_chat(&["u"]).await;
    let body = json!({ "chat_id": chat, "user_id": "u", "text": "another private message" });
    assert_eq!(server.api.post("/chat/Send", body).await.expect("Send").0, 200);
    sleep_ms(200).await;
    server.kill9();

    let log = server_log(dir.path());
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() >= 3, "{log}");
    assert!(lines.iter().all(|l| l["level"].is_string() && l["timestamp"].is_string()), "{log}");
    let of_request = |id: &str| lines.iter().filter(|l| l["span"]["request_id"] == id).count();
    assert!(of_request("trace-me-4711") >= 1, "the request's lines name its id:\n{log}");
    assert!(of_request("send-4711") >= 1, "{log}");
    for secret in ["admin-secret-4711", "private message"] {
        assert!(!log.contains(secret), "the log holds {secret:?}:\n{log}");
    }
}

#[actix_web::test]
async fn logs_are_readable_text_by_default() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let server = Chatd::start_with(dir.path(), port, &[("RUST_LOG", "debug")]).await;
    get(&format!("http://127.0.0.1:{port}/health"), &[("x-request-id", "text-4711")]).await;
    sleep_ms(200).await;
    server.kill9();
    let log = server_log(dir.path());
    let line = log.lines().find(|l| l.contains("request_id=text-4711")).unwrap_or_else(|| panic!("{log}"));
    assert!(serde_json::from_str::<Value>(line).is_err(), "text, not JSON: {line}");
    assert!(log.contains("chatd listening"), "{log}");
}

/// While the data dir is recovered, the server already listens: `/health` is 200 and `/ready`
/// (like the API) is 503 naming recovery; once it is done, `/ready` is 200. The log holds
/// 20000 unsnapshotted messages, so replaying it takes long enough to be seen.
#[actix_web::test]
async fn ready_is_503_during_recovery() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let env = [("CHATD__STORAGE__FSYNC", "never"), ("CHATD__STORAGE__CHECKPOINT_INTERVAL_SECS", "100000")];
    let server = Chatd::start_with(dir.path(), port, &env).await;
    let mut chats = Vec::new();
    for i in 0..20 {
        chats.push(server.api.new_chat(&[&format!("u{i}")]).await);
    }
    let text = "x".repeat(1000);
    futures_util::stream::iter(0..20_000)
        .for_each_concurrent(64, |n| {
            let (api, chat, text) = (server.api.clone(), chats[n % 20].clone(), text.clone());
            async move {
                let body = json!({ "chat_id": chat, "user_id": "u", "text": text, "client_id": format!("m{n}") });
                let (status, body) = api.post("/chat/Send", body).await.expect("Send");
                assert_eq!(status, 200, "{body}");
            }
        })
        .await;
    server.kill9();

    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
    let probe = async {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut recovering = None;
        loop {
            assert!(Instant::now() < deadline, "/ready never turned 200");
            let request = awc::Client::new().get(url("/ready")).timeout(Duration::from_secs(20));
            if let Ok(mut res) = request.send().await {
                let body = String::from_utf8_lossy(&res.body().await.expect("a body")).into_owned();
                match res.status().as_u16() {
                    200 => return recovering,
                    503 => {
                        if recovering.is_none() {
                            let (health, _, _) = get(&url("/health"), &[]).await;
                            let (status, history) = helpers::Api::new(port)
                                .post("/chat/History", json!({ "chat_id": chats[0] }))
                                .await
                                .expect("History");
                            recovering = Some((body, health, status, history));
                        }
                    }
                    other => panic!("/ready answered {other}: {body}"),
                }
            }
            sleep_ms(2).await;
        }
    };
    let (server, recovering) = futures_util::join!(Chatd::start(dir.path(), port), probe);
    let (ready, health, api_status, api_body) = recovering.expect("/ready was 503 while recovering");
    assert_micro(&ready, 503, "chatd.Ready.Unavailable");
    assert!(ready.contains("recovering"), "{ready}");
    assert_eq!(health, 200, "alive while recovering");
    // The API answers once recovery is over, 503 (never a dropped connection) until then.
    assert!(api_status == 503 || api_status == 200, "{api_status}: {api_body}");
    assert_eq!(server.api.history(&chats[0]).await.len(), 1000, "everything recovered");
}

//! The server harness and the WebSocket, SSE and HTTP client helpers the access and group
//! tests share: a real server on port 0 with a temporary data dir, and clients to talk to it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use awc::error::WsProtocolError;
use awc::ws::{CloseReason, Frame, Message};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde_json::Value;
use tokio::time::timeout;

use actix::Addr;
use actix_web::rt::task::JoinHandle;
use chatd::config::Settings;
use chatd::registry::Registry;
use chatd::startup::{Application, StartError, Stopper};
use serde_json::json;
use tempfile::TempDir;

/// How long any single wait may take before a test fails instead of hanging.
pub const WAIT: Duration = Duration::from_secs(20);

pub async fn read_json(path: &str, mut res: awc::ClientResponse) -> (u16, Value) {
    let bytes = timeout(WAIT, res.body().limit(64 << 20))
        .await
        .unwrap_or_else(|_| panic!("{path}: no body"))
        .unwrap_or_else(|e| panic!("{path}: body: {e}"));
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| panic!("{path}: {} not JSON: {:?}", res.status(), String::from_utf8_lossy(&bytes)));
    (res.status().as_u16(), json)
}

/// Percent-encodes everything but unreserved characters.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

pub fn texts(messages: &[Value]) -> Vec<String> {
    messages.iter().map(|m| m["text"].as_str().expect("text").to_owned()).collect()
}

/// A micro error response: the status, and a body of exactly id, code, detail, status.
#[track_caller]
pub fn assert_error(status: u16, body: &Value, code: u16, id: &str, what: &str) {
    assert_eq!(status, code, "{what}: status of {body}");
    assert_error_frame(body, code, id, None);
}

/// A micro error body or frame: exactly id, code, detail, status (and client_id if expected).
#[track_caller]
pub fn assert_error_frame(frame: &Value, code: u16, id: &str, client_id: Option<&str>) {
    let obj = frame.as_object().unwrap_or_else(|| panic!("not an object: {frame}"));
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut want = vec!["code", "detail", "id", "status"];
    if client_id.is_some() {
        want.insert(0, "client_id");
    }
    assert_eq!(keys, want, "fields of {frame}");
    assert_eq!(frame["id"], id, "{frame}");
    assert_eq!(frame["code"], code, "{frame}");
    assert!(frame["detail"].is_string(), "{frame}");
    let status = awc::http::StatusCode::from_u16(code).unwrap().canonical_reason().unwrap();
    assert_eq!(frame["status"], status, "{frame}");
    if let Some(client_id) = client_id {
        assert_eq!(frame["client_id"], client_id, "{frame}");
    }
}

pub struct Ws {
    pub rx: WsReader,
    pub tx: WsWriter,
}

pub struct WsReader {
    pub rx: Pin<Box<dyn Stream<Item = Result<Frame, WsProtocolError>>>>,
}

pub struct WsWriter {
    pub tx: Pin<Box<dyn Sink<Message, Error = WsProtocolError>>>,
}

#[derive(Debug)]
#[allow(dead_code)] // the payloads are for failure messages
pub enum Got {
    Json(Value),
    Closed(Option<CloseReason>),
    Ended,
    Failed(String),
}

impl WsReader {
    /// The next data frame, or how the connection ended; pings and pongs are skipped.
    pub async fn next(&mut self) -> Got {
        loop {
            let frame =
                timeout(WAIT, self.rx.next()).await.unwrap_or_else(|_| panic!("no WebSocket frame within {WAIT:?}"));
            return match frame {
                None => Got::Ended,
                Some(Err(e)) => Got::Failed(e.to_string()),
                Some(Ok(Frame::Ping(_) | Frame::Pong(_))) => continue,
                Some(Ok(Frame::Close(reason))) => Got::Closed(reason),
                Some(Ok(Frame::Text(bytes))) => Got::Json(serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                    panic!("a text frame that is not JSON ({e}): {:?}", String::from_utf8_lossy(&bytes))
                })),
                Some(Ok(other)) => panic!("unexpected frame {other:?}"),
            };
        }
    }

    pub async fn json(&mut self) -> Value {
        match self.next().await {
            Got::Json(v) => v,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    /// The next frame, which must be a message (not an error frame).
    pub async fn message(&mut self) -> Value {
        let m = self.json().await;
        assert!(m.get("seq").is_some() && m.get("code").is_none(), "expected a message, got {m}");
        m
    }

    /// One error frame `id`, then a close with 4000 + `code` and `id` as the reason.
    pub async fn fails(&mut self, code: u16, id: &str) {
        let frame = self.json().await;
        assert_error_frame(&frame, code, id, None);
        match self.next().await {
            Got::Closed(Some(reason)) => {
                assert_eq!(u16::from(reason.code), 4000 + code, "{reason:?}");
                assert_eq!(reason.description.as_deref(), Some(id), "{reason:?}");
            }
            other => panic!("expected a close frame after {id}, got {other:?}"),
        }
    }
}

impl WsWriter {
    pub async fn send(&mut self, frame: Value) {
        timeout(WAIT, self.tx.send(Message::Text(frame.to_string().into())))
            .await
            .expect("the frame is sent in time")
            .expect("the frame is sent");
    }
}

pub struct Sse {
    pub body: awc::ClientResponse,
    pub buf: Vec<u8>,
}

impl Sse {
    /// The next event with data, as (event type, data); `None` when the stream ends.
    pub async fn next(&mut self) -> Option<(Option<String>, String)> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buf.drain(..end + 2).collect();
                let block = String::from_utf8(block).expect("SSE is UTF-8");
                let mut event = None;
                let mut data = None;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data = Some(v.trim_start().to_owned());
                    }
                }
                match data {
                    Some(data) => return Some((event, data)),
                    None => continue,
                }
            }
            match timeout(WAIT, self.body.next()).await.unwrap_or_else(|_| panic!("no SSE bytes within {WAIT:?}")) {
                Some(Ok(bytes)) => self.buf.extend_from_slice(&bytes),
                Some(Err(_)) | None => return None,
            }
        }
    }

    pub async fn message(&mut self) -> Value {
        let (event, data) = self.next().await.expect("an SSE event");
        assert_eq!(event, None, "not a message: {data}");
        serde_json::from_str(&data).expect("JSON data")
    }
}

/// Who a request comes from: its `micro-namespace` header and bearer value, each optional.
#[derive(Debug, Clone, Default)]
pub struct Who {
    pub ns: Option<String>,
    pub bearer: Option<String>,
}

impl Who {
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = Vec::new();
        if let Some(ns) = &self.ns {
            headers.push(("micro-namespace", ns.clone()));
        }
        if let Some(b) = &self.bearer {
            headers.push(("authorization", format!("Bearer {b}")));
        }
        headers
    }
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

pub struct Server {
    pub base: String,
    pub registry: Addr<Registry>,
    pub client: awc::Client,
    pub stopper: Stopper,
    pub join: Option<JoinHandle<Result<(), StartError>>>,
    pub settings: Settings,
    pub root: Option<TempDir>,
}

/// Starts the server with `tweak` applied; its data dir is nested inside a temp dir so a
/// write escaping it would still land somewhere the tests look.
pub async fn start_with(tweak: impl FnOnce(&mut Settings)) -> Server {
    let root = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings::default();
    settings.server.workers = 2;
    tweak(&mut settings);
    settings.server.port = 0;
    settings.storage.data_dir = root.path().join("outer/inner/data");
    boot(settings, root).await
}

pub async fn boot(settings: Settings, root: TempDir) -> Server {
    let app = Application::build(settings.clone()).await.expect("the server starts");
    let mut srv = Server::from_app(app, Some(root));
    srv.settings = settings;
    srv
}

impl Server {
    pub fn from_app(app: Application, root: Option<TempDir>) -> Server {
        let port = app.port();
        let stopper = app.handle();
        let registry = app.registry();
        let join = actix_web::rt::spawn(app.run_until_stopped());
        Server {
            base: format!("http://127.0.0.1:{port}"),
            registry,
            client: awc::Client::builder().timeout(WAIT).finish(),
            stopper,
            join: Some(join),
            settings: Settings::default(),
            root,
        }
    }

    pub async fn stop(mut self) {
        self.shutdown().await;
    }

    pub async fn shutdown(&mut self) {
        self.stopper.stop(true).await;
        if let Some(join) = self.join.take() {
            timeout(WAIT, join)
                .await
                .expect("the server stops in time")
                .expect("the server task")
                .expect("a clean shutdown");
        }
    }

    pub async fn restart(mut self) -> Server {
        self.shutdown().await;
        let root = self.root.take().expect("a temp dir");
        boot(self.settings.clone(), root).await
    }

    /// POSTs `body` as JSON from `who`.
    pub async fn post(&self, who: &Who, path: &str, body: Value) -> (u16, Value) {
        self.call(path, &who.headers(), body).await
    }

    pub async fn call(&self, path: &str, headers: &[(&str, String)], body: Value) -> (u16, Value) {
        self.call_raw(path, headers, body.to_string()).await
    }

    pub async fn call_raw(
        &self,
        path: &str,
        headers: &[(&str, String)],
        body: impl Into<actix_web::web::Bytes>,
    ) -> (u16, Value) {
        let mut req =
            self.client.post(format!("{}{path}", self.base)).insert_header(("content-type", "application/json"));
        for (name, value) in headers {
            req = req.insert_header((*name, value.as_str()));
        }
        let body: actix_web::web::Bytes = body.into();
        let res = timeout(WAIT, req.send_body(body))
            .await
            .unwrap_or_else(|_| panic!("{path}: no answer"))
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        read_json(path, res).await
    }

    pub async fn new_chat(&self, who: &Who, users: &[&str]) -> String {
        let (status, body) = self.post(who, "/chat/New", json!({ "user_ids": users })).await;
        assert_eq!(status, 200, "chat.New: {body}");
        body["chat_id"].as_str().expect("chat_id").to_owned()
    }

    pub async fn send(&self, who: &Who, chat: &str, user: &str, text: &str) -> Value {
        let (status, body) =
            self.post(who, "/chat/Send", json!({ "chat_id": chat, "user_id": user, "text": text })).await;
        assert_eq!(status, 200, "chat.Send: {body}");
        body["message"].clone()
    }

    pub async fn history(&self, who: &Who, chat: &str) -> Vec<Value> {
        let (status, body) =
            self.post(who, "/chat/History", json!({ "chat_id": chat, "after_seq": 0, "limit": 1000 })).await;
        assert_eq!(status, 200, "chat.History: {body}");
        body["messages"].as_array().expect("messages").clone()
    }

    /// Opens a WebSocket on `path` (with its query) carrying `who`'s headers; expects 101.
    pub async fn ws(&self, path: &str, who: &Who) -> Ws {
        let mut req = self.client.ws(format!("{}{path}", self.base));
        for (name, value) in who.headers() {
            req = req.set_header(name, value);
        }
        let (res, conn) = timeout(WAIT, req.connect())
            .await
            .unwrap_or_else(|_| panic!("{path}: no WebSocket handshake"))
            .unwrap_or_else(|e| panic!("{path}: WebSocket handshake failed: {e}"));
        assert_eq!(res.status().as_u16(), 101, "{path}");
        let (tx, rx) = conn.split();
        Ws { rx: WsReader { rx: Box::pin(rx) }, tx: WsWriter { tx: Box::pin(tx) } }
    }

    pub async fn sse_request(&self, path: &str, who: &Who) -> awc::ClientResponse {
        let mut req = self.client.get(format!("{}{path}", self.base)).insert_header(("accept", "text/event-stream"));
        for (name, value) in who.headers() {
            req = req.insert_header((name, value));
        }
        timeout(WAIT, req.send())
            .await
            .unwrap_or_else(|_| panic!("{path}: no SSE response"))
            .unwrap_or_else(|e| panic!("{path}: SSE request failed: {e}"))
    }

    /// Opens an SSE stream, expecting 200.
    pub async fn sse(&self, path: &str, who: &Who) -> Sse {
        let res = self.sse_request(path, who).await;
        assert_eq!(res.status().as_u16(), 200, "{path}");
        Sse { body: res, buf: Vec::new() }
    }

    /// An SSE request expected to fail: its status and body.
    pub async fn sse_fails(&self, path: &str, who: &Who) -> (u16, Value) {
        let res = self.sse_request(path, who).await;
        assert_ne!(res.status().as_u16(), 200, "{path}: a stream, not a refusal");
        read_json(path, res).await
    }
}

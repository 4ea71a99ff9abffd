//! The real server, in-process, on port 0 with a temporary data dir.
//!
//! Tests run under `#[actix_web::test]`: the chat actors need actix's runtime.

#![allow(dead_code)]

use actix_web::http::header::HeaderMap;
use actix_web::http::{Method, StatusCode};
use actix_web::rt::task::JoinHandle;
use actix_web::web::Bytes;
use serde_json::{json, Value};
use tempfile::TempDir;

use chatd::config::Settings;
use chatd::registry::Registry;
use chatd::startup::{Application, StartError, Stopper};

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: awc::Client,
    pub registry: actix::Addr<Registry>,
    pub handle: Stopper,
    pub settings: Settings,
    pub dir: TempDir,
    join: JoinHandle<Result<(), StartError>>,
}

/// What came back: the body parsed as JSON (`Null` when empty, a JSON string when not JSON).
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like [`spawn_app`], with `tweak` applied to the default settings.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings::default();
    settings.server.workers = 2;
    tweak(&mut settings);
    settings.server.port = 0;
    settings.storage.data_dir = dir.path().to_path_buf();
    start(settings, dir).await
}

async fn start(settings: Settings, dir: TempDir) -> TestApp {
    let app = Application::build(settings.clone()).await.expect("the server starts");
    let port = app.port();
    let registry = app.registry();
    let handle = app.handle();
    let join = actix_web::rt::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        client: awc::Client::default(),
        registry,
        handle,
        settings,
        dir,
        join,
    }
}

impl TestApp {
    /// Any request; `body` is sent as is.
    pub async fn request(&self, method: Method, path: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.address));
        for &(name, value) in headers {
            req = req.insert_header((name, value));
        }
        let mut res = req.send_body(body.into()).await.unwrap_or_else(|e| panic!("{path}: request failed: {e}"));
        let bytes = res.body().limit(16 << 20).await.expect("response body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply { status: res.status(), headers: res.headers().clone(), body }
    }

    /// POSTs raw bytes with exactly `headers` (no Content-Type unless given).
    pub async fn post_raw(&self, path: &str, body: impl Into<Bytes>, headers: &[(&str, &str)]) -> Reply {
        self.request(Method::POST, path, headers, body).await
    }

    /// POSTs `json` as `application/json` in the default namespace.
    pub async fn post(&self, path: &str, json: Value) -> (StatusCode, Value) {
        let reply = self.post_raw(path, json.to_string(), &[("content-type", "application/json")]).await;
        (reply.status, reply.body)
    }

    /// POSTs `json` in namespace `ns` (the `micro-namespace` header).
    pub async fn post_ns(&self, ns: &str, path: &str, json: Value) -> (StatusCode, Value) {
        let reply = self
            .post_raw(path, json.to_string(), &[("content-type", "application/json"), ("micro-namespace", ns)])
            .await;
        (reply.status, reply.body)
    }

    /// `chat.New`, expecting success: the chat id.
    pub async fn new_chat(&self, user_ids: &[&str]) -> String {
        let (status, body) = self.post("/chat/New", json!({ "user_ids": user_ids })).await;
        assert_eq!(status, 200, "chat.New: {body}");
        body["chat_id"].as_str().expect("chat_id").to_owned()
    }

    /// `chat.Send`, expecting success: the message.
    pub async fn send(&self, chat_id: &str, user_id: &str, text: &str) -> Value {
        let (status, body) =
            self.post("/chat/Send", json!({ "chat_id": chat_id, "user_id": user_id, "text": text })).await;
        assert_eq!(status, 200, "chat.Send: {body}");
        body["message"].clone()
    }

    /// `chat.History` with `request`, expecting success: the messages.
    pub async fn history(&self, request: Value) -> Vec<Value> {
        let (status, body) = self.post("/chat/History", request).await;
        assert_eq!(status, 200, "chat.History: {body}");
        body["messages"].as_array().expect("messages").clone()
    }

    /// Stops the server gracefully and waits for its final checkpoint.
    pub async fn stop(self) {
        self.shutdown().await;
    }

    /// Stops the server, then starts a new one on the same data dir and settings.
    pub async fn restart(self) -> TestApp {
        let (settings, dir) = self.shutdown().await;
        start(settings, dir).await
    }

    async fn shutdown(self) -> (Settings, TempDir) {
        self.handle.stop(true).await;
        self.join.await.expect("the server task").expect("a clean shutdown");
        (self.settings, self.dir)
    }
}

/// The `seq` of each message.
pub fn seqs(messages: &[Value]) -> Vec<u64> {
    messages.iter().map(|m| m["seq"].as_u64().expect("seq")).collect()
}

/// The `text` of each message.
pub fn texts(messages: &[Value]) -> Vec<String> {
    messages.iter().map(|m| m["text"].as_str().expect("text").to_owned()).collect()
}

/// Asserts a micro error: the status, `id`, and a body of exactly id, code, detail, status
/// with `code` equal to the HTTP status.
#[track_caller]
pub fn assert_error(status: StatusCode, body: &Value, want_status: u16, want_id: &str) {
    assert_eq!(status, want_status, "status of {body}");
    let obj = body.as_object().unwrap_or_else(|| panic!("not a JSON object: {body}"));
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["code", "detail", "id", "status"], "keys of {body}");
    assert_eq!(body["id"], want_id, "id of {body}");
    assert_eq!(body["code"], want_status, "code of {body}");
    assert!(body["detail"].is_string(), "detail of {body}");
    let reason = StatusCode::from_u16(want_status).unwrap().canonical_reason().unwrap();
    assert_eq!(body["status"], reason, "status text of {body}");
}

//! The WebSocket, SSE and HTTP client helpers the access and group tests share.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use awc::error::WsProtocolError;
use awc::ws::{CloseReason, Frame, Message};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde_json::Value;
use tokio::time::timeout;

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

//! The Server-Sent Events client of `chat.Connect` and `chat.Join`: [`TestApp::sse`] opens a
//! stream ([`Sse`]: its events, messages and error event), [`TestApp::sse_fails`] reads a
//! refusal.

use actix_web::http::StatusCode;
use serde_json::Value;
use tokio::time::timeout;

use futures_util::StreamExt;

use super::{assert_error_frame, assert_message_shape, assert_v2_message_shape, read_json, TestApp, Who, WAIT};

pub struct Sse {
    pub body: awc::ClientResponse,
    pub buf: Vec<u8>,
}

/// One event: its `id:`, `event:` (none for a message) and `data:` lines.
#[derive(Debug, Default)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

impl TestApp {
    /// Opens an SSE stream carrying `who`'s headers, expecting 200 and `text/event-stream`.
    pub async fn sse(&self, path: &str, who: &Who) -> Sse {
        let headers = who.headers();
        let headers: Vec<(&str, &str)> = headers.iter().map(|(name, value)| (*name, value.as_str())).collect();
        self.sse_with(path, &headers).await
    }

    /// Opens an SSE stream carrying `headers`, expecting 200 and `text/event-stream`.
    pub async fn sse_with(&self, path: &str, headers: &[(&str, &str)]) -> Sse {
        let res = self.sse_request(path, headers).await;
        assert_eq!(res.status().as_u16(), 200, "{path}");
        let content_type = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert!(content_type.starts_with("text/event-stream"), "{path}: content-type {content_type:?}");
        Sse { body: res, buf: Vec::new() }
    }

    /// An SSE request carrying `who`'s headers, expected to be refused: its status and body.
    pub async fn sse_fails(&self, path: &str, who: &Who) -> (StatusCode, Value) {
        let headers = who.headers();
        let headers: Vec<(&str, &str)> = headers.iter().map(|(name, value)| (*name, value.as_str())).collect();
        let res = self.sse_request(path, &headers).await;
        assert_ne!(res.status().as_u16(), 200, "{path}: a stream, not a refusal");
        read_json(path, res).await
    }

    /// A GET of `path` asking for `text/event-stream`, with `headers`: the response, unread.
    pub async fn sse_request(&self, path: &str, headers: &[(&str, &str)]) -> awc::ClientResponse {
        let mut req = self.client.get(self.url(path)).insert_header(("accept", "text/event-stream"));
        for &(name, value) in headers {
            req = req.insert_header((name, value));
        }
        timeout(WAIT, req.send())
            .await
            .unwrap_or_else(|_| panic!("{path}: no SSE response"))
            .unwrap_or_else(|e| panic!("{path}: SSE request failed: {e}"))
    }
}

impl Sse {
    /// The next event with data (comments are skipped); `None` when the stream ends.
    pub async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buf.drain(..end + 2).collect();
                let block = String::from_utf8(block).expect("SSE is UTF-8");
                let mut event = SseEvent::default();
                let mut has_data = false;
                for line in block.lines() {
                    if line.is_empty() || line.starts_with(':') {
                        continue;
                    }
                    let (field, value) = match line.split_once(':') {
                        Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                        None => (line, ""),
                    };
                    match field {
                        "id" => event.id = Some(value.to_owned()),
                        "event" => event.event = Some(value.to_owned()),
                        "data" => {
                            if has_data {
                                event.data.push('\n');
                            }
                            event.data.push_str(value);
                            has_data = true;
                        }
                        _ => {}
                    }
                }
                if has_data {
                    return Some(event);
                }
                continue;
            }
            match timeout(WAIT, self.body.next()).await.unwrap_or_else(|_| panic!("no SSE bytes within {WAIT:?}")) {
                Some(Ok(bytes)) => self.buf.extend_from_slice(&bytes),
                Some(Err(e)) => {
                    eprintln!("the SSE body failed: {e}");
                    return None;
                }
                None => return None,
            }
        }
    }

    /// The next event, which must be a message: its data.
    pub async fn message(&mut self) -> Value {
        let event = self.next().await.expect("an SSE event");
        assert_eq!(event.event, None, "not a message: {}", event.data);
        serde_json::from_str(&event.data).expect("JSON data")
    }

    /// The next event, which must be a Join message: data exactly `{"message": ..}` holding a
    /// chat v2 Message (checked for its fields), the event's `id:` its seq; the message.
    pub async fn v2_message(&mut self) -> Value {
        let event = self.next().await.expect("an SSE event, not the end");
        assert_eq!(event.event, None, "not a message event: {event:?}");
        let frame: Value =
            serde_json::from_str(&event.data).unwrap_or_else(|e| panic!("SSE data is not JSON ({e}): {event:?}"));
        let keys: Vec<&str> = frame
            .as_object()
            .unwrap_or_else(|| panic!("not a Join event: {event:?}"))
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["message"], "expected {{\"message\": ..}} in {event:?}");
        let m = frame["message"].clone();
        assert_v2_message_shape(&m);
        assert_eq!(event.id, Some(m["seq"].to_string()), "id: of {event:?}");
        m
    }

    /// The next `n` message events: their seqs and messages. Each event's `id:` is its seq.
    pub async fn messages(&mut self, n: usize) -> (Vec<u64>, Vec<Value>) {
        let mut seqs = Vec::new();
        let mut messages = Vec::new();
        for _ in 0..n {
            let event = self.next().await.expect("an SSE event, not the end");
            assert_eq!(event.event, None, "not a message event: {event:?}");
            let m: Value =
                serde_json::from_str(&event.data).unwrap_or_else(|e| panic!("SSE data is not JSON ({e}): {event:?}"));
            assert_message_shape(&m);
            let seq = m["seq"].as_u64().expect("seq");
            assert_eq!(event.id, Some(seq.to_string()), "id: of {event:?}");
            seqs.push(seq);
            messages.push(m);
        }
        (seqs, messages)
    }

    /// The stream is ended by the server: an `error` event `id`, then the end.
    pub async fn fails(&mut self, code: u16, id: &str) {
        let event = self.next().await.unwrap_or_else(|| panic!("the SSE stream ended without {id}"));
        assert_eq!(event.event.as_deref(), Some("error"), "{}", event.data);
        let frame: Value = serde_json::from_str(&event.data).expect("JSON data");
        assert_error_frame(&frame, code, id, None);
        assert!(self.next().await.is_none(), "the SSE stream ends after {id}");
    }
}

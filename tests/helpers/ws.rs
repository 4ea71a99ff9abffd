//! The WebSocket client of `chat.Connect` and `chat.Join`: [`TestApp::ws`] opens one, split
//! into a reader ([`WsReader`]: messages, error frames, closes) and a writer ([`WsWriter`]).

use std::pin::Pin;
use std::time::Duration;

use awc::error::WsProtocolError;
use awc::ws::{CloseReason, Frame, Message};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde_json::Value;
use tokio::time::timeout;

use super::{assert_error_frame, assert_v2_message_shape, TestApp, Who, WAIT};

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

/// What a WebSocket read found.
#[derive(Debug)]
#[allow(dead_code)] // the payloads are for failure messages
pub enum Got {
    Json(Value),
    Closed(Option<CloseReason>),
    /// The connection ended without a close frame.
    Ended,
    Failed(String),
}

impl TestApp {
    /// Opens a WebSocket on `path` (with its query) carrying `who`'s headers; expects 101.
    pub async fn ws(&self, path: &str, who: &Who) -> Ws {
        let headers = who.headers();
        let headers: Vec<(&str, &str)> = headers.iter().map(|(name, value)| (*name, value.as_str())).collect();
        self.ws_with(path, &headers).await
    }

    /// Opens a WebSocket on `path` (with its query) carrying exactly `headers`; expects 101.
    pub async fn ws_with(&self, path: &str, headers: &[(&str, &str)]) -> Ws {
        let mut req = self.client.ws(self.url(path));
        for &(name, value) in headers {
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

    /// The next JSON frame: a message or an error frame.
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

    /// The next frame, which must be a Join frame: exactly `{"message": ..}` holding a chat v2
    /// Message (checked for its fields); the message.
    pub async fn v2_message(&mut self) -> Value {
        let frame = self.json().await;
        let keys: Vec<&str> = frame
            .as_object()
            .unwrap_or_else(|| panic!("expected a Join frame, got {frame}"))
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["message"], "expected a Join frame {{\"message\": ..}}, got {frame}");
        assert_v2_message_shape(&frame["message"]);
        frame["message"].clone()
    }

    /// The next `n` Join frames' messages.
    pub async fn v2_messages(&mut self, n: usize) -> Vec<Value> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.v2_message().await);
        }
        out
    }

    /// The next `n` messages.
    pub async fn messages(&mut self, n: usize) -> Vec<Value> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.message().await);
        }
        out
    }

    /// The seqs of the next `n` messages (keeping only the seqs, for large messages).
    pub async fn seqs_of(&mut self, n: usize) -> Vec<u64> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.message().await["seq"].as_u64().expect("seq"));
        }
        out
    }

    /// The next frame must be a close frame with a reason.
    pub async fn closed(&mut self) -> CloseReason {
        match self.next().await {
            Got::Closed(Some(reason)) => reason,
            other => panic!("expected a close frame with a code, got {other:?}"),
        }
    }

    /// The stream is refused or ended by the server: one error frame `id`, then a close with
    /// 4000 + `code` and `id` as the reason.
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

    /// Nothing arrives for `dur`.
    pub async fn assert_silent(&mut self, dur: Duration) {
        loop {
            match timeout(dur, self.rx.next()).await {
                Err(_) => return,
                Ok(Some(Ok(Frame::Ping(_) | Frame::Pong(_)))) => continue,
                Ok(other) => panic!("expected silence, got {other:?}"),
            }
        }
    }
}

impl WsWriter {
    /// Sends `frame` as a text frame.
    pub async fn send(&mut self, frame: Value) {
        self.send_text(&frame.to_string()).await;
    }

    /// Sends `text` as a text frame, as is.
    pub async fn send_text(&mut self, text: &str) {
        timeout(WAIT, self.tx.send(Message::Text(text.to_owned().into())))
            .await
            .expect("the frame is sent in time")
            .expect("the frame is sent");
    }
}

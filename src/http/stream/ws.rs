//! The WebSocket transport: one JSON text frame per message. Client frames post messages with
//! Send's rules; their echo (with seq) is the acknowledgement. The server pings every 15 s and
//! drops a peer silent for 60 s. Client frames pass a [`FrameGuard`] first: a header announcing
//! more than `server.max_body_bytes` closes 1009 before its payload is read. Every write waits
//! at most 30 s for room (then 1013), and a connection still open after its stream ended is
//! reset, so a client that stops reading holds neither memory nor the server's shutdown.

use std::pin::Pin;
use std::time::{Duration, Instant};

use actix_web::dev;
use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use actix_ws::{CloseCode, CloseReason, Message as WsMessage, ProtocolError};
use bytestring::ByteString;
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::watch;
use tokio::time::timeout;

use super::frame_guard::FrameGuard;
use super::{subscribe, Kind, Live, Params, Subscription, CLOSE_TIMEOUT, PING_EVERY, WRITE_TIMEOUT};
use crate::chat::Post;
use crate::error::{Error, Field};
use crate::http::body::given;
use crate::http::conn::Cutoff;
use crate::http::draft::DraftFields;
use crate::http::error::{ApiError, At};
use crate::http::AppState;

const SILENCE_LIMIT: Duration = Duration::from_secs(60);
/// How long a WebSocket may take to name its chat in a first frame.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) async fn open(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
    params: Params,
    kind: Kind,
) -> Result<HttpResponse, ApiError> {
    let limit = state.settings.server.max_body_bytes;
    // Frame headers are checked as the bytes arrive, before actix-ws buffers anything.
    let guarded: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(FrameGuard::new(payload, limit));
    let payload = web::Payload::from_request(&req, &mut dev::Payload::from(guarded))
        .await
        .map_err(|e| Error::Internal(format!("could not guard the payload: {e}")).at(kind.endpoint()))?;
    let (response, session, frames) = actix_ws::handle(&req, payload)
        .map_err(|e| Error::BadRequest(format!("bad WebSocket handshake: {e}")).at(kind.endpoint()))?;
    let frames = frames.max_frame_size(limit);
    // Named in the request: subscribe now, before the 101 goes out.
    let early = match params.chat_id() {
        Some(_) => Some(subscribe(&state, &params, kind).await),
        None => None,
    };
    let cutoff = Cutoff::of(&req);
    // The task lives as long as the connection, idle or not, and holds the largest of its
    // states: what only opening or ending needs is boxed (and `opening` moved in boxed), so an
    // idle stream keeps just what serving needs.
    let opening = Box::new((early, params));
    actix_web::rt::spawn(async move {
        let shutdown = state.shutdown.clone();
        let mut ws = Ws { state, session, frames, kind, last_heard: Instant::now(), shutdown };
        let sub = Box::pin(ws.start(opening)).await;
        let end = match sub {
            Ok(sub) => ws.serve(sub).await,
            Err(end) => end,
        };
        Box::pin(ws.end(end)).await;
        // A stalled client cannot take the close frame: its connection is reset instead.
        Box::pin(cutoff.after_linger()).await;
    });
    Ok(response)
}

struct Ws {
    state: web::Data<AppState>,
    session: actix_ws::Session,
    frames: actix_ws::MessageStream,
    kind: Kind,
    last_heard: Instant,
    /// Turns true at server shutdown; watched while waiting on anything.
    shutdown: watch::Receiver<bool>,
}

/// A frame the server writes mid-stream.
enum Out {
    Text(ByteString),
    Ping,
    Pong(Bytes),
}

/// Why a stream ends, and so what the client is told.
enum End {
    /// One micro error frame, then close 4000 + its code with its id as the reason.
    Fail(Error),
    /// A client frame the server will not take: see [`Ws::refuse`].
    Refused(ProtocolError),
    Close(CloseCode, &'static str),
    /// The connection is gone: nothing to tell.
    Gone,
}

/// A frame a client sends to post a message.
#[derive(Deserialize)]
struct Outgoing {
    text: Option<String>,
    subject: Option<String>,
    #[serde(alias = "client")]
    client_id: Option<String>,
}

impl Ws {
    /// The subscription made before the upgrade, or else the one a first frame asks for.
    async fn start(
        &mut self,
        opening: Box<(Option<Result<Subscription, Error>>, Params)>,
    ) -> Result<Subscription, End> {
        let (early, params) = *opening;
        match early {
            Some(sub) => sub.map_err(End::Fail),
            None => self.hello(&params).await,
        }
    }

    /// Waits for a first frame naming the chat: `{"chat_id":..,"user_id":..,"namespace":..}`.
    async fn hello(&mut self, base: &Params) -> Result<Subscription, End> {
        let first = tokio::select! {
            first = tokio::time::timeout(HELLO_TIMEOUT, self.frames.next()) => first,
            _ = self.shutdown.changed() => return Err(End::Close(CloseCode::Away, "chatd.Shutdown")),
        };
        match first {
            Ok(Some(Ok(WsMessage::Text(text)))) => {
                let params: Params = serde_json::from_str(&text)
                    .map_err(|e| End::Fail(Error::BadRequest(format!("malformed first frame: {e}"))))?;
                subscribe(&self.state, &params.or(base), self.kind).await.map_err(End::Fail)
            }
            Ok(Some(Err(err))) => Err(End::Refused(err)),
            Ok(None) | Ok(Some(Ok(WsMessage::Close(_)))) => Err(End::Gone),
            Ok(_) => Err(End::Fail(Error::BadRequest("expected a first text frame naming chat_id".into()))),
            Err(_) => Err(End::Fail(Error::BadRequest("no chat named within 10 s".into()))),
        }
    }

    /// Tells the client why its stream ends, as [`End`] says.
    async fn end(self, end: End) {
        match end {
            End::Fail(err) => self.fail(err, None).await,
            End::Refused(err) => self.refuse(err).await,
            End::Close(code, why) => self.close(code, why).await,
            End::Gone => {}
        }
    }

    /// A frame over the size limit: close 1009; text that is not UTF-8: 1007 (each after an
    /// error frame); a frame breaking the protocol: 1002; a failed read: the client is gone.
    async fn refuse(self, err: ProtocolError) {
        let cause = match &err {
            ProtocolError::Io(io) => io.get_ref(),
            _ => None,
        };
        let payload_overflow =
            cause.and_then(|c| c.downcast_ref::<PayloadError>()).is_some_and(|e| matches!(e, PayloadError::Overflow));
        if payload_overflow || matches!(err, ProtocolError::Overflow) {
            let limit = self.state.settings.server.max_body_bytes;
            let err = Error::TooLarge(format!("a frame is larger than {limit} bytes"));
            return self.fail(err, Some(CloseCode::Size)).await;
        }
        if cause.is_some_and(|c| c.is::<std::str::Utf8Error>()) {
            let err = Error::BadRequest("a text frame is not UTF-8".into());
            return self.fail(err, Some(CloseCode::Invalid)).await;
        }
        match err {
            ProtocolError::Io(_) => self.close(CloseCode::Normal, "bye").await,
            _ => self.close(CloseCode::Protocol, "chatd.ProtocolError").await,
        }
    }

    /// Sends one micro error frame, then closes with `code`, by default 4000 + the error's code,
    /// and its id as the reason.
    async fn fail(mut self, err: Error, code: Option<CloseCode>) {
        let body = err.at(self.kind.endpoint()).body();
        let code = code.unwrap_or(CloseCode::Other(4000 + body.code));
        if let Ok(json) = serde_json::to_string(&body) {
            if !matches!(timeout(CLOSE_TIMEOUT, self.session.text(json)).await, Ok(Ok(()))) {
                return; // stalled or gone: the connection is cut off after the stream ends
            }
        }
        let close = self.session.close(Some(CloseReason { code, description: Some(body.id) }));
        let _ = timeout(CLOSE_TIMEOUT, close).await;
    }

    async fn close(self, code: CloseCode, why: &str) {
        let close = self.session.close(Some(CloseReason { code, description: Some(why.to_owned()) }));
        let _ = timeout(CLOSE_TIMEOUT, close).await;
    }

    /// Writes one frame, waiting at most [`WRITE_TIMEOUT`] for room: a reader whose socket takes
    /// nothing that long is closed with 1013, so a stalled client never blocks this task.
    async fn write(&mut self, out: Out) -> Result<(), End> {
        let session = &mut self.session;
        let write = async move {
            match out {
                Out::Text(text) => session.text(text).await,
                Out::Ping => session.ping(b"").await,
                Out::Pong(bytes) => session.pong(&bytes).await,
            }
        };
        tokio::select! {
            written = timeout(WRITE_TIMEOUT, write) => match written {
                Ok(Ok(())) => Ok(()),
                Ok(Err(_)) => Err(End::Gone),
                Err(_) => Err(End::Close(CloseCode::Again, "chatd.SlowReader")),
            },
            _ = self.shutdown.changed() => Err(End::Close(CloseCode::Away, "chatd.Shutdown")),
        }
    }

    async fn serve(&mut self, mut sub: Subscription) -> End {
        if let Err(end) = Box::pin(self.replay(&mut sub)).await {
            return end;
        }
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            let out = tokio::select! {
                live = sub.next() => match live {
                    Live::Message(json) => Out::Text(json),
                    Live::Ended(err) => return End::Fail(err),
                    Live::Behind => return End::Close(CloseCode::Again, "chatd.SlowReader"),
                    Live::Gone => return End::Close(CloseCode::Again, "chatd.Closed"),
                },
                frame = self.frames.next() => {
                    self.last_heard = Instant::now();
                    match frame {
                        Some(Ok(WsMessage::Text(text))) => match Box::pin(self.post(&sub, &text)).await {
                            Some(refusal) => Out::Text(refusal.into()),
                            None => continue,
                        },
                        Some(Ok(WsMessage::Ping(bytes))) => Out::Pong(bytes),
                        Some(Err(err)) => return End::Refused(err),
                        Some(Ok(WsMessage::Close(_))) | None => return End::Close(CloseCode::Normal, "bye"),
                        Some(Ok(_)) => continue,
                    }
                }
                _ = ping.tick() => {
                    if self.last_heard.elapsed() > SILENCE_LIMIT {
                        return End::Close(CloseCode::Policy, "chatd.Silent");
                    }
                    Out::Ping
                }
                _ = self.shutdown.changed() => return End::Close(CloseCode::Away, "chatd.Shutdown"),
            };
            // Boxed: a write's timer and send are held only while writing, not by every idle
            // connection's task (its size is that of its largest state).
            if let Err(end) = Box::pin(self.write(out)).await {
                return end;
            }
        }
    }

    /// Sends every message the subscription missed, from the log.
    async fn replay(&mut self, sub: &mut Subscription) -> Result<(), End> {
        loop {
            let page = sub.replay_page(&self.state).await.map_err(End::Fail)?;
            if page.is_empty() {
                return Ok(());
            }
            for (_, json) in page {
                self.write(Out::Text(json)).await?;
            }
        }
    }

    /// Posts a message sent as a frame; a refusal is an error frame with its client_id, to send.
    async fn post(&self, sub: &Subscription, text: &str) -> Option<String> {
        let (err, client_id) = self.try_post(sub, text).await.err()?;
        let mut frame = serde_json::to_value(err.at("chat.Send").body()).unwrap_or_default();
        if let Some(client_id) = client_id {
            frame["client_id"] = serde_json::Value::String(client_id);
        }
        Some(frame.to_string())
    }

    async fn try_post(&self, sub: &Subscription, text: &str) -> Result<(), (Error, Option<String>)> {
        let frame: Outgoing =
            serde_json::from_str(text).map_err(|e| (Error::BadRequest(format!("malformed frame: {e}")), None))?;
        let client_id = given(&frame.client_id).map(str::to_owned);
        let fail = |err: Error| (err, client_id.clone());
        let user_id = sub.user_id.clone().ok_or(Error::Missing(Field::UserId)).map_err(fail)?;
        let fields = DraftFields {
            text: frame.text.as_deref(),
            subject: frame.subject.as_deref(),
            client_id: frame.client_id.as_deref(),
            id: None,
        };
        let draft = fields.parse(&self.state.settings.limits).map_err(fail)?.from(user_id);
        let post = Post { draft, limited: sub.limited };
        // Success needs no answer here: the message comes back on the stream, with its seq.
        self.state.post(&sub.ns, &sub.chat_id, post).await.map(drop).map_err(fail)
    }
}

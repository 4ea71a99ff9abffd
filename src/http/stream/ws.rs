//! The WebSocket transport: one JSON text frame per message. Client frames post messages with
//! Send's rules; their echo (with seq) is the acknowledgement. The server pings every 15 s and
//! drops a peer silent for 60 s.

use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{CloseCode, CloseReason, Message as WsMessage, ProtocolError};
use futures_util::StreamExt;
use serde::Deserialize;

use super::{subscribe, Kind, Live, Params, Subscription, PING_EVERY};
use crate::chat::Post;
use crate::error::{Error, Field};
use crate::http::body::given;
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
    let (response, session, frames) = actix_ws::handle(&req, payload)
        .map_err(|e| Error::BadRequest(format!("bad WebSocket handshake: {e}")).at(kind.endpoint()))?;
    let frames = frames.max_frame_size(state.settings.server.max_body_bytes);
    // Named in the request: subscribe now, before the 101 goes out.
    let early = match params.chat_id() {
        Some(_) => Some(subscribe(&state, &params, kind).await),
        None => None,
    };
    actix_web::rt::spawn(async move {
        let mut ws = Ws { state, session, frames, kind, last_heard: Instant::now() };
        let sub = match early {
            Some(sub) => sub,
            None => ws.hello(&params).await,
        };
        match sub {
            Ok(sub) => ws.serve(sub).await,
            Err(err) => ws.fail(err).await,
        }
    });
    Ok(response)
}

struct Ws {
    state: web::Data<AppState>,
    session: actix_ws::Session,
    frames: actix_ws::MessageStream,
    kind: Kind,
    last_heard: Instant,
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
    /// Waits for a first frame naming the chat: `{"chat_id":..,"user_id":..,"namespace":..}`.
    async fn hello(&mut self, base: &Params) -> Result<Subscription, Error> {
        match tokio::time::timeout(HELLO_TIMEOUT, self.frames.next()).await {
            Ok(Some(Ok(WsMessage::Text(text)))) => {
                let params: Params = serde_json::from_str(&text)
                    .map_err(|e| Error::BadRequest(format!("malformed first frame: {e}")))?;
                subscribe(&self.state, &params.or(base), self.kind).await
            }
            Ok(_) => Err(Error::BadRequest("expected a first text frame naming chat_id".into())),
            Err(_) => Err(Error::BadRequest("no chat named within 10 s".into())),
        }
    }

    /// Sends one micro error frame, then closes with 4000 + its code and its id as the reason.
    async fn fail(mut self, err: Error) {
        let body = err.at(self.kind.endpoint()).body();
        let code = 4000 + body.code;
        if let Ok(json) = serde_json::to_string(&body) {
            let _ = self.session.text(json).await;
        }
        let _ =
            self.session.close(Some(CloseReason { code: CloseCode::Other(code), description: Some(body.id) })).await;
    }

    async fn close(self, code: CloseCode, why: &str) {
        let _ = self.session.close(Some(CloseReason { code, description: Some(why.to_owned()) })).await;
    }

    async fn serve(mut self, mut sub: Subscription) {
        let mut shutdown = self.state.shutdown.clone();
        match self.replay(&mut sub).await {
            Ok(()) => {}
            Err(Some(err)) => return self.fail(err).await,
            Err(None) => return, // the socket is gone
        }
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                live = sub.next() => match live {
                    Live::Message(json) => {
                        if self.session.text(json).await.is_err() {
                            return;
                        }
                    }
                    Live::Ended(err) => return self.fail(err).await,
                    Live::Behind => return self.close(CloseCode::Again, "chatd.SlowReader").await,
                    Live::Gone => return self.close(CloseCode::Again, "chatd.Closed").await,
                },
                frame = self.frames.next() => {
                    self.last_heard = Instant::now();
                    match frame {
                        Some(Ok(WsMessage::Text(text))) => self.post(&sub, &text).await,
                        Some(Ok(WsMessage::Ping(bytes))) => { let _ = self.session.pong(&bytes).await; }
                        Some(Err(ProtocolError::Overflow)) => {
                            let limit = self.state.settings.server.max_body_bytes;
                            return self.fail(Error::TooLarge(format!("a frame is larger than {limit} bytes"))).await;
                        }
                        Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => return self.close(CloseCode::Normal, "bye").await,
                        Some(Ok(_)) => {}
                    }
                }
                _ = ping.tick() => {
                    if self.last_heard.elapsed() > SILENCE_LIMIT {
                        return self.close(CloseCode::Policy, "chatd.Silent").await;
                    }
                    if self.session.ping(b"").await.is_err() {
                        return;
                    }
                }
                _ = shutdown.changed() => return self.close(CloseCode::Away, "chatd.Shutdown").await,
            }
        }
    }

    /// Sends every message the subscription missed, from the log. `Err(None)`: the socket is gone.
    async fn replay(&mut self, sub: &mut Subscription) -> Result<(), Option<Error>> {
        loop {
            let page = sub.replay_page(&self.state).await.map_err(Some)?;
            if page.is_empty() {
                return Ok(());
            }
            for (seq, json) in page {
                self.session.text(json).await.map_err(|_| None)?;
                sub.sent = seq;
            }
        }
    }

    /// Posts a message sent as a frame; a refusal comes back as an error frame with its client_id.
    async fn post(&mut self, sub: &Subscription, text: &str) {
        if let Err((err, client_id)) = self.try_post(sub, text).await {
            let mut frame = serde_json::to_value(err.at("chat.Send").body()).unwrap_or_default();
            if let Some(client_id) = client_id {
                frame["client_id"] = serde_json::Value::String(client_id);
            }
            let _ = self.session.text(frame.to_string()).await;
        }
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
        let receipt = self.state.ask(&sub.ns, &sub.chat_id, post).await.and_then(|r| r).map_err(fail)?;
        receipt.message().await.map(drop).map_err(fail)
    }
}

//! Real-time streams on Connect's paths: a WebSocket (as m3o's gateway served streams: one JSON
//! text frame per message) or, with `Accept: text/event-stream`, Server-Sent Events.
//!
//! A stream subscribes to its chat *before* answering the upgrade, so nothing sent after the 101
//! is missed. With `since`, it first replays every message above that seq from the log, then
//! forwards live ones; the chat told it the last durable seq at subscription time, so replay and
//! live meet with no gap and no duplicate.

use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use actix_ws::{CloseCode, CloseReason, Message as WsMessage};
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::sync::{mpsc, watch};

use super::body::given;
use super::chat::bounded;
use super::AppState;
use crate::chat::{Close, Event, Page, Post, Read, Subscribe};
use crate::error::{ApiError, Error, Field, MicroError};
use crate::model::{ChatId, ClientId, MessageView, Namespace, UserId};

const ENDPOINT: &str = "chat.Connect";
/// How many messages may wait for one subscriber before it counts as too slow.
const QUEUE: usize = 256;
const PING_EVERY: Duration = Duration::from_secs(15);
const SILENCE_LIMIT: Duration = Duration::from_secs(60);
/// How long a WebSocket may take to name its chat in a first frame.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Replay reads the log in pages of this many messages.
const REPLAY_PAGE: u64 = 500;

/// What a stream names: from query parameters, headers or a first frame.
#[derive(Debug, Default, Deserialize)]
struct Params {
    chat_id: Option<String>,
    group_id: Option<String>,
    user_id: Option<String>,
    namespace: Option<String>,
    since: Option<String>,
}

impl Params {
    fn from_request(req: &HttpRequest) -> Result<Params, Error> {
        let mut params = web::Query::<Params>::from_query(req.query_string())
            .map(web::Query::into_inner)
            .map_err(|e| Error::BadRequest(format!("bad query string: {e}")))?;
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        params.chat_id = params.chat_id.or_else(|| header("chat-id"));
        params.user_id = params.user_id.or_else(|| header("user-id"));
        params.namespace = params.namespace.or_else(|| header("micro-namespace"));
        // EventSource reconnects with its original URL plus Last-Event-ID: that one is newer.
        if let Some(last) = header("last-event-id") {
            params.since = Some(last);
        }
        Ok(params)
    }

    fn chat_id(&self) -> Option<&str> {
        given(&self.chat_id).or(given(&self.group_id))
    }
}

/// A live subscription: the chat's events, and why the chat may end it.
struct Subscription {
    ns: Namespace,
    chat_id: ChatId,
    user_id: Option<UserId>,
    events: mpsc::Receiver<Event>,
    close: mpsc::Receiver<Close>,
    /// Messages above `since` up to `until` are replayed from the log; later ones arrive live.
    since: u64,
    until: u64,
}

async fn subscribe(state: &AppState, params: &Params) -> Result<Subscription, Error> {
    let max_id = state.settings.limits.max_id_bytes;
    let ns = match given(&params.namespace) {
        Some(ns) => Namespace::parse(ns, max_id)?,
        None => Namespace::default_ns(),
    };
    let chat_id = ChatId::parse(
        params.chat_id().ok_or(Error::Missing(Field::ChatId))?,
        max_id,
    )?;
    let user_id = given(&params.user_id)
        .map(|u| UserId::parse(u, max_id))
        .transpose()?;
    let since = match given(&params.since) {
        None => None,
        Some(s) => Some(
            s.trim()
                .parse::<u64>()
                .map_err(|_| Error::BadRequest(format!("since must be a seq, not {s:?}")))?,
        ),
    };
    let (events_tx, events) = mpsc::channel(QUEUE);
    let (close_tx, close) = mpsc::channel(1);
    let until = state
        .ask(
            &ns,
            &chat_id,
            Subscribe {
                events: events_tx,
                close: close_tx,
            },
        )
        .await??;
    // Without `since`, only new messages arrive.
    let since = since.unwrap_or(until).min(until);
    Ok(Subscription {
        ns,
        chat_id,
        user_id,
        events,
        close,
        since,
        until,
    })
}

/// GET on a Connect path: a WebSocket upgrade, or SSE when the client accepts `text/event-stream`.
pub async fn connect(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let params = Params::from_request(&req).map_err(|e| e.at(ENDPOINT))?;
    let wants_ws = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if wants_ws {
        return websocket(state, req, payload, params).await;
    }
    let wants_sse = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    if wants_sse {
        return sse(state, params).await.map_err(|e| e.at(ENDPOINT));
    }
    Err(Error::BadRequest(
        "Connect is a stream: open a WebSocket, or GET with Accept: text/event-stream".into(),
    )
    .at(ENDPOINT))
}

async fn websocket(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
    params: Params,
) -> Result<HttpResponse, ApiError> {
    let (response, session, frames) = actix_ws::handle(&req, payload)
        .map_err(|e| Error::BadRequest(format!("bad WebSocket handshake: {e}")).at(ENDPOINT))?;
    let frames = frames.max_frame_size(state.settings.server.max_body_bytes);
    // Named in the request: subscribe now, before the 101 goes out.
    let early = match params.chat_id() {
        Some(_) => Some(subscribe(&state, &params).await),
        None => None,
    };
    actix_web::rt::spawn(async move {
        let mut ws = Ws {
            state,
            session,
            frames,
            last_heard: Instant::now(),
        };
        let sub = match early {
            Some(sub) => sub,
            None => ws.hello().await,
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
    last_heard: Instant,
}

/// A frame a client sends to post a message.
#[derive(Deserialize)]
struct Outgoing {
    text: Option<String>,
    subject: Option<String>,
    client_id: Option<String>,
    client: Option<String>,
}

impl Ws {
    /// Waits for a first frame naming the chat: `{"chat_id":..,"user_id":..,"namespace":..}`.
    async fn hello(&mut self) -> Result<Subscription, Error> {
        let first = tokio::time::timeout(HELLO_TIMEOUT, self.frames.next()).await;
        match first {
            Ok(Some(Ok(WsMessage::Text(text)))) => {
                let params: Params = serde_json::from_str(&text)
                    .map_err(|e| Error::BadRequest(format!("malformed first frame: {e}")))?;
                subscribe(&self.state, &params).await
            }
            Ok(_) => Err(Error::BadRequest(
                "expected a first text frame naming chat_id".into(),
            )),
            Err(_) => Err(Error::BadRequest("no chat named within 10 s".into())),
        }
    }

    /// Sends one micro error frame, then closes with 4000 + its code and its id as the reason.
    async fn fail(mut self, err: Error) {
        let body = err.at(ENDPOINT).body();
        let code = 4000 + body.code;
        if let Ok(json) = serde_json::to_string(&body) {
            let _ = self.session.text(json).await;
        }
        let _ = self
            .session
            .close(Some(CloseReason {
                code: CloseCode::Other(code),
                description: Some(body.id),
            }))
            .await;
    }

    async fn close(self, code: CloseCode, why: &str) {
        let _ = self
            .session
            .close(Some(CloseReason {
                code,
                description: Some(why.to_owned()),
            }))
            .await;
    }

    async fn serve(mut self, mut sub: Subscription) {
        let mut shutdown = self.state.shutdown.clone();
        let mut sent = match self.replay(&sub).await {
            Ok(sent) => sent,
            Err(Some(err)) => return self.fail(err).await,
            Err(None) => return,
        };
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                event = sub.events.recv() => match event {
                    Some(event) if event.seq > sent => {
                        sent = event.seq;
                        if self.session.text(event.json).await.is_err() {
                            return;
                        }
                    }
                    Some(_) => {}
                    None => return self.close(CloseCode::Again, "chat.Connect.Closed").await,
                },
                reason = sub.close.recv() => {
                    let Some(Close::SlowReader) = reason else { return };
                    return self.close(CloseCode::Again, "chat.Connect.SlowReader").await;
                }
                frame = self.frames.next() => {
                    self.last_heard = Instant::now();
                    match frame {
                        Some(Ok(WsMessage::Text(text))) => self.post(&sub, &text).await,
                        Some(Ok(WsMessage::Ping(bytes))) => { let _ = self.session.pong(&bytes).await; }
                        Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => return self.close(CloseCode::Normal, "bye").await,
                        Some(Ok(_)) => {}
                    }
                }
                _ = ping.tick() => {
                    if self.last_heard.elapsed() > SILENCE_LIMIT {
                        return self.close(CloseCode::Policy, "chat.Connect.Silent").await;
                    }
                    if self.session.ping(b"").await.is_err() {
                        return;
                    }
                }
                _ = shutdown.changed() => return self.close(CloseCode::Away, "chatd.Shutdown").await,
            }
        }
    }

    /// Sends every message in (since, until] from the log; returns the last seq sent.
    /// `Err(None)`: the socket is gone.
    async fn replay(&mut self, sub: &Subscription) -> Result<u64, Option<Error>> {
        let mut sent = sub.since;
        loop {
            let page = replay_page(&self.state, sub, sent).await.map_err(Some)?;
            if page.is_empty() {
                return Ok(sent);
            }
            for (seq, json) in page {
                self.session.text(json).await.map_err(|_| None)?;
                sent = seq;
            }
        }
    }

    /// Posts a message sent as a frame; a refusal comes back as an error frame with its client_id.
    async fn post(&mut self, sub: &Subscription, text: &str) {
        let outcome = self.try_post(sub, text).await;
        if let Err((err, client_id)) = outcome {
            let body: MicroError = err.at("chat.Send").body();
            let mut frame = serde_json::to_value(&body).unwrap_or_default();
            if let Some(client_id) = client_id {
                frame["client_id"] = serde_json::Value::String(client_id);
            }
            let _ = self.session.text(frame.to_string()).await;
        }
    }

    async fn try_post(
        &self,
        sub: &Subscription,
        text: &str,
    ) -> Result<(), (Error, Option<String>)> {
        let frame: Outgoing = serde_json::from_str(text)
            .map_err(|e| (Error::BadRequest(format!("malformed frame: {e}")), None))?;
        let client_id = given(&frame.client_id)
            .or(given(&frame.client))
            .map(str::to_owned);
        let fail = |err: Error| (err, client_id.clone());
        let limits = &self.state.settings.limits;
        let user_id = sub
            .user_id
            .clone()
            .ok_or(Error::Missing(Field::UserId))
            .map_err(fail)?;
        let text = given(&frame.text)
            .ok_or(Error::Missing(Field::Text))
            .map_err(fail)?;
        let post = Post {
            user_id,
            text: bounded(text, limits.max_text_bytes, "text").map_err(fail)?,
            subject: bounded(
                frame.subject.as_deref().unwrap_or(""),
                limits.max_subject_bytes,
                "subject",
            )
            .map_err(fail)?,
            client_id: client_id
                .as_deref()
                .map(|c| ClientId::parse(c, limits.max_id_bytes))
                .transpose()
                .map_err(fail)?,
            id: None,
        };
        // Success needs no answer here: the message comes back on the stream, with its seq.
        self.state
            .ask(&sub.ns, &sub.chat_id, post)
            .await
            .and_then(|r| r)
            .map(drop)
            .map_err(fail)
    }
}

/// The next page of a replay after `sent`, as (seq, JSON) pairs; empty once `until` is reached.
async fn replay_page(
    state: &AppState,
    sub: &Subscription,
    sent: u64,
) -> Result<Vec<(u64, String)>, Error> {
    if sent >= sub.until {
        return Ok(Vec::new());
    }
    let page = Page::History {
        limit: REPLAY_PAGE,
        before: Some(sub.until + 1),
        after: Some(sent),
    };
    let messages = state.ask(&sub.ns, &sub.chat_id, Read(page)).await??;
    Ok(messages
        .iter()
        .map(|m| {
            (
                m.seq,
                serde_json::to_string(&MessageView::new(&sub.chat_id, m)).unwrap_or_default(),
            )
        })
        .collect())
}

/// The stream as Server-Sent Events: `id:` is the seq, so EventSource resumes by itself.
async fn sse(state: web::Data<AppState>, params: Params) -> Result<HttpResponse, Error> {
    let sub = subscribe(&state, &params).await?;
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    actix_web::rt::spawn(serve_sse(state, sub, tx));
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
    });
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(body))
}

fn sse_event(seq: u64, json: &str) -> Bytes {
    Bytes::from(format!("id: {seq}\ndata: {json}\n\n"))
}

/// Feeds one SSE response. Ends when the client goes away (the body is dropped), when it is too
/// slow, or at shutdown.
async fn serve_sse(state: web::Data<AppState>, mut sub: Subscription, out: mpsc::Sender<Bytes>) {
    let mut shutdown: watch::Receiver<bool> = state.shutdown.clone();
    if out
        .send(Bytes::from_static(b": connected\n\n"))
        .await
        .is_err()
    {
        return;
    }
    let mut sent = sub.since;
    loop {
        match replay_page(&state, &sub, sent).await {
            Ok(page) if page.is_empty() => break,
            Ok(page) => {
                for (seq, json) in page {
                    if out.send(sse_event(seq, &json)).await.is_err() {
                        return;
                    }
                    sent = seq;
                }
            }
            Err(err) => {
                let body = err.at(ENDPOINT).body();
                let json = serde_json::to_string(&body).unwrap_or_default();
                let _ = out
                    .send(Bytes::from(format!("event: error\ndata: {json}\n\n")))
                    .await;
                return;
            }
        }
    }
    let mut keepalive = tokio::time::interval(PING_EVERY);
    keepalive.tick().await;
    loop {
        let chunk = tokio::select! {
            event = sub.events.recv() => match event {
                Some(event) if event.seq > sent => {
                    sent = event.seq;
                    sse_event(event.seq, &event.json)
                }
                Some(_) => continue,
                None => return,
            },
            _ = sub.close.recv() => return,
            _ = keepalive.tick() => Bytes::from_static(b": keepalive\n\n"),
            _ = shutdown.changed() => return,
        };
        if out.send(chunk).await.is_err() {
            return;
        }
    }
}

//! Real-time streams on Connect's and Join's paths: a WebSocket (as m3o's gateway served
//! streams: one JSON text frame per message) or, with `Accept: text/event-stream`, Server-Sent
//! Events. `ws.rs` and `sse.rs` hold the two transports; this file what they share.
//!
//! A stream subscribes to its chat *before* answering the upgrade, so nothing sent after the 101
//! is missed. With `since`, it first replays every message above that seq from the log, then
//! forwards live ones; the chat told it the last durable seq at subscription time, so replay and
//! live meet with no gap and no duplicate.

mod frame_guard;
mod sse;
mod ws;

use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use bytestring::ByteString;
use serde::Deserialize;
use tokio::sync::broadcast::{self, error::RecvError};

use super::body::given;
use super::chat::acting_as;
use super::error::{ApiError, At};
use super::views::Shape;
use super::AppState;
use crate::chat::{Change, Event, Page, Read, Subscribe, Update};
use crate::error::{Error, Field};
use crate::model::{ChatId, Message, Namespace, UserId};

const PING_EVERY: Duration = Duration::from_secs(15);
/// A stream write that makes no progress for this long means a stalled reader (docs/API.md section 4).
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stream that is ending waits to queue its last frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Replay reads the log in pages of this many messages.
const REPLAY_PAGE: u64 = 500;

/// Connect watches a chat; Join first adds the user to a group, then does the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Connect,
    Join,
}

impl Kind {
    fn endpoint(self) -> &'static str {
        match self {
            Kind::Connect => "chat.Connect",
            Kind::Join => "chat.Join",
        }
    }

    /// Connect streams bare v1 messages; Join streams `{"message": ...}` in the v2 shape, as
    /// m3o's chat v2 did.
    fn shape(self) -> Shape {
        match self {
            Kind::Connect => Shape::V1,
            Kind::Join => Shape::V2Frame,
        }
    }
}

/// What a stream names: from query parameters, headers or a first frame.
#[derive(Debug, Default, Clone, Deserialize)]
struct Params {
    chat_id: Option<String>,
    group_id: Option<String>,
    user_id: Option<String>,
    namespace: Option<String>,
    /// A seq: a number, or a numeric string (query parameters are strings).
    #[serde(default, deserialize_with = "crate::http::body::count")]
    since: Option<u64>,
    /// A user token (browsers cannot set headers on a WebSocket or an EventSource).
    token: Option<String>,
}

impl Params {
    fn from_request(req: &HttpRequest) -> Result<Params, Error> {
        // Ids must be UTF-8; `web::Query` would quietly replace bad bytes instead.
        for part in req.query_string().split(['&', '=']) {
            if percent_encoding::percent_decode_str(part).decode_utf8().is_err() {
                return Err(Error::BadId("query parameters must be UTF-8".into()));
            }
        }
        let mut params = web::Query::<Params>::from_query(req.query_string())
            .map(web::Query::into_inner)
            .map_err(|e| Error::BadRequest(format!("bad query string: {e}")))?;
        let header = |name: &str| {
            let value = req.headers().get(name)?.to_str().ok()?;
            (!value.is_empty()).then(|| value.to_owned())
        };
        params.chat_id = params.chat_id.or_else(|| header("chat-id"));
        params.user_id = params.user_id.or_else(|| header("user-id"));
        params.namespace = params.namespace.or_else(|| header("micro-namespace"));
        params.token = params.token.or_else(|| {
            let auth = header("authorization")?;
            auth.strip_prefix("Bearer ").or_else(|| auth.strip_prefix("bearer ")).map(str::to_owned)
        });
        // EventSource reconnects with its original URL plus Last-Event-ID: that one is newer.
        if let Some(last) = header("last-event-id") {
            let seq = last
                .trim()
                .parse()
                .map_err(|_| Error::BadRequest(format!("Last-Event-ID must be a seq, not {last:?}")))?;
            params.since = Some(seq);
        }
        Ok(params)
    }

    fn chat_id(&self) -> Option<&str> {
        given(&self.chat_id).or(given(&self.group_id))
    }

    /// Fills what a first frame left out from what the request carried.
    fn or(self, base: &Params) -> Params {
        Params {
            chat_id: self.chat_id.or(base.chat_id.clone()),
            group_id: self.group_id.or(base.group_id.clone()),
            user_id: self.user_id.or(base.user_id.clone()),
            namespace: self.namespace.or(base.namespace.clone()),
            since: self.since.or(base.since),
            token: self.token.or(base.token.clone()),
        }
    }
}

/// A live subscription to a chat's stream.
struct Subscription {
    ns: Namespace,
    chat_id: ChatId,
    kind: Kind,
    user_id: Option<UserId>,
    /// Posts from a user token are rate-limited.
    limited: bool,
    events: broadcast::Receiver<Event>,
    /// The last seq delivered: messages up to `until` are replayed from the log, later ones
    /// arrive live on `events`.
    sent: u64,
    until: u64,
}

/// What a subscription yields next, once its replay is done.
enum Live {
    Message(ByteString),
    /// The chat ended this stream: the user was removed, or the chat deleted.
    Ended(Error),
    /// The reader fell further behind than the chat's stream holds: too slow.
    Behind,
    /// The chat's stream is gone (the chat stopped, e.g. at shutdown).
    Gone,
}

impl Subscription {
    /// The next live event for this subscriber, skipping what the replay already delivered.
    async fn next(&mut self) -> Live {
        loop {
            match self.events.recv().await {
                Ok(Event::Message(delivered)) if delivered.msg.seq > self.sent => {
                    self.sent = delivered.msg.seq;
                    if self.skips(&delivered.msg) {
                        continue;
                    }
                    // The first subscriber to get here encodes it; the rest share the bytes.
                    return Live::Message(self.kind.shape().json(&self.chat_id, &delivered).clone());
                }
                Ok(Event::Removed(users)) if self.user_id.as_ref().is_some_and(|u| users.contains(u)) => {
                    return Live::Ended(Error::Forbidden("you are no longer a member of this chat".into()));
                }
                Ok(Event::Deleted) => return Live::Ended(Error::chat_not_found()),
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => return Live::Behind,
                Err(RecvError::Closed) => return Live::Gone,
            }
        }
    }

    /// A Join stream does not deliver its own user's messages (as m3o did).
    fn skips(&self, msg: &Message) -> bool {
        self.kind == Kind::Join && self.user_id.as_ref() == Some(&msg.user_id)
    }

    /// The next page of the replay, as (seq, JSON) pairs; empty once `until` is reached.
    async fn replay_page(&mut self, state: &AppState) -> Result<Vec<(u64, ByteString)>, Error> {
        while self.sent < self.until {
            let page = Page::History { limit: REPLAY_PAGE, before: Some(self.until + 1), after: Some(self.sent) };
            // The subscription already passed the membership check.
            let messages = state.ask(&self.ns, &self.chat_id, Read { page, reader: None }).await??.messages().await?;
            let Some(last) = messages.last() else { break };
            self.sent = last.msg.seq;
            let shape = self.kind.shape();
            let out: Vec<_> = messages
                .iter()
                .filter(|d| !self.skips(&d.msg))
                .map(|d| (d.msg.seq, shape.json(&self.chat_id, d).clone()))
                .collect();
            if !out.is_empty() {
                return Ok(out);
            }
        }
        Ok(Vec::new())
    }
}

/// Authenticates, validates, joins (for Join) and subscribes, in the contract's check order.
async fn subscribe(state: &AppState, params: &Params, kind: Kind) -> Result<Subscription, Error> {
    let caller = state.authenticate(given(&params.namespace), given(&params.token))?;
    let max_id = state.settings.limits.max_id_bytes;
    let chat_id = params.chat_id().ok_or(Error::Missing(Field::ChatId))?;
    if kind == Kind::Join && given(&params.user_id).is_none() && caller.reader().is_none() {
        return Err(Error::Missing(Field::UserId));
    }
    let chat_id = ChatId::parse(chat_id, max_id)?;
    let user_id = given(&params.user_id).map(|u| UserId::parse(u, max_id)).transpose()?;
    let user_id = match kind {
        Kind::Connect => caller.acting_as(user_id)?,
        Kind::Join => Some(acting_as(&caller, user_id, Field::UserId)?),
    };
    if let (Kind::Join, Some(user)) = (kind, &user_id) {
        let join = Update { change: Change::Join(user.clone()), by: caller.reader() };
        state.ask(&caller.ns, &chat_id, join).await??;
    }
    let (until, events) = state.ask(&caller.ns, &chat_id, Subscribe { reader: caller.reader() }).await??;
    // Without `since`, only new messages arrive.
    let sent = params.since.unwrap_or(until).min(until);
    let limited = caller.reader().is_some();
    Ok(Subscription { ns: caller.ns, chat_id, kind, user_id, limited, events, sent, until })
}

pub async fn connect(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    stream(state, req, payload, Kind::Connect).await
}

pub async fn join(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    stream(state, req, payload, Kind::Join).await
}

/// GET on a stream path: a WebSocket upgrade, or SSE when the client accepts `text/event-stream`.
async fn stream(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
    kind: Kind,
) -> Result<HttpResponse, ApiError> {
    let params = Params::from_request(&req).map_err(|e| e.at(kind.endpoint()))?;
    let header_has = |name, value: &str| {
        req.headers().get(name).and_then(|v| v.to_str().ok()).is_some_and(|v| v.to_ascii_lowercase().contains(value))
    };
    if header_has(header::UPGRADE, "websocket") {
        return ws::open(state, req, payload, params, kind).await;
    }
    if header_has(header::ACCEPT, "text/event-stream") {
        return sse::open(state, &req, params, kind).await.map_err(|e| e.at(kind.endpoint()));
    }
    let err = Error::BadRequest("this is a stream: open a WebSocket, or GET with Accept: text/event-stream".into());
    Err(err.at(kind.endpoint()))
}

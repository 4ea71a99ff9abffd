//! The Server-Sent Events transport: `id:` is each message's seq, so EventSource resumes by
//! itself with `Last-Event-ID`. A `:` comment every 15 s keeps proxies from closing it. A
//! client that takes nothing for 30 s is cut off, as on a WebSocket.

use actix_web::http::header;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use tokio::sync::{mpsc, watch};
use tokio::time::timeout;

use super::{subscribe, Kind, Live, Params, Subscription, CLOSE_TIMEOUT, PING_EVERY, WRITE_TIMEOUT};
use crate::error::Error;
use crate::http::conn::Cutoff;
use crate::http::error::At;
use crate::http::AppState;

pub(super) async fn open(
    state: web::Data<AppState>,
    req: &HttpRequest,
    params: Params,
    kind: Kind,
) -> Result<HttpResponse, Error> {
    let sub = subscribe(&state, &params, kind).await?;
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let cutoff = Cutoff::of(req);
    actix_web::rt::spawn(async move {
        serve(state, sub, tx, kind).await;
        // The body has ended; a stalled client's connection is reset instead of held.
        cutoff.after_linger().await;
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (Ok::<_, std::convert::Infallible>(chunk), rx))
    });
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        // Not kept alive after the stream: a connection still there after it ends is stalled.
        .force_close()
        .streaming(body))
}

fn event(seq: u64, json: &str) -> Bytes {
    Bytes::from(format!("id: {seq}\ndata: {json}\n\n"))
}

fn error_event(err: Error, kind: Kind) -> Bytes {
    let json = serde_json::to_string(&err.at(kind.endpoint()).body()).unwrap_or_default();
    Bytes::from(format!("event: error\ndata: {json}\n\n"))
}

/// Feeds one SSE response. Ends when the client goes away (the body is dropped), when the chat
/// ends the subscription, at shutdown, or when the client stops taking events.
async fn serve(state: web::Data<AppState>, mut sub: Subscription, out: mpsc::Sender<Bytes>, kind: Kind) {
    let mut feed = Feed { out, shutdown: state.shutdown.clone() };
    if feed.send(Bytes::from_static(b": connected\n\n")).await.is_err() {
        return;
    }
    loop {
        match sub.replay_page(&state).await {
            Ok(page) if page.is_empty() => break,
            Ok(page) => {
                for (seq, json) in page {
                    if feed.send(event(seq, &json)).await.is_err() {
                        return;
                    }
                }
            }
            Err(err) => {
                let _ = feed.send(error_event(err, kind)).await;
                return;
            }
        }
    }
    let mut keepalive = tokio::time::interval(PING_EVERY);
    keepalive.tick().await;
    loop {
        let chunk = tokio::select! {
            live = sub.next() => match live {
                Live::Message(json) => event(sub.sent, &json),
                Live::Ended(err) => {
                    let _ = timeout(CLOSE_TIMEOUT, feed.out.send(error_event(err, kind))).await;
                    return;
                }
                Live::Behind | Live::Gone => return,
            },
            _ = keepalive.tick() => Bytes::from_static(b": keepalive\n\n"),
            _ = feed.shutdown.changed() => return,
        };
        if feed.send(chunk).await.is_err() {
            return;
        }
    }
}

/// The body's sending end: every send is bounded.
struct Feed {
    out: mpsc::Sender<Bytes>,
    shutdown: watch::Receiver<bool>,
}

impl Feed {
    /// Queues one chunk, waiting at most [`WRITE_TIMEOUT`] for room. `Err`: the stream ends
    /// (the client is gone, stalled, or the server is shutting down).
    async fn send(&mut self, chunk: Bytes) -> Result<(), ()> {
        tokio::select! {
            sent = timeout(WRITE_TIMEOUT, self.out.send(chunk)) => match sent {
                Ok(Ok(())) => Ok(()),
                Ok(Err(_)) | Err(_) => Err(()),
            },
            _ = self.shutdown.changed() => Err(()),
        }
    }
}

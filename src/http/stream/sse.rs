//! The Server-Sent Events transport: `id:` is each message's seq, so EventSource resumes by
//! itself with `Last-Event-ID`. A `:` comment every 15 s keeps proxies from closing it.

use actix_web::http::header;
use actix_web::web::{self, Bytes};
use actix_web::HttpResponse;
use tokio::sync::mpsc;

use super::{subscribe, Kind, Live, Params, Subscription, PING_EVERY};
use crate::error::Error;
use crate::http::error::At;
use crate::http::AppState;

pub(super) async fn open(state: web::Data<AppState>, params: Params, kind: Kind) -> Result<HttpResponse, Error> {
    let sub = subscribe(&state, &params, kind).await?;
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    actix_web::rt::spawn(serve(state, sub, tx, kind));
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (Ok::<_, std::convert::Infallible>(chunk), rx))
    });
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
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
/// ends the subscription, or at shutdown.
async fn serve(state: web::Data<AppState>, mut sub: Subscription, out: mpsc::Sender<Bytes>, kind: Kind) {
    let mut shutdown = state.shutdown.clone();
    if out.send(Bytes::from_static(b": connected\n\n")).await.is_err() {
        return;
    }
    loop {
        match sub.replay_page(&state).await {
            Ok(page) if page.is_empty() => break,
            Ok(page) => {
                for (seq, json) in page {
                    if out.send(event(seq, &json)).await.is_err() {
                        return;
                    }
                    sub.sent = seq;
                }
            }
            Err(err) => {
                let _ = out.send(error_event(err, kind)).await;
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
                    let _ = out.send(error_event(err, kind)).await;
                    return;
                }
                Live::Behind | Live::Gone => return,
            },
            _ = keepalive.tick() => Bytes::from_static(b": keepalive\n\n"),
            _ = shutdown.changed() => return,
        };
        if out.send(chunk).await.is_err() {
            return;
        }
    }
}

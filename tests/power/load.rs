//! The load of one cycle: senders of new messages (each with a unique client id), a retrier of
//! the sends left unanswered by the last cut (same client ids), and one WebSocket subscriber per
//! chat that resumes with `since`. Each runs until the server goes away and returns what it saw;
//! none of them judges it (that is `model.rs`).

use std::time::{Duration, Instant};

use actix_web::rt::task::JoinHandle;
use awc::ws::{Frame, Message};
use futures_util::{SinkExt, StreamExt};

use super::Rng;
use crate::helpers::{enc, sleep_ms, Api};

/// A sender stops after this many messages in one cycle, whatever happens.
const MAX_PER_TASK: usize = 20_000;

/// What one sending task saw.
#[derive(Default)]
pub struct Sent {
    /// (chat number, client id, seq, when the 200 came)
    pub acked: Vec<(usize, String, u64, Instant)>,
    /// Sent without a 200: (chat number, client id).
    pub unanswered: Vec<(usize, String)>,
    /// Error answers (not a lost connection), with when they came.
    pub errors: Vec<(Instant, String)>,
    /// How many of `acked` were retries.
    pub retried: usize,
}

/// Sends `client_id` to chat `n`; records the outcome; whether the server answered 200.
async fn send_one(api: &Api, chats: &[String], n: usize, client_id: String, sent: &mut Sent) -> bool {
    match api.send(&chats[n], &client_id).await {
        Ok((200, body)) if body["message"]["client_id"] == client_id.as_str() => {
            let seq = body["message"]["seq"].as_u64().unwrap_or(0);
            sent.acked.push((n, client_id, seq, Instant::now()));
            true
        }
        Ok((status, body)) => {
            sent.errors.push((Instant::now(), format!("Send {client_id} to chat {n}: {status} {body}")));
            sent.unanswered.push((n, client_id));
            false
        }
        Err(_) => {
            sent.unanswered.push((n, client_id));
            false
        }
    }
}

/// A task sending new messages to random chats, with a short random pause between sends,
/// until its first failure.
pub fn sender(api: Api, chats: Vec<String>, cycle: usize, task: usize, mut rng: Rng) -> JoinHandle<Sent> {
    actix_web::rt::spawn(async move {
        let mut sent = Sent::default();
        for i in 0..MAX_PER_TASK {
            let n = rng.below(chats.len() as u64) as usize;
            if !send_one(&api, &chats, n, format!("c{cycle}-t{task}-m{i}"), &mut sent).await {
                break;
            }
            sleep_ms(rng.below(6)).await;
        }
        sent
    })
}

/// A task retrying `pending` sends in order, until its first failure; the rest stay unanswered.
pub fn retrier(api: Api, chats: Vec<String>, pending: Vec<(usize, String)>) -> JoinHandle<Sent> {
    actix_web::rt::spawn(async move {
        let mut sent = Sent::default();
        let mut left = pending.into_iter();
        for (n, client_id) in left.by_ref() {
            if !send_one(&api, &chats, n, client_id, &mut sent).await {
                break;
            }
            sent.retried += 1;
        }
        sent.unanswered.extend(left);
        sent
    })
}

/// What one stream connection showed.
#[derive(Default)]
pub struct Streamed {
    pub since: u64,
    /// (seq, client id) of each message frame, in order.
    pub frames: Vec<(u64, String)>,
    /// A failed handshake or an error frame, with when it came.
    pub errors: Vec<(Instant, String)>,
}

/// A WebSocket subscriber of `chat` from `since`, until the connection ends or (if given) it has
/// shown seq `until`.
pub fn subscriber(port: u16, chat: String, since: u64, until: Option<u64>) -> JoinHandle<Streamed> {
    actix_web::rt::spawn(async move {
        let mut out = Streamed { since, ..Streamed::default() };
        let url = format!("ws://127.0.0.1:{port}/chat/Connect?chat_id={}&user_id=watcher&since={since}", enc(&chat));
        let mut conn = match awc::Client::new().ws(url).connect().await {
            Ok((_, conn)) => conn,
            Err(e) => {
                out.errors.push((Instant::now(), format!("Connect to {chat} since {since}: {e}")));
                return out;
            }
        };
        let mut last = since;
        while until.is_none_or(|until| last < until) {
            match conn.next().await {
                Some(Ok(Frame::Text(bytes))) => {
                    let frame: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
                    match (frame["seq"].as_u64(), frame["client_id"].as_str()) {
                        (Some(seq), Some(client_id)) => {
                            out.frames.push((seq, client_id.to_owned()));
                            last = seq;
                        }
                        _ => out.errors.push((Instant::now(), format!("a stream of {chat} sent {frame}"))),
                    }
                }
                Some(Ok(Frame::Ping(bytes))) => {
                    let _ = conn.send(Message::Pong(bytes)).await;
                }
                Some(Ok(Frame::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            }
        }
        out
    })
}

/// Waits for `task`, at most `limit`.
pub async fn join<T>(task: JoinHandle<T>, limit: Duration, what: &str) -> T {
    match tokio::time::timeout(limit, task).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => panic!("{what} failed: {e}"),
        Err(_) => panic!("{what} still running after {limit:?}"),
    }
}

//! The write path, kept straight: the HTTP task hands a [`Draft`] to the chat, which assigns its
//! seq and appends its record at once, without answering yet; the log writer answers the HTTP
//! task itself once the record is durable. So a new message wakes its sender once, and crosses
//! threads three times (HTTP worker → chat → log writer → HTTP worker); the fsync wait never sits
//! on a chat's thread, and no thread is woken just to pass an answer on.
//!
//! The writer also reports durability back to the chat (`Durable`, in log order) before it
//! answers the sender: anything the sender does after its answer finds the message indexed.

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::{blocking, ChatActor, Delivered, Draft};
use crate::error::Error;
use crate::model::{now_secs, Message};
use crate::store::record::{ChatNo, Loc, Record};
use crate::store::{Store, StoreError};

/// A message to send, as the HTTP layer parsed it.
#[derive(Clone)]
pub struct Post {
    pub draft: Draft,
    /// Whether the per-user send rate applies (user-token requests only).
    pub limited: bool,
}

/// A [`Post`] with where to answer it. The sender does not wait for the handler to return (that
/// would wake it once for a receipt and again when the record is durable): the answer comes once
/// on `reply`. A sender whose `reply` is dropped unanswered knows the chat never saw the post
/// (a stopping chat drops its mailbox), so posting again is safe: once the handler has it,
/// something is always sent.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Posting {
    pub post: Post,
    pub reply: oneshot::Sender<Result<Receipt, Error>>,
}

/// The chat's answer to a send; [`Receipt::message`] resolves to the stored message.
pub enum Receipt {
    /// Stored now, or earlier (a retry) and still in the chat's tail.
    Ready(Message),
    /// Stored earlier (a retry): read back from the log.
    Stored { store: Arc<Store>, chat: ChatNo, loc: Loc },
    /// A retry of a message still in flight: resolves once durable.
    Pending(oneshot::Receiver<Result<Message, Error>>),
}

impl Receipt {
    pub async fn message(self) -> Result<Message, Error> {
        match self {
            Receipt::Ready(msg) => Ok(msg),
            Receipt::Stored { store, chat, loc } => blocking(move || store.read_message(chat, loc)).await,
            Receipt::Pending(rx) => {
                rx.await.unwrap_or_else(|_| Err(Error::Internal("the chat stopped before answering".into())))
            }
        }
    }
}

/// A `reply` taken by the handler: answered exactly once, with an error if it is dropped unused
/// (so a handled post is never mistaken for one the chat did not see).
struct Answer(Option<oneshot::Sender<Result<Receipt, Error>>>);

impl Answer {
    fn send(mut self, answer: Result<Receipt, Error>) {
        if let Some(reply) = self.0.take() {
            let _ = reply.send(answer);
        }
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        if let Some(reply) = self.0.take() {
            let _ = reply.send(Err(Error::Internal("the chat stopped before answering".into())));
        }
    }
}

impl Handler<Posting> for ChatActor {
    type Result = ();

    fn handle(&mut self, Posting { post, reply }: Posting, ctx: &mut Self::Context) {
        let answer = Answer(Some(reply));
        self.last_used = Instant::now();
        let early = match self.unservable() {
            Some(err) => Err(err),
            None => self.retried(&post.draft),
        };
        match early {
            Ok(None) => {}
            Ok(Some(receipt)) => return answer.send(Ok(receipt)),
            Err(err) => return answer.send(Err(err)),
        }
        // Only new writes count against the rate.
        if post.limited && !self.init.limiter.allow(&self.init.ns, &post.draft.user_id) {
            let err = Error::RateLimited(format!("{} is sending too fast", post.draft.user_id));
            return answer.send(Err(err));
        }
        self.unsettle();
        let msg = self.core.push(post.draft, now_secs());
        let me = ctx.address();
        let seq = msg.seq;
        let sent = msg.clone();
        self.init.store.append(
            &Record::Message { chat: self.init.no, msg },
            Box::new(move |result| {
                me.do_send(Durable { seq, result: result.clone() });
                answer.send(result.map(|_| Receipt::Ready(sent)).map_err(Error::from));
            }),
        );
    }
}

impl ChatActor {
    /// A retry answers with what is stored, or joins the wait for it; it writes nothing.
    fn retried(&mut self, draft: &Draft) -> Result<Option<Receipt>, Error> {
        let Some(seq) = self.core.find(draft)? else {
            return Ok(None);
        };
        if let Some(d) = self.tail.get(seq) {
            return Ok(Some(Receipt::Ready(d.msg.clone())));
        }
        if let Some(loc) = self.core.loc(seq) {
            return Ok(Some(Receipt::Stored { store: self.init.store.clone(), chat: self.init.no, loc }));
        }
        let (tx, rx) = oneshot::channel();
        self.waiters.entry(seq).or_default().push(tx);
        Ok(Some(Receipt::Pending(rx)))
    }
}

/// From the log writer: the record of message `seq` is durable (or the log failed).
#[derive(Message)]
#[rtype(result = "()")]
struct Durable {
    seq: u64,
    result: Result<Loc, StoreError>,
}

impl Handler<Durable> for ChatActor {
    type Result = ();

    fn handle(&mut self, done: Durable, ctx: &mut Self::Context) {
        match done.result {
            Ok(loc) => {
                if let Some(msg) = self.core.durable(done.seq, loc) {
                    self.init.tally.message();
                    for waiter in self.waiters.remove(&msg.seq).unwrap_or_default() {
                        let _ = waiter.send(Ok(msg.clone()));
                    }
                    let delivered = Delivered::new(msg);
                    self.tail.push(&delivered);
                    self.broadcast(&delivered);
                }
            }
            Err(err) => {
                let full = err == StoreError::DiskFull;
                let err = Error::from(err);
                if !full {
                    // The log refuses all writes from now on; so does this chat.
                    self.broken = Some(err.clone());
                }
                let lost = self.core.abandon(done.seq);
                for seq in &lost {
                    for waiter in self.waiters.remove(seq).unwrap_or_default() {
                        let _ = waiter.send(Err(err.clone()));
                    }
                }
                if full && !lost.is_empty() {
                    // Every later message in flight fails too (the log holds this chat until
                    // now), so seqs stay gap-free; sends succeed again once there is space.
                    self.init.store.resume(self.init.no);
                }
            }
        }
        self.serve_snapshot_waiters(ctx);
    }
}

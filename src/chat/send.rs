//! The write path, kept straight: the HTTP task hands a [`Draft`] to the chat, which assigns its
//! seq and appends its record at once, then answers with a [`Receipt`] without waiting. The HTTP
//! task waits on the receipt; the log writer completes it directly once the record is durable.
//! So a send crosses threads three times (HTTP worker → chat → log writer → HTTP worker), and the
//! fsync wait never sits on a chat's thread.
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

/// Send a message.
#[derive(Message, Clone)]
#[rtype(result = "Result<Receipt, Error>")]
pub struct Post {
    pub draft: Draft,
    /// Whether the per-user send rate applies (user-token requests only).
    pub limited: bool,
}

/// The chat's answer to a send; [`Receipt::message`] resolves to the stored message.
pub enum Receipt {
    /// Stored earlier (a retry), and still in the chat's tail.
    Ready(Message),
    /// Stored earlier (a retry): read back from the log.
    Stored { store: Arc<Store>, chat: ChatNo, loc: Loc },
    /// Written now, or a retry of a message still in flight: resolves once durable.
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

impl Handler<Post> for ChatActor {
    type Result = Result<Receipt, Error>;

    fn handle(&mut self, post: Post, ctx: &mut Self::Context) -> Self::Result {
        self.last_used = Instant::now();
        if let Some(err) = self.unservable() {
            return Err(err);
        }
        // A retry: answer with what is stored, or join the wait for it. It writes nothing.
        if let Some(seq) = self.core.find(&post.draft)? {
            if let Some(d) = self.tail.get(seq) {
                return Ok(Receipt::Ready(d.msg.clone()));
            }
            if let Some(loc) = self.core.loc(seq) {
                return Ok(Receipt::Stored { store: self.init.store.clone(), chat: self.init.no, loc });
            }
            let (tx, rx) = oneshot::channel();
            self.waiters.entry(seq).or_default().push(tx);
            return Ok(Receipt::Pending(rx));
        }
        // Only new writes count against the rate.
        if post.limited && !self.init.limiter.allow(&self.init.ns, &post.draft.user_id) {
            return Err(Error::RateLimited(format!("{} is sending too fast", post.draft.user_id)));
        }
        self.unsettle();
        let msg = self.core.push(post.draft, now_secs());
        let (tx, rx) = oneshot::channel();
        let me = ctx.address();
        let seq = msg.seq;
        let sent = msg.clone();
        self.init.store.append(
            &Record::Message { chat: self.init.no, msg },
            Box::new(move |result| {
                me.do_send(Durable { seq, result: result.clone() });
                let _ = tx.send(result.map(|_| sent).map_err(Error::from));
            }),
        );
        Ok(Receipt::Pending(rx))
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

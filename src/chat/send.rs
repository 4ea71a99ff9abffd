//! The write path: a send gets its seq at once, its record goes to the shared log, and the
//! log writer's [`Durable`] report (in log order) makes it indexed, answered and streamed.

use std::time::Instant;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::ChatActor;
use super::{ready, Pending};
use crate::error::Error;
use crate::model::{now_secs, ClientId, Message, MessageId, UserId};
use crate::store::record::{Loc, Record};
use crate::store::StoreError;

/// Send a message. `id` is the message id the caller chose (the chats API), else one is made.
#[derive(Message, Clone)]
#[rtype(result = "Result<Message, Error>")]
pub struct Post {
    pub user_id: UserId,
    pub subject: String,
    pub text: String,
    pub client_id: Option<ClientId>,
    pub id: Option<MessageId>,
    /// Whether the per-user send rate applies (user-token requests only).
    pub limited: bool,
}

impl Handler<Post> for ChatActor {
    type Result = ResponseFuture<Result<Message, Error>>;

    fn handle(&mut self, send: Post, ctx: &mut Self::Context) -> Self::Result {
        self.last_used = Instant::now();
        if let Some(err) = self.unservable() {
            return ready(Err(err));
        }
        if let Err(err) = self.check_member(&send.user_id) {
            return ready(Err(err));
        }
        let client_id = match (send.client_id, send.id.clone()) {
            (Some(client), _) => client,
            (None, Some(id)) => ClientId::from(id),
            (None, None) => ClientId::random(),
        };
        // A retry: answer with what is stored, or join the wait for it.
        if let Some(&seq) = self.by_client.get(&client_id) {
            return self.read(std::iter::once(seq)).then_first();
        }
        let (tx, rx) = oneshot::channel();
        if let Some(&seq) = self.pending_by_client.get(&client_id) {
            let front = self.pending.front().map_or(seq, |p| p.msg.seq);
            if let Some(pending) = self.pending.get_mut((seq - front) as usize) {
                pending.waiters.push(tx);
            }
            return answer(rx);
        }
        // Only new writes count against the rate: a retry stores nothing.
        if send.limited && !self.init.limiter.allow(&self.init.ns, &send.user_id) {
            return ready(Err(Error::RateLimited(format!("{} is sending too fast", send.user_id))));
        }

        let msg = Message {
            seq: self.next_seq(),
            id: send.id.unwrap_or_else(MessageId::random),
            client_id: client_id.clone(),
            user_id: send.user_id,
            subject: send.subject,
            text: send.text,
            sent_at: now_secs(),
        };
        let me = ctx.address();
        let seq = msg.seq;
        let sent = msg.clone();
        self.init.store.append(
            &Record::Message { chat: self.init.no, msg: msg.clone() },
            Box::new(move |result| {
                // The log writer answers the sender itself, saving a thread hop. The chat hears
                // first, so anything the sender does after this answer finds the message indexed.
                me.do_send(Durable { seq, result: result.clone() });
                let _ = tx.send(result.map(|_| sent).map_err(Error::from));
            }),
        );
        self.pending_by_client.insert(client_id, seq);
        self.pending.push_back(Pending { msg, waiters: Vec::new() });
        answer(rx)
    }
}

fn answer(rx: oneshot::Receiver<Result<Message, Error>>) -> ResponseFuture<Result<Message, Error>> {
    Box::pin(
        async move { rx.await.unwrap_or_else(|_| Err(Error::Internal("the chat stopped before answering".into()))) },
    )
}

trait ThenFirst {
    fn then_first(self) -> ResponseFuture<Result<Message, Error>>;
}

impl ThenFirst for ResponseFuture<Result<Vec<Message>, Error>> {
    fn then_first(self) -> ResponseFuture<Result<Message, Error>> {
        Box::pin(async move {
            self.await?.into_iter().next().ok_or_else(|| Error::Internal("a stored message is missing".into()))
        })
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
        let Some(pending) = self.pending.pop_front() else {
            return;
        };
        debug_assert_eq!(pending.msg.seq, done.seq, "the log completes in order");
        self.pending_by_client.remove(&pending.msg.client_id);
        let reply = match done.result {
            Ok(loc) if self.deleted => {
                // Written while the chat was being deleted: erase it too.
                let store = self.init.store.clone();
                tokio::task::spawn_blocking(move || store.erase(&[loc]));
                Err(Error::chat_not_found())
            }
            Ok(loc) => {
                self.index.push(loc);
                self.by_client.insert(pending.msg.client_id.clone(), pending.msg.seq);
                self.broadcast(&pending.msg);
                Ok(pending.msg)
            }
            Err(err) => {
                // The log refuses all writes from now on; so does this chat.
                let err = Error::from(err);
                self.broken = Some(err.clone());
                Err(err)
            }
        };
        for waiter in pending.waiters {
            let _ = waiter.send(reply.clone());
        }
        self.serve_snapshot_waiters(ctx);
    }
}

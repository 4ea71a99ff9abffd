//! The chat actor: one per live chat, the only writer of that chat's log.
//!
//! It owns the chat's order. A send gets the next `seq` here, before anything is awaited, so
//! interleaving cannot reorder; its record goes to the shared log; the log writer reports
//! durability back as a [`Durable`] message, in log order, and only then is the message indexed,
//! answered and visible. A retry of a `client_id` that is still waiting for its fsync joins that
//! wait; it never writes a second record.
//!
//! Subscribers (streams) get each durable message in seq order through a bounded queue. The JSON
//! is encoded once per message and shared; a subscriber whose queue is full is dropped and told
//! why, so a slow reader can neither slow the chat down nor grow memory without bound.
//!
//! A chat with no traffic and no subscribers for `chat.idle_timeout_secs` snapshots its index and
//! stops; the registry starts it again from the snapshot when it is next needed.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytestring::ByteString;
use tokio::sync::{mpsc, oneshot};

use crate::config::{Membership, Settings};
use crate::error::Error;
use crate::model::{
    now_secs, ChatMeta, ClientId, Message, MessageId, MessageView, Namespace, UserId,
};
use crate::rate::RateLimiter;
use crate::registry::{ChatStopped, Registry};
use crate::store::record::{ChatIndex, ChatNo, IndexEntry, Loc, Record};
use crate::store::{Store, StoreError};

/// Everything a chat actor is started with.
pub struct ChatInit {
    pub no: ChatNo,
    pub ns: Namespace,
    pub meta: ChatMeta,
    pub store: Arc<Store>,
    pub registry: Addr<Registry>,
    pub settings: Arc<Settings>,
    pub limiter: Arc<RateLimiter>,
}

type Reply = oneshot::Sender<Result<Message, Error>>;

/// A message whose record is written but not yet durable.
struct Pending {
    msg: Message,
    waiters: Vec<Reply>,
}

pub struct ChatActor {
    init: ChatInit,
    /// Durable messages: `index[seq - 1]` is where message `seq` lies in the log.
    index: Vec<Loc>,
    /// Durable client ids → seq: what makes sends retry-safe.
    by_client: HashMap<ClientId, u64>,
    /// Sends in flight, in seq order; the log completes them in this order.
    pending: VecDeque<Pending>,
    pending_by_client: HashMap<ClientId, u64>,
    /// Snapshot requests waiting for every seq up to theirs to be durable.
    snapshot_waiters: Vec<(u64, oneshot::Sender<Result<(), Error>>)>,
    /// How many messages the last snapshot holds.
    snapshotted: usize,
    /// Set when the chat's stored data failed a check or the log failed: it refuses service.
    broken: Option<Error>,
    last_used: Instant,
    subscribers: Vec<Subscriber>,
    /// Set once the chat is deleted: late completions are erased, everything else is 404.
    deleted: bool,
}

/// One message of a chat's stream: its seq and its JSON, encoded once and shared.
#[derive(Debug, Clone)]
pub struct Event {
    pub seq: u64,
    pub json: ByteString,
}

/// Why the chat ended a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// Its queue was full: the reader is too slow. It may resume with `since`.
    SlowReader,
    /// Its user was removed from the chat.
    Kicked,
    /// The chat was deleted.
    Deleted,
}

struct Subscriber {
    events: mpsc::Sender<Event>,
    close: mpsc::Sender<Close>,
    user: Option<UserId>,
}

impl ChatActor {
    pub fn new(init: ChatInit) -> Self {
        ChatActor {
            init,
            index: Vec::new(),
            by_client: HashMap::new(),
            pending: VecDeque::new(),
            pending_by_client: HashMap::new(),
            snapshot_waiters: Vec::new(),
            snapshotted: 0,
            broken: None,
            last_used: Instant::now(),
            subscribers: Vec::new(),
            deleted: false,
        }
    }

    /// Membership gates sends, and reads by user tokens, unless `chat.membership = "open"`.
    fn check_member(&self, user: &UserId) -> Result<(), Error> {
        if self.init.settings.chat.membership == Membership::Open
            || self.init.meta.user_ids.contains(user)
        {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "{user} is not a member of this chat"
            )))
        }
    }

    /// Why this chat cannot serve right now, if it cannot.
    fn unservable(&self) -> Option<Error> {
        if self.deleted {
            return Some(Error::chat_not_found());
        }
        self.broken.clone()
    }

    /// Ends the subscriptions `which` selects, telling each why.
    fn close_subscribers(&mut self, why: Close, which: impl Fn(&Subscriber) -> bool) {
        self.subscribers.retain(|sub| {
            if which(sub) {
                let _ = sub.close.try_send(why);
                false
            } else {
                true
            }
        });
    }

    fn next_seq(&self) -> u64 {
        (self.index.len() + self.pending.len()) as u64 + 1
    }

    fn install(&mut self, loaded: ChatIndex) {
        self.by_client.reserve(loaded.entries.len());
        for (i, entry) in loaded.entries.into_iter().enumerate() {
            self.by_client.insert(entry.client_id, i as u64 + 1);
            self.index.push(entry.loc);
        }
        self.snapshotted = self.index.len();
    }

    /// The index as stored: where each message is, and its client id.
    fn snapshot_data(&self) -> ChatIndex {
        let mut client_of = vec![None; self.index.len()];
        for (client, &seq) in &self.by_client {
            if let Some(slot) = client_of.get_mut(seq as usize - 1) {
                *slot = Some(client.clone());
            }
        }
        let entries = self
            .index
            .iter()
            .zip(client_of)
            .filter_map(|(&loc, client_id)| {
                client_id.map(|client_id| IndexEntry { loc, client_id })
            })
            .collect();
        ChatIndex {
            chat: self.init.no,
            entries,
        }
    }

    /// Writes a snapshot if anything changed since the last one. The actor processes nothing
    /// else meanwhile, so two snapshots of one chat never race.
    fn snapshot(
        &mut self,
        ctx: &mut Context<Self>,
        then: impl FnOnce(Result<(), Error>, &mut Self, &mut Context<Self>) + 'static,
    ) {
        if self.index.len() == self.snapshotted || self.broken.is_some() {
            then(Ok(()), self, ctx);
            return;
        }
        let data = self.snapshot_data();
        let len = data.entries.len();
        let store = self.init.store.clone();
        let write = async move { blocking(move || store.save_index(&data)).await };
        ctx.wait(
            actix::fut::wrap_future(write).map(move |res, act: &mut Self, ctx| {
                if res.is_ok() {
                    act.snapshotted = len;
                }
                then(res, act, ctx)
            }),
        );
    }

    /// Answers snapshot requests whose seqs are all durable now.
    fn serve_snapshot_waiters(&mut self, ctx: &mut Context<Self>) {
        let durable = self.index.len() as u64;
        if self
            .snapshot_waiters
            .iter()
            .all(|(need, _)| *need > durable)
        {
            return;
        }
        let (ready, waiting) = std::mem::take(&mut self.snapshot_waiters)
            .into_iter()
            .partition(|(need, _)| *need <= durable);
        self.snapshot_waiters = waiting;
        self.snapshot(ctx, move |res, _, _| {
            for (_, tx) in ready {
                let _ = tx.send(res.clone());
            }
        });
    }

    /// Hands a durable message to every subscriber; drops those that cannot keep up.
    fn broadcast(&mut self, msg: &Message) {
        if self.subscribers.is_empty() {
            return;
        }
        let json =
            serde_json::to_string(&MessageView::new(&self.init.meta.id, msg)).unwrap_or_default();
        let event = Event {
            seq: msg.seq,
            json: ByteString::from(json),
        };
        self.subscribers
            .retain(|sub| match sub.events.try_send(event.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    let _ = sub.close.try_send(Close::SlowReader);
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
    }

    fn check_idle(&mut self, ctx: &mut Context<Self>) {
        let idle = Duration::from_secs(self.init.settings.chat.idle_timeout_secs);
        self.subscribers.retain(|sub| !sub.events.is_closed());
        if self.pending.is_empty()
            && self.subscribers.is_empty()
            && self.last_used.elapsed() >= idle
        {
            tracing::debug!(chat = self.init.no, "idle; snapshotting and stopping");
            // A chat whose snapshot failed stays up: its index is the only one that is current.
            self.snapshot(ctx, |res, _, ctx| {
                if res.is_ok() {
                    ctx.stop();
                }
            });
        }
    }

    /// Reads messages `seqs` back from the log, off the actor's thread.
    fn read(&self, seqs: impl Iterator<Item = u64>) -> ResponseFuture<Result<Vec<Message>, Error>> {
        let locs: Vec<Loc> = seqs
            .filter_map(|seq| self.index.get(seq as usize - 1).copied())
            .collect();
        let store = self.init.store.clone();
        let chat = self.init.no;
        Box::pin(async move {
            blocking(move || {
                locs.into_iter()
                    .map(|loc| store.read_message(chat, loc))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await
        })
    }
}

/// Runs blocking storage work on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Error> {
    match tokio::task::spawn_blocking(work).await {
        Ok(res) => res.map_err(Error::from),
        Err(e) => Err(Error::Internal(format!("storage task failed: {e}"))),
    }
}

impl Actor for ChatActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Nothing is handled until the index is loaded: `wait` holds the mailbox.
        let store = self.init.store.clone();
        let no = self.init.no;
        let load = async move { blocking(move || store.load_index(no)).await };
        ctx.wait(actix::fut::wrap_future(load).map(|res, act: &mut Self, _| match res {
            Ok(index) => act.install(index),
            Err(err) => {
                tracing::error!(chat = act.init.no, error = %err, "chat could not be loaded; holding it out of service");
                act.broken = Some(err);
            }
        }));
        let every =
            Duration::from_secs((self.init.settings.chat.idle_timeout_secs / 4).clamp(1, 60));
        ctx.run_interval(every, |act, ctx| act.check_idle(ctx));
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.init.registry.do_send(ChatStopped {
            ns: self.init.ns.clone(),
            id: self.init.meta.id.clone(),
        });
    }
}

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
            return ready(Err(Error::RateLimited(format!(
                "{} is sending too fast",
                send.user_id
            ))));
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
        self.init.store.append(
            &Record::Message {
                chat: self.init.no,
                msg: msg.clone(),
            },
            Box::new(move |result| me.do_send(Durable { seq, result })),
        );
        self.pending_by_client.insert(client_id, seq);
        self.pending.push_back(Pending {
            msg,
            waiters: vec![tx],
        });
        answer(rx)
    }
}

fn ready<T: 'static>(value: T) -> ResponseFuture<T> {
    Box::pin(std::future::ready(value))
}

fn answer(rx: oneshot::Receiver<Result<Message, Error>>) -> ResponseFuture<Result<Message, Error>> {
    Box::pin(async move {
        rx.await
            .unwrap_or_else(|_| Err(Error::Internal("the chat stopped before answering".into())))
    })
}

trait ThenFirst {
    fn then_first(self) -> ResponseFuture<Result<Message, Error>>;
}

impl ThenFirst for ResponseFuture<Result<Vec<Message>, Error>> {
    fn then_first(self) -> ResponseFuture<Result<Message, Error>> {
        Box::pin(async move {
            self.await?
                .into_iter()
                .next()
                .ok_or_else(|| Error::Internal("a stored message is missing".into()))
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
                self.by_client
                    .insert(pending.msg.client_id.clone(), pending.msg.seq);
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

/// Which messages a listing wants.
#[derive(Debug, Clone, Copy)]
pub enum Page {
    /// The chat API's History: `limit` messages, oldest first, bounded by seqs (exclusive).
    History {
        limit: u64,
        before: Option<u64>,
        after: Option<u64>,
    },
    /// The chats API's ListMessages: skip `offset` in the chosen order, then take `limit`.
    List {
        limit: u64,
        offset: u64,
        newest_first: bool,
    },
}

impl Page {
    /// The seqs this page holds, in the order they are listed, for a chat of `len` messages.
    pub fn seqs(self, len: u64) -> Box<dyn Iterator<Item = u64>> {
        match self {
            Page::History {
                limit,
                before,
                after,
            } => {
                let hi = before.map_or(len, |b| b.saturating_sub(1).min(len));
                let lo = match after {
                    Some(a) => a.saturating_add(1),
                    None => hi.saturating_sub(limit).saturating_add(1),
                };
                let hi = hi.min(lo.saturating_add(limit).saturating_sub(1));
                Box::new(lo.max(1)..=hi)
            }
            Page::List {
                limit,
                offset,
                newest_first: false,
            } => Box::new(offset.saturating_add(1)..=len.min(offset.saturating_add(limit))),
            Page::List {
                limit,
                offset,
                newest_first: true,
            } => {
                let top = len.saturating_sub(offset);
                Box::new((top.saturating_sub(limit).saturating_add(1)..=top).rev())
            }
        }
    }
}

/// Read a page of messages. A `reader` (a user token's user) must be a member.
#[derive(Message, Clone)]
#[rtype(result = "Result<Vec<Message>, Error>")]
pub struct Read {
    pub page: Page,
    pub reader: Option<UserId>,
}

impl Handler<Read> for ChatActor {
    type Result = ResponseFuture<Result<Vec<Message>, Error>>;

    fn handle(&mut self, read: Read, _: &mut Self::Context) -> Self::Result {
        self.last_used = Instant::now();
        if let Some(err) = self.unservable() {
            return ready(Err(err));
        }
        if let Some(Err(err)) = read.reader.as_ref().map(|r| self.check_member(r)) {
            return ready(Err(err));
        }
        self.read(read.page.seqs(self.index.len() as u64))
    }
}

/// Subscribe to the chat's messages. Answers the last durable seq at this moment: every later
/// message arrives on `events`; earlier ones are for the subscriber to read (its replay).
#[derive(Message, Clone)]
#[rtype(result = "Result<u64, Error>")]
pub struct Subscribe {
    pub events: mpsc::Sender<Event>,
    pub close: mpsc::Sender<Close>,
    /// The stream's user: its stream closes if the user leaves the chat.
    pub user: Option<UserId>,
    /// A user token's user, who must be a member to read.
    pub reader: Option<UserId>,
}

impl Handler<Subscribe> for ChatActor {
    type Result = Result<u64, Error>;

    fn handle(&mut self, sub: Subscribe, _: &mut Self::Context) -> Self::Result {
        self.last_used = Instant::now();
        if let Some(err) = self.unservable() {
            return Err(err);
        }
        if let Some(reader) = &sub.reader {
            self.check_member(reader)?;
        }
        self.subscribers.push(Subscriber {
            events: sub.events,
            close: sub.close,
            user: sub.user,
        });
        Ok(self.index.len() as u64)
    }
}

/// New metadata from the registry (members, invites): takes effect at once; the streams of
/// users who are no longer members close.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetMeta(pub ChatMeta);

impl Handler<SetMeta> for ChatActor {
    type Result = ();

    fn handle(&mut self, SetMeta(meta): SetMeta, _: &mut Self::Context) {
        self.init.meta = meta;
        let members = self.init.meta.user_ids.clone();
        self.close_subscribers(Close::Kicked, |sub| {
            sub.user.as_ref().is_some_and(|u| !members.contains(u))
        });
    }
}

/// The chat is deleted: close every stream, erase every message from the log, drop the snapshot.
#[derive(Message)]
#[rtype(result = "Result<(), Error>")]
pub struct Delete;

impl Handler<Delete> for ChatActor {
    type Result = ResponseActFuture<Self, Result<(), Error>>;

    fn handle(&mut self, _: Delete, _: &mut Self::Context) -> Self::Result {
        self.deleted = true;
        self.close_subscribers(Close::Deleted, |_| true);
        let locs = std::mem::take(&mut self.index);
        self.by_client.clear();
        let store = self.init.store.clone();
        let chat = self.init.no;
        let erase = async move {
            blocking(move || store.erase(&locs).and_then(|()| store.remove_index(chat))).await
        };
        Box::pin(
            actix::fut::wrap_future(erase).map(|res, _, ctx: &mut Context<Self>| {
                ctx.stop();
                res
            }),
        )
    }
}

/// Snapshot every message sent before this request, once all of them are durable.
#[derive(Message)]
#[rtype(result = "Result<(), Error>")]
pub struct Snapshot;

impl Handler<Snapshot> for ChatActor {
    type Result = ResponseFuture<Result<(), Error>>;

    fn handle(&mut self, _: Snapshot, ctx: &mut Self::Context) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        self.snapshot_waiters.push((self.next_seq() - 1, tx));
        self.serve_snapshot_waiters(ctx);
        Box::pin(async move {
            rx.await.unwrap_or_else(|_| {
                Err(Error::Internal(
                    "the chat stopped before its snapshot".into(),
                ))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Page;

    fn seqs(page: Page, len: u64) -> Vec<u64> {
        page.seqs(len).collect()
    }

    #[test]
    fn history_pages() {
        let h = |limit, before, after| Page::History {
            limit,
            before,
            after,
        };
        assert_eq!(seqs(h(3, None, None), 10), vec![8, 9, 10]);
        assert_eq!(seqs(h(3, None, None), 2), vec![1, 2]);
        assert_eq!(seqs(h(3, Some(5), None), 10), vec![2, 3, 4]);
        assert_eq!(seqs(h(3, Some(0), None), 10), Vec::<u64>::new());
        assert_eq!(seqs(h(3, Some(1), None), 10), Vec::<u64>::new());
        assert_eq!(seqs(h(3, None, Some(0)), 10), vec![1, 2, 3]);
        assert_eq!(seqs(h(3, None, Some(9)), 10), vec![10]);
        assert_eq!(seqs(h(3, None, Some(10)), 10), Vec::<u64>::new());
        assert_eq!(seqs(h(50, Some(6), Some(2)), 10), vec![3, 4, 5]);
        assert_eq!(seqs(h(2, Some(9), Some(2)), 10), vec![3, 4]);
        assert_eq!(seqs(h(3, Some(100), None), 10), vec![8, 9, 10]);
    }

    #[test]
    fn list_pages() {
        let l = |limit, offset, newest_first| Page::List {
            limit,
            offset,
            newest_first,
        };
        assert_eq!(seqs(l(5, 15, true), 50), vec![35, 34, 33, 32, 31]);
        assert_eq!(seqs(l(5, 15, false), 50), vec![16, 17, 18, 19, 20]);
        assert_eq!(seqs(l(5, 48, true), 50), vec![2, 1]);
        assert_eq!(seqs(l(5, 60, true), 50), Vec::<u64>::new());
        assert_eq!(seqs(l(5, 48, false), 50), vec![49, 50]);
    }
}

//! The chat actor: one per live chat, the only writer of that chat's log.
//!
//! It owns the chat's order. A send gets the next `seq` here, before anything is awaited, so
//! interleaving cannot reorder; its record goes to the shared log; the log writer reports
//! durability back as a `Durable` message (see `send.rs`), in log order, and only then is the message indexed,
//! answered and visible. A retry of a `client_id` that is still waiting for its fsync joins that
//! wait; it never writes a second record.
//!
//! Subscribers (streams) get each durable message in seq order through one bounded broadcast
//! channel per chat. The JSON is encoded once per message and shared; a subscriber that falls too
//! far behind is told it lagged and closed, so a slow reader can neither slow the chat down nor
//! grow memory without bound.
//!
//! A chat with no traffic and no subscribers for `chat.idle_timeout_secs` snapshots its index and
//! stops; the registry starts it again from the snapshot when it is next needed.
//!
//! `send.rs` holds the write path, `page.rs` the reads, `subscribers.rs` the streams.

mod page;
mod send;
mod subscribers;

pub use page::{Page, Read};
pub use send::Post;
pub use subscribers::{Delete, Event, SetMeta, Subscribe};

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::config::{Membership, Settings};
use crate::error::Error;
use crate::model::{ChatMeta, ClientId, Message, Namespace, UserId};
use crate::rate::RateLimiter;
use crate::registry::{ChatStopped, Registry};
use crate::store::record::{ChatIndex, ChatNo, IndexEntry, Loc};
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
    /// The chat's stream, while anyone is subscribed.
    stream: Option<tokio::sync::broadcast::Sender<Event>>,
    /// Set once the chat is deleted: late completions are erased, everything else is 404.
    deleted: bool,
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
            stream: None,
            deleted: false,
        }
    }

    /// Membership gates sends, and reads by user tokens, unless `chat.membership = "open"`.
    pub(super) fn check_member(&self, user: &UserId) -> Result<(), Error> {
        if self.init.settings.chat.membership == Membership::Open || self.init.meta.user_ids.contains(user) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!("{user} is not a member of this chat")))
        }
    }

    /// Why this chat cannot serve right now, if it cannot.
    pub(super) fn unservable(&self) -> Option<Error> {
        if self.deleted {
            return Some(Error::chat_not_found());
        }
        self.broken.clone()
    }

    pub(super) fn next_seq(&self) -> u64 {
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
            .filter_map(|(&loc, client_id)| client_id.map(|client_id| IndexEntry { loc, client_id }))
            .collect();
        ChatIndex { chat: self.init.no, entries }
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
        ctx.wait(actix::fut::wrap_future(write).map(move |res, act: &mut Self, ctx| {
            if res.is_ok() {
                act.snapshotted = len;
            }
            then(res, act, ctx)
        }));
    }

    /// Answers snapshot requests whose seqs are all durable now.
    pub(super) fn serve_snapshot_waiters(&mut self, ctx: &mut Context<Self>) {
        let durable = self.index.len() as u64;
        if self.snapshot_waiters.iter().all(|(need, _)| *need > durable) {
            return;
        }
        let (ready, waiting) =
            std::mem::take(&mut self.snapshot_waiters).into_iter().partition(|(need, _)| *need <= durable);
        self.snapshot_waiters = waiting;
        self.snapshot(ctx, move |res, _, _| {
            for (_, tx) in ready {
                let _ = tx.send(res.clone());
            }
        });
    }

    fn check_idle(&mut self, ctx: &mut Context<Self>) {
        let idle = Duration::from_secs(self.init.settings.chat.idle_timeout_secs);
        if self.pending.is_empty() && !self.has_subscribers() && self.last_used.elapsed() >= idle {
            tracing::debug!(chat = self.init.no, "idle; snapshotting and stopping");
            // A chat whose snapshot failed stays up: its index is the only one that is current.
            self.snapshot(ctx, |res, _, ctx| {
                if res.is_ok() {
                    ctx.stop();
                }
            });
        }
    }
}

/// An answer that is ready now.
pub(super) fn ready<T: 'static>(value: T) -> ResponseFuture<T> {
    Box::pin(std::future::ready(value))
}

/// Runs blocking storage work on the blocking pool.
pub(super) async fn blocking<T: Send + 'static>(
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
        let every = Duration::from_secs((self.init.settings.chat.idle_timeout_secs / 4).clamp(1, 60));
        ctx.run_interval(every, |act, ctx| act.check_idle(ctx));
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.init.registry.do_send(ChatStopped { ns: self.init.ns.clone(), id: self.init.meta.id.clone() });
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
            rx.await.unwrap_or_else(|_| Err(Error::Internal("the chat stopped before its snapshot".into())))
        })
    }
}

//! The chat actor: one per live chat, the only keeper of that chat's state and the only writer of
//! its records (creation, membership changes, messages, deletion). It decides every reply once.
//!
//! The rules live in a plain struct, [`ChatCore`] (`core.rs`); the actor adds the waiting. A send
//! gets its seq here, before anything is awaited, so interleaving cannot reorder; its record goes
//! to the shared log, and the sender's HTTP task waits for durability itself (`send.rs`): the log
//! writer answers it directly and tells this actor, in log order, which then indexes the message
//! and streams it. Membership changes and deletion hold the chat's mailbox until their records
//! are durable (`membership.rs`), so nothing is ever answered from a state the log does not have.
//!
//! The directory (the registry) hears of each durable membership change, of deletion and of the
//! actor stopping through a [`Notice`]: it never keeps a copy of the chat's metadata.
//!
//! A chat with no traffic and no subscribers for its idle timeout snapshots and stops; the
//! registry starts it again from the snapshot when it is next needed.
//!
//! `send.rs` holds the write path, `page.rs` the reads, `subscribers.rs` the streams,
//! `membership.rs` membership changes and deletion, `relocate.rs` compaction's index moves.

mod core;
mod membership;
mod page;
mod relocate;
mod send;
mod subscribers;
mod tail;

pub use self::core::{Change, ChatCore, Draft, Rules};
pub use membership::{Delete, Describe, Update};
pub use page::{Fetch, Page, Read};
pub use relocate::Relocate;
pub use send::{Post, Posting, Receipt};
pub use subscribers::{Delivered, Event, Subscribe, SHAPES};
pub use tail::TailLimits;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::error::Error;
use crate::model::{ChatId, ChatMeta, Members, Message, Namespace};
use crate::rate::RateLimiter;
use crate::store::record::{fits_catalog, ChatNo, IndexMark, Record};
use crate::store::{Store, StoreError};
use crate::telemetry::tally::NsTally;
use tail::Tail;

/// What a chat tells the directory. Sent in the order things happen, from the chat's thread.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub enum Notice {
    /// The chat's creation, or a membership change, is durable: these are its members now.
    Members { ns: Namespace, id: ChatId, no: ChatNo, members: Members },
    /// The chat has files of its own now: its catalog entry no longer holds all of it.
    Filed { ns: Namespace, id: ChatId, no: ChatNo },
    /// The actor stopped (idle, after its snapshot); the chat lives on, on disk.
    Stopped { ns: Namespace, id: ChatId, no: ChatNo },
    /// The chat is gone: deleted, or its creation failed.
    Gone { ns: Namespace, id: ChatId, no: ChatNo },
}

/// Shared by a chat actor and the directory: set while the chat is bare (no files, no
/// messages) and the directory has heard of every durable change it made, so a checkpoint has
/// nothing to ask it. The chat clears it before it appends any record and sets it again only
/// after telling the directory; a checkpoint reads it after its mark, so a record before the
/// mark is either known to the directory or makes the checkpoint ask the chat, which answers
/// only once the record's change is applied and told.
#[derive(Clone, Default)]
pub struct Settled(Arc<AtomicBool>);

impl Settled {
    pub fn is_settled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    fn set(&self, settled: bool) {
        self.0.store(settled, Ordering::SeqCst);
    }
}

/// How a chat actor begins.
pub enum Start {
    /// A new chat: its creation record is written first, and nothing is answered before it is durable.
    Create(ChatMeta),
    /// An existing chat, loaded from its snapshot.
    Load,
    /// An existing chat whose catalog entry holds all its metadata (this): it has no files,
    /// unless a checkpoint that gave it some was cut short (then they are loaded).
    Bare(ChatMeta),
}

/// Everything a chat actor is started with.
pub struct ChatInit {
    pub no: ChatNo,
    pub ns: Namespace,
    pub id: ChatId,
    pub store: Arc<Store>,
    pub directory: Recipient<Notice>,
    pub rules: Rules,
    pub idle_timeout: Duration,
    pub limiter: Arc<RateLimiter>,
    pub tail: TailLimits,
    /// Its namespace's counters for `/admin`: each durable message adds one.
    pub tally: Arc<NsTally>,
    /// Its first start since the server's: its stored messages join the count once loaded.
    pub count_stored: bool,
    pub settled: Settled,
}

type Reply = oneshot::Sender<Result<Message, Error>>;

pub struct ChatActor {
    init: ChatInit,
    start: Option<Start>,
    core: ChatCore,
    /// Retries of in-flight messages, by seq: answered when the message is durable.
    waiters: HashMap<u64, Vec<Reply>>,
    /// Snapshot requests waiting for every seq up to theirs to be durable.
    snapshot_waiters: Vec<(u64, oneshot::Sender<Result<(), Error>>)>,
    /// The core's version the last snapshot holds.
    snapshotted: u64,
    /// How much of the index the chat's index file holds: where the next snapshot appends.
    index_mark: IndexMark,
    /// Whether the chat has files of its own. Until its first message (if its metadata fits
    /// the catalog) it has none, and a snapshot writes nothing: the catalog holds it.
    filed: bool,
    /// Set when the chat's stored data failed a check or the log failed: it refuses service.
    broken: Option<Error>,
    /// Set once Delete is accepted: everything else is 404 from then on.
    deleted: bool,
    last_used: Instant,
    /// The chat's stream, while anyone is subscribed.
    stream: Option<tokio::sync::broadcast::Sender<Event>>,
    /// The newest durable messages, served from memory.
    tail: Tail,
}

impl ChatActor {
    pub fn new(init: ChatInit, start: Start) -> Self {
        // Until `started` has created or loaded the chat, the mailbox is held: nobody sees this.
        let placeholder = ChatMeta {
            id: init.id.clone(),
            user_ids: Members::default(),
            created_at: 0,
            name: String::new(),
            description: String::new(),
            group: false,
            private: false,
            invited: Members::default(),
        };
        ChatActor {
            core: ChatCore::new(placeholder, init.rules),
            tail: Tail::new(init.tail),
            init,
            start: Some(start),
            waiters: HashMap::new(),
            snapshot_waiters: Vec::new(),
            snapshotted: 0,
            index_mark: IndexMark::default(),
            filed: false,
            broken: None,
            deleted: false,
            last_used: Instant::now(),
            stream: None,
        }
    }

    /// Why this chat cannot serve right now, if it cannot.
    fn unservable(&self) -> Option<Error> {
        if self.deleted {
            return Some(Error::chat_not_found());
        }
        self.broken.clone()
    }

    fn tell_directory(&self, notice: Notice) {
        self.init.directory.do_send(notice);
    }

    fn members_notice(&self) -> Notice {
        Notice::Members {
            ns: self.init.ns.clone(),
            id: self.init.id.clone(),
            no: self.init.no,
            members: self.core.members().clone(),
        }
    }

    /// Whether a snapshot of this chat would write nothing: no files, no messages, and
    /// metadata its catalog entry holds.
    fn bare(&self) -> bool {
        !self.filed && self.core.next_seq() == 1 && fits_catalog(self.core.meta())
    }

    /// After a change is applied and told to the directory: settled again if still bare.
    fn settle(&self) {
        self.init.settled.set(self.bare() && self.broken.is_none() && !self.deleted);
    }

    /// Before appending a record: a checkpoint must ask this chat until it settles again.
    fn unsettle(&self) {
        self.init.settled.set(false);
    }

    fn filed_notice(&self) -> Notice {
        Notice::Filed { ns: self.init.ns.clone(), id: self.init.id.clone(), no: self.init.no }
    }

    fn gone(&self) -> Notice {
        Notice::Gone { ns: self.init.ns.clone(), id: self.init.id.clone(), no: self.init.no }
    }

    /// Writes a snapshot if anything changed since the last one. The actor processes nothing
    /// else meanwhile, so two snapshots of one chat never race.
    fn snapshot(
        &mut self,
        ctx: &mut Context<Self>,
        then: impl FnOnce(Result<(), Error>, &mut Self, &mut Context<Self>) + 'static,
    ) {
        let version = self.core.version();
        if version == self.snapshotted || self.broken.is_some() || self.deleted {
            then(Ok(()), self, ctx);
            return;
        }
        if self.bare() {
            // Bare: its creation and membership records are durable, and the next catalog holds it.
            self.snapshotted = version;
            then(Ok(()), self, ctx);
            return;
        }
        // What changed since the last snapshot: new index entries (appended), and the metadata.
        let meta = self.core.meta().clone();
        let entries = self.core.unsaved().to_vec();
        let (no, mark, store) = (self.init.no, self.index_mark, self.init.store.clone());
        // Under `fsync = "interval"` or `"never"` an indexed record may not be fsynced yet: the
        // mark fsyncs the log first, so a snapshot never refers to a position a power cut can take.
        let write = async move {
            store.mark().await?;
            blocking(move || store.save_chat(no, &meta, &entries, mark).map(|mark| (mark, entries.len()))).await
        };
        ctx.wait(actix::fut::wrap_future(write).map(move |res, act: &mut Self, ctx| {
            let res = res.map(|(mark, saved)| {
                act.index_mark = mark;
                act.core.saved(saved);
                act.snapshotted = version;
                if !act.filed {
                    act.filed = true;
                    act.tell_directory(act.filed_notice());
                }
            });
            then(res, act, ctx)
        }));
    }

    /// Answers snapshot requests whose seqs are all durable now.
    fn serve_snapshot_waiters(&mut self, ctx: &mut Context<Self>) {
        let durable = self.core.durable_len();
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
        // A deletion in flight is not idleness: stopping now would drop the erasure that
        // follows its record (and the Delete's answer); the chat stops once it is erased.
        if self.deleted {
            return;
        }
        if !self.core.has_pending() && !self.has_subscribers() && self.last_used.elapsed() >= self.init.idle_timeout {
            tracing::debug!(chat = self.init.no, "idle; snapshotting and stopping");
            // A chat whose snapshot failed stays up: its state is the only one that is current.
            self.snapshot(ctx, |res, _, ctx| {
                if res.is_ok() {
                    ctx.stop();
                }
            });
        }
    }

    /// A new chat: write its creation and hold the mailbox until it is durable.
    fn create(&mut self, meta: ChatMeta, ctx: &mut Context<Self>) {
        self.core = ChatCore::new(meta.clone(), self.init.rules);
        let record = Record::ChatCreated { chat: self.init.no, ns: self.init.ns.clone(), meta };
        self.unsettle();
        let durable = self.init.store.append_durable(&record);
        ctx.wait(actix::fut::wrap_future(durable).map(|res, act: &mut Self, _| match res {
            Ok(_) => {
                act.core.touch();
                if act.init.count_stored {
                    act.init.tally.counted(0);
                }
                act.tell_directory(act.members_notice());
                act.settle();
            }
            Err(err) => {
                tracing::error!(chat = act.init.no, error = %err, "could not create a chat");
                act.broken = Some(err.into());
                act.tell_directory(act.gone());
            }
        }));
    }

    /// An existing chat: load its snapshot (with `bare`, its metadata if it has no files),
    /// holding the mailbox until it is in.
    fn load(&mut self, bare: Option<ChatMeta>, ctx: &mut Context<Self>) {
        let store = self.init.store.clone();
        let no = self.init.no;
        let was_bare = bare.is_some();
        let load = async move { blocking(move || store.load_chat(no, bare.as_ref())).await };
        ctx.wait(actix::fut::wrap_future(load).map(move |res, act: &mut Self, _| match res {
            Ok(loaded) => {
                act.core = ChatCore::from_snapshot(loaded.snapshot, act.init.rules);
                act.index_mark = loaded.mark;
                act.filed = loaded.filed;
                act.snapshotted = act.core.version();
                if act.init.count_stored {
                    act.init.tally.counted(act.core.durable_len());
                }
                if was_bare && loaded.filed {
                    act.tell_directory(act.filed_notice());
                }
                act.settle();
            }
            Err(err) => {
                tracing::error!(chat = act.init.no, error = %err, "chat could not be loaded; holding it out of service");
                act.broken = Some(err);
            }
        }));
    }
}

/// An answer that is ready now.
fn ready<T: 'static>(value: T) -> ResponseFuture<T> {
    Box::pin(std::future::ready(value))
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
        match self.start.take() {
            Some(Start::Create(meta)) => self.create(meta, ctx),
            Some(Start::Bare(meta)) => self.load(Some(meta), ctx),
            Some(Start::Load) | None => self.load(None, ctx),
        }
        let every = (self.init.idle_timeout / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
        ctx.run_interval(every, |act, ctx| act.check_idle(ctx));
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.tell_directory(Notice::Stopped { ns: self.init.ns.clone(), id: self.init.id.clone(), no: self.init.no });
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
        self.snapshot_waiters.push((self.core.next_seq() - 1, tx));
        self.serve_snapshot_waiters(ctx);
        Box::pin(async move {
            rx.await.unwrap_or_else(|_| Err(Error::Internal("the chat stopped before its snapshot".into())))
        })
    }
}

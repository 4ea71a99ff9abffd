//! The registry actor: which chats exist, and which of them are live.
//!
//! It maps (namespace, chat id) to a chat's number on disk and, while the chat is in use, to its
//! actor. Chat actors start lazily, spread over a few arbiters so both cores work, and stop on
//! their own when idle; only the small per-chat entries stay here for every chat (metadata and
//! the member-set index that makes `New` idempotent).
//!
//! Membership changes and deletion (the group endpoints) are in `groups.rs`.
//!
//! It also runs checkpoints: take the log's durable end, have every live chat snapshot all it
//! has up to there, then record that position in the catalog so restart replays only the rest.

mod groups;

pub use groups::{Change, Delete, List, Update};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::chat::{ChatActor, ChatInit, Snapshot};
use crate::config::Settings;
use crate::error::Error;
use crate::model::{now_secs, ChatId, ChatMeta, Members, Namespace};
use crate::rate::RateLimiter;
use crate::store::record::{Catalog, CatalogEntry, ChatNo, Record};
use crate::store::{Recovered, Store, StoreError};

type ChatKey = (Namespace, ChatId);

struct Entry {
    no: ChatNo,
    meta: ChatMeta,
    actor: Option<Addr<ChatActor>>,
    /// False until the chat's creation record is durable; nobody is told of it before.
    durable: bool,
    waiters: Vec<oneshot::Sender<Result<ChatMeta, Error>>>,
    /// Its stored data failed a check at recovery.
    unavailable: bool,
}

pub struct Registry {
    store: Arc<Store>,
    settings: Arc<Settings>,
    chats: HashMap<ChatKey, Entry>,
    by_members: HashMap<(Namespace, Members), ChatId>,
    next_chat: ChatNo,
    arbiters: Vec<Arbiter>,
    next_arbiter: usize,
    checkpoint_running: bool,
    limiter: Arc<RateLimiter>,
}

impl Registry {
    pub fn new(store: Arc<Store>, recovered: Recovered, settings: Arc<Settings>) -> Registry {
        let mut registry = Registry {
            store,
            chats: HashMap::new(),
            by_members: HashMap::new(),
            next_chat: recovered.catalog.next_chat,
            arbiters: (0..std::thread::available_parallelism().map_or(2, |n| n.get()))
                .map(|_| Arbiter::new())
                .collect(),
            next_arbiter: 0,
            checkpoint_running: false,
            limiter: Arc::new(RateLimiter::new(settings.limits.sends_per_second, settings.limits.send_burst)),
            settings,
        };
        for CatalogEntry { chat, ns, meta } in recovered.catalog.chats {
            let unavailable = recovered.unavailable.contains(&chat);
            registry.insert(ns, Entry { no: chat, meta, actor: None, durable: true, waiters: Vec::new(), unavailable });
        }
        registry
    }

    fn insert(&mut self, ns: Namespace, entry: Entry) {
        if !entry.meta.group {
            self.by_members.entry((ns.clone(), entry.meta.user_ids.clone())).or_insert_with(|| entry.meta.id.clone());
        }
        self.chats.insert((ns, entry.meta.id.clone()), entry);
    }

    /// Forgets a chat (deleted, or its creation failed).
    fn remove(&mut self, key: &ChatKey) -> Option<Entry> {
        let entry = self.chats.remove(key)?;
        let members_key = (key.0.clone(), entry.meta.user_ids.clone());
        if self.by_members.get(&members_key) == Some(&key.1) {
            self.by_members.remove(&members_key);
        }
        Some(entry)
    }

    /// The live actor of a chat, started (on the next arbiter) if it is not running.
    fn actor(&mut self, key: &ChatKey, me: Addr<Registry>) -> Result<Addr<ChatActor>, Error> {
        let arbiter = self.arbiters[self.next_arbiter % self.arbiters.len()].handle();
        let Some(entry) = self.chats.get_mut(key) else {
            return Err(Error::chat_not_found());
        };
        if entry.unavailable {
            return Err(Error::Unavailable("this chat's stored data failed a check; it is held out of service".into()));
        }
        if let Some(actor) = entry.actor.as_ref().filter(|a| a.connected()) {
            return Ok(actor.clone());
        }
        self.next_arbiter += 1;
        let init = ChatInit {
            no: entry.no,
            ns: key.0.clone(),
            meta: entry.meta.clone(),
            store: self.store.clone(),
            registry: me,
            settings: self.settings.clone(),
            limiter: self.limiter.clone(),
        };
        let actor = ChatActor::start_in_arbiter(&arbiter, move |_| ChatActor::new(init));
        entry.actor = Some(actor.clone());
        Ok(actor)
    }

    /// Resolves once the chat's creation is durable.
    fn when_durable(&mut self, key: &ChatKey) -> ResponseFuture<Result<ChatMeta, Error>> {
        let Some(entry) = self.chats.get_mut(key) else {
            return Box::pin(async { Err(Error::chat_not_found()) });
        };
        if entry.durable {
            let meta = entry.meta.clone();
            return Box::pin(async move { Ok(meta) });
        }
        let (tx, rx) = oneshot::channel();
        entry.waiters.push(tx);
        Box::pin(async move { rx.await.unwrap_or_else(|_| Err(Error::Internal("chat creation was abandoned".into()))) })
    }

    fn catalog(&self, pos: crate::store::record::Pos) -> Catalog {
        let chats = self
            .chats
            .iter()
            .filter(|(_, e)| e.durable)
            .map(|((ns, _), e)| CatalogEntry { chat: e.no, ns: ns.clone(), meta: e.meta.clone() })
            .collect();
        let unavailable = self.chats.values().filter(|e| e.unavailable).map(|e| e.no).collect();
        Catalog { pos: Some(pos), next_chat: self.next_chat, chats, unavailable }
    }
}

impl Actor for Registry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let every = Duration::from_secs(self.settings.storage.checkpoint_interval_secs.max(1));
        ctx.run_interval(every, |_, ctx| {
            ctx.address().do_send(Checkpoint);
        });
    }
}

/// The live actor of a chat.
#[derive(Message)]
#[rtype(result = "Result<Addr<ChatActor>, Error>")]
pub struct Lookup {
    pub ns: Namespace,
    pub id: ChatId,
}

impl Handler<Lookup> for Registry {
    type Result = Result<Addr<ChatActor>, Error>;

    fn handle(&mut self, msg: Lookup, ctx: &mut Self::Context) -> Self::Result {
        self.actor(&(msg.ns, msg.id), ctx.address())
    }
}

/// Find or create a chat. With `id`: that chat if it exists. Then: the chat with exactly these
/// members, if any. Otherwise a new chat (with `id`, or a fresh UUID).
/// A group (`group: Some`) is always new.
#[derive(Message)]
#[rtype(result = "Result<ChatMeta, Error>")]
pub struct Create {
    pub ns: Namespace,
    pub id: Option<ChatId>,
    pub members: Members,
    pub group: Option<GroupSpec>,
}

/// What the group API's `Create` names besides members.
#[derive(Debug, Clone, Default)]
pub struct GroupSpec {
    pub name: String,
    pub description: String,
    pub private: bool,
}

impl Handler<Create> for Registry {
    type Result = ResponseFuture<Result<ChatMeta, Error>>;

    fn handle(&mut self, msg: Create, ctx: &mut Self::Context) -> Self::Result {
        if let Some(id) = &msg.id {
            let key = (msg.ns.clone(), id.clone());
            if self.chats.contains_key(&key) {
                return self.when_durable(&key);
            }
        }
        let existing = self.by_members.get(&(msg.ns.clone(), msg.members.clone()));
        if let (Some(id), None) = (existing, &msg.group) {
            let key = (msg.ns.clone(), id.clone());
            return self.when_durable(&key);
        }
        let id = msg.id.unwrap_or_else(ChatId::random);
        let group = msg.group.clone().unwrap_or_default();
        let meta = ChatMeta {
            id: id.clone(),
            user_ids: msg.members,
            created_at: now_secs(),
            name: group.name,
            description: group.description,
            group: msg.group.is_some(),
            private: group.private,
            invited: Members::default(),
        };
        let no = self.next_chat;
        self.next_chat += 1;
        let key = (msg.ns.clone(), id);
        let me = ctx.address();
        let done_key = key.clone();
        self.store.append(
            &Record::ChatCreated { chat: no, ns: msg.ns.clone(), meta: meta.clone() },
            Box::new(move |result| me.do_send(Created { key: done_key, result: result.map(|_| ()) })),
        );
        self.insert(msg.ns, Entry { no, meta, actor: None, durable: false, waiters: Vec::new(), unavailable: false });
        self.when_durable(&key)
    }
}

/// From the log writer: a chat's creation record is durable (or failed).
#[derive(Message)]
#[rtype(result = "()")]
struct Created {
    key: ChatKey,
    result: Result<(), StoreError>,
}

impl Handler<Created> for Registry {
    type Result = ();

    fn handle(&mut self, msg: Created, _: &mut Self::Context) {
        match msg.result {
            Ok(()) => {
                if let Some(entry) = self.chats.get_mut(&msg.key) {
                    entry.durable = true;
                    for waiter in entry.waiters.drain(..) {
                        let _ = waiter.send(Ok(entry.meta.clone()));
                    }
                }
            }
            Err(err) => {
                if let Some(entry) = self.remove(&msg.key) {
                    let err = Error::from(err);
                    for waiter in entry.waiters {
                        let _ = waiter.send(Err(err.clone()));
                    }
                }
            }
        }
    }
}

/// From a chat actor that has stopped (idle, after its snapshot).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ChatStopped {
    pub ns: Namespace,
    pub id: ChatId,
}

impl Handler<ChatStopped> for Registry {
    type Result = ();

    fn handle(&mut self, msg: ChatStopped, _: &mut Self::Context) {
        if let Some(entry) = self.chats.get_mut(&(msg.ns, msg.id)) {
            if entry.actor.as_ref().is_some_and(|a| !a.connected()) {
                entry.actor = None;
            }
        }
    }
}

/// How many chat actors are running.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct LiveCount;

impl Handler<LiveCount> for Registry {
    type Result = usize;

    fn handle(&mut self, _: LiveCount, _: &mut Self::Context) -> usize {
        self.chats.values().filter(|e| e.actor.as_ref().is_some_and(|a| a.connected())).count()
    }
}

/// Snapshot every live chat up to the log's durable end, then move the catalog's replay point there.
#[derive(Message)]
#[rtype(result = "Result<(), Error>")]
pub struct Checkpoint;

impl Handler<Checkpoint> for Registry {
    type Result = ResponseActFuture<Self, Result<(), Error>>;

    fn handle(&mut self, _: Checkpoint, _: &mut Self::Context) -> Self::Result {
        if self.checkpoint_running {
            return Box::pin(actix::fut::ready(Ok(())));
        }
        self.checkpoint_running = true;
        Box::pin(self.checkpoint().map(|res, act: &mut Self, _| {
            act.checkpoint_running = false;
            res
        }))
    }
}

impl Registry {
    fn checkpoint(&mut self) -> impl ActorFuture<Self, Output = Result<(), Error>> {
        let store = self.store.clone();
        let live: Vec<Addr<ChatActor>> = self.chats.values().filter_map(|e| e.actor.clone()).collect();
        let snapshots = async move {
            let pos = store.mark().await?;
            for actor in live {
                // A chat that stopped meanwhile snapshotted as it stopped.
                match actor.send(Snapshot).await {
                    Ok(res) => res?,
                    Err(err) => {
                        tracing::debug!(error = %err, "chat stopped before its checkpoint snapshot")
                    }
                }
            }
            Ok::<_, Error>(pos)
        };
        actix::fut::wrap_future(snapshots).then(|res, act: &mut Self, _| {
            let store = act.store.clone();
            let catalog = res.map(|pos| act.catalog(pos));
            actix::fut::wrap_future(async move {
                let catalog = catalog?;
                let res = match tokio::task::spawn_blocking(move || store.save_catalog(&catalog)).await {
                    Ok(res) => res.map_err(Error::from),
                    Err(e) => Err(Error::Internal(format!("checkpoint task failed: {e}"))),
                };
                if let Err(err) = &res {
                    tracing::error!(error = %err, "checkpoint failed");
                }
                res
            })
        })
    }
}

/// Final checkpoint, then stop every chat actor and arbiter.
#[derive(Message)]
#[rtype(result = "Result<(), Error>")]
pub struct Shutdown;

impl Handler<Shutdown> for Registry {
    type Result = ResponseActFuture<Self, Result<(), Error>>;

    fn handle(&mut self, _: Shutdown, _: &mut Self::Context) -> Self::Result {
        Box::pin(self.checkpoint().map(|res, act: &mut Self, ctx: &mut Context<Self>| {
            for arbiter in &act.arbiters {
                arbiter.stop();
            }
            ctx.stop();
            res
        }))
    }
}

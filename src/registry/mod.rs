//! The registry actor: the directory of chats.
//!
//! It maps (namespace, chat id) to a chat's number on disk and, while the chat is in use, to its
//! actor; and it keeps the member-set index that makes `New` idempotent (and answers `List`).
//! It keeps no other copy of a chat's state: each chat actor owns its own and tells the registry
//! of each durable membership change, of its deletion and of its stopping ([`Notice`]). Chat
//! actors start lazily, spread over a few arbiters so both cores work, and stop on their own
//! when idle.
//!
//! Which chat `New` answers for a member set is decided the same way before and after a
//! restart: the lowest-numbered unnamed chat whose current members are that set.
//!
//! It also runs checkpoints, every `checkpoint_interval` and after every `checkpoint_bytes` of
//! log (so the log a restart replays stays short at any send rate): take the log's durable end, have every live chat snapshot all it
//! has up to there, then record that position in the catalog so restart replays only the rest.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::chat::{ChatActor, ChatInit, Notice, Rules, Snapshot, Start, TailLimits};
use crate::error::Error;
use crate::model::{now_secs, ChatId, ChatMeta, Members, Namespace, UserId};
use crate::rate::RateLimiter;
use crate::store::record::{Catalog, CatalogEntry, ChatNo, Pos};
use crate::store::{Recovered, Store};

type ChatKey = (Namespace, ChatId);

/// What the directory knows of one chat.
struct Entry {
    no: ChatNo,
    group: bool,
    /// Its members as of its last durable change (from the chat actor).
    members: Members,
    actor: Option<Addr<ChatActor>>,
    /// False until the chat's creation is durable: the catalog lists only durable chats.
    durable: bool,
    /// Its stored data failed a check at recovery.
    unavailable: bool,
}

/// What chat actors are started with, besides their own chat.
pub struct ChatOptions {
    pub rules: Rules,
    pub idle_timeout: Duration,
    pub checkpoint_interval: Duration,
    /// Log bytes since the last checkpoint that start the next one (0: none).
    pub checkpoint_bytes: u64,
    pub limiter: Arc<RateLimiter>,
    pub tail: TailLimits,
}

pub struct Registry {
    store: Arc<Store>,
    options: ChatOptions,
    chats: HashMap<ChatKey, Entry>,
    /// Unnamed chats by current member set, lowest chat number first.
    by_members: HashMap<(Namespace, Members), BTreeMap<ChatNo, ChatId>>,
    next_chat: ChatNo,
    arbiters: Vec<Arbiter>,
    next_arbiter: usize,
    checkpoint_running: bool,
    /// The log's byte count when the last checkpoint began.
    checkpointed_bytes: u64,
}

impl Registry {
    pub fn new(store: Arc<Store>, recovered: Recovered, options: ChatOptions) -> Registry {
        let mut registry = Registry {
            store,
            options,
            chats: HashMap::new(),
            by_members: HashMap::new(),
            next_chat: recovered.catalog.next_chat,
            arbiters: (0..std::thread::available_parallelism().map_or(2, |n| n.get()))
                .map(|_| Arbiter::new())
                .collect(),
            next_arbiter: 0,
            checkpoint_running: false,
            checkpointed_bytes: 0,
        };
        for CatalogEntry { chat, ns, id, group, members } in recovered.catalog.chats {
            let unavailable = recovered.unavailable.contains(&chat);
            registry.insert(ns, id, Entry { no: chat, group, members, actor: None, durable: true, unavailable });
        }
        registry
    }

    fn insert(&mut self, ns: Namespace, id: ChatId, entry: Entry) {
        if !entry.group {
            self.by_members.entry((ns.clone(), entry.members.clone())).or_default().insert(entry.no, id.clone());
        }
        self.chats.insert((ns, id), entry);
    }

    /// Takes a chat out of the member-set index.
    fn unindex(&mut self, ns: &Namespace, no: ChatNo, members: &Members) {
        let key = (ns.clone(), members.clone());
        if let Some(chats) = self.by_members.get_mut(&key) {
            chats.remove(&no);
            if chats.is_empty() {
                self.by_members.remove(&key);
            }
        }
    }

    /// The live actor of a chat, started (on the next arbiter) if it is not running.
    fn actor(&mut self, key: &ChatKey, me: &Addr<Registry>, start: Start) -> Result<Addr<ChatActor>, Error> {
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
            id: key.1.clone(),
            store: self.store.clone(),
            directory: me.clone().recipient(),
            rules: self.options.rules,
            idle_timeout: self.options.idle_timeout,
            limiter: self.options.limiter.clone(),
            tail: self.options.tail,
        };
        let actor = ChatActor::start_in_arbiter(&arbiter, move |_| ChatActor::new(init, start));
        entry.actor = Some(actor.clone());
        Ok(actor)
    }

    fn catalog(&self, pos: Pos) -> Catalog {
        let chats = self
            .chats
            .iter()
            .filter(|(_, e)| e.durable)
            .map(|((ns, id), e)| CatalogEntry {
                chat: e.no,
                ns: ns.clone(),
                id: id.clone(),
                group: e.group,
                members: e.members.clone(),
            })
            .collect();
        let unavailable = self.chats.values().filter(|e| e.unavailable).map(|e| e.no).collect();
        Catalog { pos: Some(pos), next_chat: self.next_chat, chats, unavailable }
    }
}

impl Actor for Registry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let every = self.options.checkpoint_interval.max(Duration::from_secs(1));
        ctx.run_interval(every, |_, ctx| {
            ctx.address().do_send(Checkpoint);
        });
        if self.options.checkpoint_bytes > 0 {
            ctx.run_interval(Duration::from_millis(100), |act, ctx| {
                if act.store.log_bytes() - act.checkpointed_bytes >= act.options.checkpoint_bytes {
                    ctx.address().do_send(Checkpoint);
                }
            });
        }
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
        self.actor(&(msg.ns, msg.id), &ctx.address(), Start::Load)
    }
}

/// Find or create a chat. With `id`: that chat if it exists. Then, for a chat that is not a
/// group: the chat whose current members are exactly `members`, if any. Otherwise a new chat
/// (with `id`, or a fresh UUID). A group (`group: Some`) is always new.
#[derive(Message, Clone)]
#[rtype(result = "Result<Opened, Error>")]
pub struct Open {
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

/// The chat an [`Open`] found or made.
pub struct Opened {
    pub id: ChatId,
    pub actor: Addr<ChatActor>,
    /// Found by member set: the chat must confirm it still has them (see `chat::Describe`).
    pub by_members: Option<Members>,
}

impl Handler<Open> for Registry {
    type Result = Result<Opened, Error>;

    fn handle(&mut self, msg: Open, ctx: &mut Self::Context) -> Self::Result {
        let me = ctx.address();
        if let Some(id) = &msg.id {
            let key = (msg.ns.clone(), id.clone());
            if self.chats.contains_key(&key) {
                return Ok(Opened { actor: self.actor(&key, &me, Start::Load)?, id: key.1, by_members: None });
            }
        }
        if msg.group.is_none() {
            let found = self.by_members.get(&(msg.ns.clone(), msg.members.clone())).and_then(|c| c.values().next());
            if let Some(id) = found.cloned() {
                let key = (msg.ns, id);
                let actor = self.actor(&key, &me, Start::Load)?;
                return Ok(Opened { actor, id: key.1, by_members: Some(msg.members) });
            }
        }
        let id = msg.id.unwrap_or_else(ChatId::random);
        let group = msg.group.clone().unwrap_or_default();
        let meta = ChatMeta {
            id: id.clone(),
            user_ids: msg.members.clone(),
            created_at: now_secs(),
            name: group.name,
            description: group.description,
            group: msg.group.is_some(),
            private: group.private,
            invited: Members::default(),
        };
        let no = self.next_chat;
        self.next_chat += 1;
        let by_members = (!meta.group).then(|| msg.members.clone());
        let entry =
            Entry { no, group: meta.group, members: msg.members, actor: None, durable: false, unavailable: false };
        self.insert(msg.ns.clone(), id.clone(), entry);
        // The chat actor writes its own creation; it answers nothing until that is durable.
        let actor = self.actor(&(msg.ns, id.clone()), &me, Start::Create(meta))?;
        Ok(Opened { id, actor, by_members })
    }
}

impl Handler<Notice> for Registry {
    type Result = ();

    fn handle(&mut self, notice: Notice, _: &mut Self::Context) {
        match notice {
            Notice::Members { ns, id, no, members } => {
                let key = (ns, id);
                let Some(entry) = self.chats.get_mut(&key).filter(|e| e.no == no) else { return };
                entry.durable = true;
                let old = std::mem::replace(&mut entry.members, members.clone());
                if !entry.group {
                    self.unindex(&key.0, no, &old);
                    self.by_members.entry((key.0, members)).or_default().insert(no, key.1);
                }
            }
            Notice::Stopped { ns, id, no } => {
                if let Some(entry) = self.chats.get_mut(&(ns, id)).filter(|e| e.no == no) {
                    if entry.actor.as_ref().is_some_and(|a| !a.connected()) {
                        entry.actor = None;
                    }
                }
            }
            Notice::Gone { ns, id, no } => {
                let key = (ns, id);
                if self.chats.get(&key).is_some_and(|e| e.no == no) {
                    if let Some(entry) = self.chats.remove(&key) {
                        self.unindex(&key.0, no, &entry.members);
                    }
                }
            }
        }
    }
}

/// The chats a `List` shows: those `user` is a member of, or with no user every group.
#[derive(Message)]
#[rtype(result = "Vec<ChatId>")]
pub struct List {
    pub ns: Namespace,
    pub user: Option<UserId>,
}

impl Handler<List> for Registry {
    type Result = MessageResult<List>;

    fn handle(&mut self, msg: List, _: &mut Self::Context) -> Self::Result {
        let chats = self.chats.iter().filter(|((ns, _), e)| {
            *ns == msg.ns
                && !e.unavailable
                && match &msg.user {
                    Some(user) => e.members.contains(user),
                    None => e.group,
                }
        });
        MessageResult(chats.map(|((_, id), _)| id.clone()).collect())
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

    fn handle(&mut self, _: Checkpoint, ctx: &mut Self::Context) -> Self::Result {
        if self.checkpoint_running {
            return Box::pin(actix::fut::ready(Ok(())));
        }
        self.checkpoint_running = true;
        self.checkpointed_bytes = self.store.log_bytes();
        Box::pin(actix::fut::wrap_future(self.checkpoint(ctx.address())).map(|res, act: &mut Self, _| {
            act.checkpoint_running = false;
            res
        }))
    }
}

impl Registry {
    fn checkpoint(&mut self, me: Addr<Registry>) -> impl std::future::Future<Output = Result<(), Error>> {
        let store = self.store.clone();
        let live: Vec<Addr<ChatActor>> = self.chats.values().filter_map(|e| e.actor.clone()).collect();
        async move {
            let pos = store.mark().await?;
            for actor in live {
                // A chat that stopped meanwhile snapshotted as it stopped.
                match actor.send(Snapshot).await {
                    Ok(res) => res?,
                    Err(err) => tracing::debug!(error = %err, "chat stopped before its checkpoint snapshot"),
                }
            }
            // Through the mailbox, so every notice the chats sent before their snapshots is in.
            let catalog = me.send(CatalogAt(pos)).await.map_err(|e| Error::Internal(format!("registry: {e}")))?;
            let saved = tokio::task::spawn_blocking(move || store.save_catalog(&catalog)).await;
            let res = match saved {
                Ok(res) => res.map_err(Error::from),
                Err(e) => Err(Error::Internal(format!("checkpoint task failed: {e}"))),
            };
            if let Err(err) = &res {
                tracing::error!(error = %err, "checkpoint failed");
            }
            res
        }
    }
}

/// The directory as a catalog whose replay point is `pos`.
#[derive(Message)]
#[rtype(result = "Catalog")]
struct CatalogAt(Pos);

impl Handler<CatalogAt> for Registry {
    type Result = MessageResult<CatalogAt>;

    fn handle(&mut self, CatalogAt(pos): CatalogAt, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.catalog(pos))
    }
}

/// Final checkpoint, then stop every chat actor and arbiter.
#[derive(Message)]
#[rtype(result = "Result<(), Error>")]
pub struct Shutdown;

impl Handler<Shutdown> for Registry {
    type Result = ResponseActFuture<Self, Result<(), Error>>;

    fn handle(&mut self, _: Shutdown, ctx: &mut Self::Context) -> Self::Result {
        Box::pin(actix::fut::wrap_future(self.checkpoint(ctx.address())).map(
            |res, act: &mut Self, ctx: &mut Context<Self>| {
                for arbiter in &act.arbiters {
                    arbiter.stop();
                }
                ctx.stop();
                res
            },
        ))
    }
}

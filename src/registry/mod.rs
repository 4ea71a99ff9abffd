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
//! It also runs checkpoints (`checkpoint.rs`), which bound what a restart replays, and after
//! each the compaction of the log they no longer need (`compaction.rs`); and it keeps the
//! operator's counts per namespace (`telemetry/tally.rs`) and the list of chats held out of service.

mod checkpoint;
mod compaction;
mod directory;
mod operator;

pub use checkpoint::{Checkpoint, Shutdown};
pub use operator::{Held, HeldChat, LiveCount, Namespaces};

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::chat::{ChatActor, ChatInit, Notice, Rules, Settled, Start, TailLimits};
use crate::error::Error;
use crate::model::{now_secs, ChatId, ChatMeta, Members, Namespace, UserId};
use crate::names::ChatNames;
use crate::rate::RateLimiter;
use crate::store::record::{bare_meta, fits_catalog, Catalog, CatalogEntry, ChatNo, Pos};
use crate::store::{Recovered, Store};
use crate::telemetry::tally::Tally;
use directory::{Directory, Entry};

type ChatKey = (Namespace, ChatId);

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

/// A chat in use: its actor, and whether a checkpoint has nothing to ask it (see [`Settled`]).
struct Live {
    actor: Addr<ChatActor>,
    settled: Settled,
}

pub struct Registry {
    store: Arc<Store>,
    options: ChatOptions,
    chats: Directory,
    /// The actors of the chats in use (most chats are idle and have none).
    live: HashMap<ChatNo, Live>,
    next_chat: ChatNo,
    arbiters: Vec<Arbiter>,
    next_arbiter: usize,
    /// The log's byte count when the last checkpoint began.
    checkpointed_bytes: u64,
    /// Chats and messages by namespace, for `/admin`.
    tally: Tally,
    /// The chats recovery held out of service (the store adds those that fail later).
    held: BTreeSet<ChatNo>,
}

impl Registry {
    pub fn new(store: Arc<Store>, recovered: Recovered, options: ChatOptions) -> Registry {
        let mut registry = Registry {
            store,
            options,
            chats: Directory::with_capacity(recovered.catalog.chats.len()),
            live: HashMap::new(),
            next_chat: recovered.catalog.next_chat,
            arbiters: (0..std::thread::available_parallelism().map_or(2, |n| n.get()))
                .map(|_| Arbiter::new())
                .collect(),
            next_arbiter: 0,
            checkpointed_bytes: 0,
            tally: Tally::default(),
            held: recovered.unavailable.iter().copied().collect(),
        };
        let catalog = compact(recovered.catalog.chats);
        for CatalogEntry { chat, group, names, bare } in catalog {
            let unavailable = recovered.unavailable.contains(&chat);
            registry.tally.chat_added(names.ns());
            registry.chats.insert(chat, Entry { names, group, durable: true, unavailable, counted: false, bare });
        }
        registry.chats.shrink_to_fit();
        release_freed_memory();
        registry
    }

    /// The number of chat `key`, if the directory has it.
    fn find(&self, key: &ChatKey) -> Option<ChatNo> {
        self.chats.find(key.0.as_str(), key.1.as_str())
    }

    /// The live actor of a chat, started (on the next arbiter) if it is not running.
    fn actor(&mut self, key: &ChatKey, me: &Addr<Registry>, start: Start) -> Result<Addr<ChatActor>, Error> {
        let arbiter = self.arbiters[self.next_arbiter % self.arbiters.len()].handle();
        let Some(no) = self.find(key) else {
            return Err(Error::chat_not_found());
        };
        if self.chats.get(no).is_some_and(|e| e.unavailable) {
            return Err(Error::Unavailable("this chat's stored data failed a check; it is held out of service".into()));
        }
        if let Some(live) = self.live.get(&no).filter(|l| l.actor.connected()) {
            return Ok(live.actor.clone());
        }
        // A chat with no files is loaded from what its entry holds.
        let start = match (start, self.chats.get(no)) {
            (Start::Load, Some(Entry { names, group, bare: Some(created_at), .. })) => {
                Start::Bare(bare_meta(names.chat_id(), names.member_set(), *group, *created_at))
            }
            (start, _) => start,
        };
        self.next_arbiter += 1;
        // Its stored messages join the namespace's count on the chat's first start (`telemetry/tally.rs`).
        let count_stored = self.chats.get_mut(no).is_some_and(|e| !std::mem::replace(&mut e.counted, true));
        let settled = Settled::default();
        let init = ChatInit {
            no,
            ns: key.0.clone(),
            id: key.1.clone(),
            store: self.store.clone(),
            directory: me.clone().recipient(),
            rules: self.options.rules,
            idle_timeout: self.options.idle_timeout,
            limiter: self.options.limiter.clone(),
            tail: self.options.tail,
            tally: self.tally.of(key.0.as_str()),
            count_stored,
            settled: settled.clone(),
        };
        let actor = ChatActor::start_in_arbiter(&arbiter, move |_| ChatActor::new(init, start));
        self.live.insert(no, Live { actor: actor.clone(), settled });
        Ok(actor)
    }

    /// The directory as a catalog: its entries share their names with the directory's.
    fn catalog(&self, pos: Pos) -> Catalog {
        let chats = self
            .chats
            .iter()
            .filter(|(_, e)| e.durable)
            .map(|(chat, e)| CatalogEntry { chat, group: e.group, names: e.names.clone(), bare: e.bare })
            .collect();
        let unavailable = self.chats.iter().filter(|(_, e)| e.unavailable).map(|(no, _)| no).collect();
        Catalog { pos: Some(pos), next_chat: self.next_chat, chats, unavailable }
    }
}

impl Actor for Registry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.schedule_checkpoints(ctx);
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
            if self.find(&key).is_some() {
                return Ok(Opened { actor: self.actor(&key, &me, Start::Load)?, id: key.1, by_members: None });
            }
        }
        if msg.group.is_none() {
            let found = self.chats.find_by_members(msg.ns.as_str(), &msg.members);
            if let Some(entry) = found.and_then(|no| self.chats.get(no)) {
                let key = (msg.ns, entry.names.chat_id());
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
        let names = ChatNames::new(&msg.ns, &id, &msg.members);
        self.tally.chat_added(msg.ns.as_str());
        let bare = fits_catalog(&meta).then_some(meta.created_at);
        self.chats
            .insert(no, Entry { names, group: meta.group, durable: false, unavailable: false, counted: false, bare });
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
                if self.find(&(ns, id)) != Some(no) {
                    return;
                }
                if let Some(entry) = self.chats.get_mut(no) {
                    entry.durable = true;
                }
                if !self.chats.get(no).is_some_and(|e| e.names.has_members(&members)) {
                    self.chats.set_members(no, &members);
                }
            }
            Notice::Filed { ns, id, no } => {
                if self.find(&(ns, id)) == Some(no) {
                    if let Some(entry) = self.chats.get_mut(no) {
                        entry.bare = None;
                    }
                }
            }
            Notice::Stopped { ns, id, no } => {
                if self.find(&(ns, id)) == Some(no) && self.live.get(&no).is_some_and(|l| !l.actor.connected()) {
                    self.live.remove(&no);
                }
            }
            Notice::Gone { ns, id, no } => {
                if self.find(&(ns.clone(), id)) == Some(no) {
                    if self.chats.remove(no).is_some() {
                        self.tally.chat_removed(ns.as_str());
                    }
                    self.live.remove(&no);
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
        let chats = self.chats.iter().filter(|(_, e)| {
            !e.unavailable
                && e.names.ns() == msg.ns.as_str()
                && match &msg.user {
                    Some(user) => e.names.has_member(user.as_str()),
                    None => e.group,
                }
        });
        MessageResult(chats.map(|(_, e)| e.names.chat_id()).collect())
    }
}

/// The same entries, their names packed anew into a heap that holds nothing else.
///
/// Recovery allocates each chat's names among its own transient blocks (decoded records, the
/// per-chat tails it folds), so once those are freed, a few live names pin nearly every page
/// of that heap: after a `kill -9` with a million chats in the replayed log, 651 MB stayed
/// resident. Moving the names out into one buffer, trimming, and packing them again leaves
/// them side by side.
fn compact(entries: Vec<CatalogEntry>) -> Vec<CatalogEntry> {
    let bytes: usize = entries.iter().map(|e| e.names.packed().len()).sum();
    let mut packed = Vec::with_capacity(bytes);
    let mut shapes = Vec::with_capacity(entries.len());
    for CatalogEntry { chat, group, names, bare } in entries {
        packed.extend_from_slice(names.packed());
        shapes.push((chat, group, bare, names.packed().len()));
    }
    release_freed_memory();
    let mut at = 0;
    let mut entries = Vec::with_capacity(shapes.len());
    for (chat, group, bare, len) in shapes {
        entries.push(CatalogEntry { chat, group, names: ChatNames::from_packed(&packed[at..at + len]), bare });
        at += len;
    }
    entries
}

/// Hands the heap that loading freed back to the system. glibc keeps freed small blocks for
/// reuse, so without this the transient copies of a million-chat catalog (the file, its decoded
/// entries, recovery's map) would stay resident for the life of the process.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it touches no live block.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compacting_keeps_every_entry_as_it_was() {
        let ns = Namespace::parse("micro", 256).expect("ns"); // ok: test
        let entries: Vec<CatalogEntry> = (0..50u64)
            .map(|n| {
                let id = ChatId::parse(&format!("chat-{n}"), 256).expect("id"); // ok: test
                let users = (0..n % 4).map(|u| UserId::parse(&format!("u{n}-{u}"), 256).expect("user")).collect(); // ok: test
                CatalogEntry::new(n * 3, &ns, &id, n % 2 == 0, &Members::new(users))
            })
            .collect();
        let compacted = compact(entries.clone());
        assert_eq!(compacted.len(), entries.len());
        for (a, b) in entries.iter().zip(&compacted) {
            assert_eq!((a.chat, a.group, &a.names), (b.chat, b.group, &b.names));
        }
    }
}

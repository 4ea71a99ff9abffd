//! Storage: a shared write-ahead log plus per-chat indexes.
//!
//! Why one log for all chats: durability costs an fsync (about 175 µs here), and a log per chat
//! would pay it per chat. One log lets a single fsync cover every chat's sends in a batch (group
//! commit). Each chat keeps only an index of where its messages lie in the log, and appends to it
//! at each checkpoint what is new since the last; a history page is then a handful of positioned
//! reads, whatever the chat's length, and a checkpoint costs what changed, not what is stored.
//!
//! ```text
//! data/
//!   wal/00000000000000000001.wal   log segments: checksummed records (see codec.rs)
//!   snap/catalog.snap               the directory (each chat's number, namespace, id, members)
//!                                   + the log position all chats' files cover
//!   snap/chat-000000000000002a.meta one chat's metadata (by server-allocated number, never a
//!                                   client string)
//!   snap/chat-000000000000002a.idx  its message index, append-only (see index.rs, chats.rs)
//! ```
//! A chat with no messages and nothing but members set has neither file: its catalog entry
//! holds all of it (a bare chat, see [`record::CatalogEntry::bare`]), so a million chats made
//! and never written to cost a checkpoint one catalog, not two million files and their fsyncs.
//! Everything here that blocks (file I/O) runs on the log writer thread or a blocking pool,
//! never on an actor's arbiter.
//!
//! What a chat needs of its storage is few operations, and they are this module's boundary (a
//! second backend, such as a JetStream cluster, would stand behind the same ones): append
//! records and learn when they are durable ([`Store::append`], [`Store::append_durable`]), read
//! a message by position ([`Store::read_message`]), snapshot and load a chat
//! ([`Store::save_chat`], [`Store::load_chat`]), delete ([`Store::delete_chat`]), recover
//! ([`Store::open`]), and compact old segments away ([`Store::compaction_plan`] and the steps
//! after it, `compact.rs`). It takes its own [`Options`] and answers [`StoreError`]; it knows
//! nothing above it.
//!
//! Checkpoints and backups take turns through [`Store::maintenance`] (`maintenance.rs`); a
//! backup (`backup.rs`) copies a running store, and `check.rs` verifies a stopped one's files.

pub mod backup;
pub mod chats;
pub mod check;
pub mod codec;
pub mod compact;
mod files;
pub mod index;
pub mod maintenance;
pub mod record;
pub mod recovery;
pub mod scan;
pub mod snapshot;
pub mod tail;
pub mod wal;

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::model::{ChatMeta, Message};
pub use chats::Loaded;
use files::{create_dir_durably, erase_in_place, read_message_in};
pub use files::{io_error, sync_dir, Layout};
use maintenance::Maintenance;
use record::{bare_meta, Catalog, ChatNo, IndexEntry, IndexMark, Loc, Pos, Record};
pub use recovery::Recovered;
use tail::Tail;
use wal::{AppendDone, Wal, WalOptions};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("the disk is full")]
    DiskFull,
    #[error("I/O error: {0}")]
    Io(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the log is out of service after an earlier failure: {0}")]
    Failed(String),
    /// The record was erased in place: its chat was deleted.
    #[error("the record was erased")]
    Erased,
    /// Other maintenance holds what this needs (see `maintenance.rs`).
    #[error("{0}")]
    Busy(String),
}

/// When an append counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// After its fsync; concurrent appends share one (group commit).
    Always,
    /// After its write; fsync every `fsync_interval`.
    Interval,
    /// After its write; flushing is left to the OS.
    Never,
}

/// What the store is opened with.
#[derive(Debug, Clone)]
pub struct Options {
    pub data_dir: PathBuf,
    pub fsync: Fsync,
    pub fsync_interval: Duration,
    /// A log segment is closed and a new one started past this size.
    pub segment_bytes: u64,
}

/// A chat's tail from recovery until it is in the chat's files; its lock keeps the chat's load
/// and a checkpoint's fold from both writing it.
type TailSlot = Arc<Mutex<Option<Tail>>>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub struct Store {
    layout: Layout,
    wal: Wal,
    /// Open segment files for positioned reads, shared by every reader.
    segments: Mutex<HashMap<u64, Arc<File>>>,
    /// Checkpoints may overlap; their catalog writes must not.
    catalog_lock: Mutex<()>,
    /// The tails recovery found, by chat, until each is in its chat's files (see `tail.rs`).
    tails: Mutex<HashMap<ChatNo, TailSlot>>,
    /// Chats whose tail could not be folded in (their files and the log disagree): held out
    /// of service, and listed so in each catalog from now on.
    held: Mutex<HashSet<ChatNo>>,
    /// Checkpoints and backups taking turns, and what a backup holds back (`maintenance.rs`).
    maintenance: Maintenance,
    /// What each sealed segment compaction looked at holds (segments never change but by
    /// erasure, which only makes less of them live).
    summaries: Mutex<HashMap<u64, compact::Summary>>,
    /// Segments compaction removed, and when: their files stay open in `segments` for a while.
    retired: Mutex<Vec<(u64, Instant)>>,
}

impl Store {
    /// Recovers the data dir and starts the log writer.
    pub fn open(options: &Options) -> Result<(Arc<Store>, Recovered), StoreError> {
        let layout = Layout::new(&options.data_dir);
        for dir in [&options.data_dir, &layout.wal, &layout.snap] {
            create_dir_durably(dir)?;
        }
        let (recovered, tails) = recovery::recover(&layout)?;
        let opts = WalOptions {
            fsync: options.fsync,
            fsync_interval: options.fsync_interval.max(Duration::from_millis(1)),
            segment_bytes: options.segment_bytes.max(4096),
        };
        let (wal, _writer) = Wal::start(layout.wal.clone(), recovered.end, opts)?;
        let store = Store {
            layout,
            wal,
            segments: Mutex::new(HashMap::new()),
            catalog_lock: Mutex::new(()),
            tails: Mutex::new(tails.into_iter().map(|(chat, tail)| (chat, Arc::new(Mutex::new(Some(tail))))).collect()),
            held: Mutex::new(HashSet::new()),
            maintenance: Maintenance::default(),
            summaries: Mutex::new(HashMap::new()),
            retired: Mutex::new(Vec::new()),
        };
        Ok((Arc::new(store), recovered))
    }

    /// Appends a record; `done` runs on the writer thread once it is durable.
    pub fn append(&self, record: &Record, done: AppendDone) {
        match codec::frame(record, record.tag()) {
            Ok(frame) => self.wal.append(frame, record.tag(), done),
            Err(err) => done(Err(err)),
        }
    }

    /// Appends a record now (its place in the log is fixed by this call) and returns a future
    /// that resolves once it is durable.
    pub fn append_durable(
        &self,
        record: &Record,
    ) -> impl std::future::Future<Output = Result<Loc, StoreError>> + 'static {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.append(record, Box::new(move |res| drop(tx.send(res))));
        async move { rx.await.unwrap_or_else(|_| Err(StoreError::Failed("the log writer has stopped".into()))) }
    }

    /// After a full disk refused a record of `chat`, the chat has given up what it had in flight
    /// and appends again (see `wal.rs`).
    pub fn resume(&self, chat: ChatNo) {
        self.wal.resume(chat);
    }

    /// Why the log takes no more writes (a write or an fsync failed), if it does not.
    pub fn failure(&self) -> Option<&str> {
        self.wal.failure()
    }

    /// Bytes appended to the log since the server started (what checkpoints by size count).
    pub fn log_bytes(&self) -> u64 {
        self.wal.written()
    }

    /// The log's end, once everything appended so far is durable (fsynced whatever the mode).
    pub async fn mark(&self) -> Result<Pos, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.wal.mark(Box::new(move |res| drop(tx.send(res))));
        rx.await.unwrap_or_else(|_| Err(StoreError::Failed("the log writer has stopped".into())))
    }

    /// Reads one message of `chat` back from the log. Blocking.
    pub fn read_message(&self, chat: ChatNo, loc: Loc) -> Result<Message, StoreError> {
        let file = self.segment(loc.pos.segment)?;
        read_message_in(&file, chat, loc)?.ok_or(StoreError::Erased)
    }

    fn segment(&self, segment: u64) -> Result<Arc<File>, StoreError> {
        let mut open = self.segments.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(file) = open.get(&segment) {
            return Ok(file.clone());
        }
        let file = Arc::new(File::open(wal::segment_path(&self.layout.wal, segment)).map_err(io_error)?);
        open.insert(segment, file.clone());
        Ok(file)
    }

    /// The chats held out of service since the start (recovery's own are in [`Recovered`]).
    pub fn held(&self) -> Vec<ChatNo> {
        lock(&self.held).iter().copied().collect()
    }

    /// A chat from its files with its recovery tail folded in (and written to them), or the chat
    /// rebuilt from the whole log if its files are damaged or missing. `bare` is its metadata
    /// if its catalog entry holds it (see [`record::CatalogEntry::bare`]): a chat with no files
    /// is loaded from it. Blocking.
    pub fn load_chat(&self, chat: ChatNo, bare: Option<&ChatMeta>) -> Result<Loaded, StoreError> {
        // Loading may write the chat's files (a tail folded in, a rebuild).
        let _written = self.maintenance.snap_write();
        if lock(&self.held).contains(&chat) {
            return Err(StoreError::Corrupt(format!("chat {chat}'s files and the log disagree")));
        }
        let slot = lock(&self.tails).get(&chat).cloned();
        let Some(slot) = slot else {
            return chats::load(&self.layout, chat, None, true, bare);
        };
        let mut tail = lock(&slot);
        let loaded = chats::load(&self.layout, chat, tail.as_ref(), true, bare);
        self.settle(chat, &mut tail, &loaded);
        loaded
    }

    /// After folding a chat's tail: gone once in the files; on damage the chat is held out.
    fn settle<T>(&self, chat: ChatNo, tail: &mut Option<Tail>, res: &Result<T, StoreError>) {
        match res {
            Ok(_) => *tail = None,
            Err(StoreError::Corrupt(why)) => {
                tracing::error!(chat, why, "chat is held out of service");
                lock(&self.held).insert(chat);
                *tail = None;
            }
            // Anything else (a full disk) may pass: the tail stays for the next try.
            Err(_) => {}
        }
    }

    /// Folds every tail no chat has loaded into its chat's files (a bare chat still bare after
    /// its tail needs none): a checkpoint does this before `catalog` moves past them. Blocking.
    fn fold_tails(&self, catalog: &Catalog) -> Result<(), StoreError> {
        let slots: HashMap<ChatNo, TailSlot> = lock(&self.tails).iter().map(|(c, s)| (*c, s.clone())).collect();
        if slots.is_empty() {
            return Ok(());
        }
        // What the entry gives each bare chat whose tail lacks its creation (made before the catalog).
        let needs_entry =
            |chat: ChatNo| slots.get(&chat).is_some_and(|s| lock(s).as_ref().is_some_and(|t| t.created.is_none()));
        let bare = catalog.chats.iter().filter(|e| e.bare.is_some() && needs_entry(e.chat)).filter_map(|e| {
            let created_at = e.bare?;
            Some((e.chat, bare_meta(e.names.chat_id(), e.names.member_set(), e.group, created_at)))
        });
        let bare: HashMap<ChatNo, ChatMeta> = bare.collect();
        for (chat, slot) in &slots {
            let mut tail = lock(slot);
            if tail.is_some() {
                let folded = chats::load(&self.layout, *chat, tail.as_ref(), false, bare.get(chat));
                self.settle(*chat, &mut tail, &folded);
                folded?;
            }
        }
        lock(&self.tails).retain(|_, slot| lock(slot).is_some());
        Ok(())
    }

    /// Finishes a chat's deletion (its deletion record is durable): overwrites its message
    /// records at `locs` in place with [`Record::Erased`] frames of the same length, fsyncs, and
    /// removes its files. A deleted chat's messages leave the disk at once, and nobody else's
    /// positions move; while a backup runs, this is queued until it ends (`maintenance.rs`).
    /// Blocking.
    pub fn delete_chat(&self, chat: ChatNo, locs: &[Loc]) -> Result<(), StoreError> {
        let mut deletions = lock(&self.maintenance.deletions);
        if deletions.backup {
            tracing::info!(chat, "a backup is running; the deleted chat's records are erased once it ends");
            deletions.queued.push((chat, locs.to_vec()));
            return Ok(());
        }
        erase_in_place(&self.layout, locs)?;
        chats::remove(&self.layout, chat)
    }

    /// Overwrites the records at `locs` in place, as [`Store::delete_chat`] does, at once:
    /// for compaction's copies of a chat deleted while it ran (compaction holds the maintenance
    /// turn, so no backup is copying). Blocking.
    pub fn erase(&self, locs: &[Loc]) -> Result<(), StoreError> {
        erase_in_place(&self.layout, locs)
    }

    /// Whose turn it is to change what is on disk: a checkpoint's (and the compaction in it)
    /// or a backup's (see `maintenance.rs`).
    pub fn maintenance(&self) -> &Maintenance {
        &self.maintenance
    }

    /// Appends a chat's index entries since `mark` (durably), then replaces its metadata
    /// snapshot atomically. Answers the index's new mark. Blocking.
    pub fn save_chat(
        &self,
        chat: ChatNo,
        meta: &ChatMeta,
        entries: &[IndexEntry],
        mark: IndexMark,
    ) -> Result<IndexMark, StoreError> {
        let _written = self.maintenance.snap_write();
        chats::save(&self.layout, chat, meta, entries, mark)
    }

    /// Writes the catalog atomically, once every recovery tail it moves past is in its chat's
    /// files. Blocking.
    pub fn save_catalog(&self, catalog: &Catalog) -> Result<(), StoreError> {
        let _one_at_a_time = lock(&self.catalog_lock);
        self.fold_tails(catalog)?;
        let held = lock(&self.held);
        if held.iter().all(|chat| catalog.unavailable.contains(chat)) {
            return snapshot::write(&self.layout.catalog(), catalog);
        }
        let mut catalog = catalog.clone();
        let more: Vec<ChatNo> = held.iter().filter(|chat| !catalog.unavailable.contains(chat)).copied().collect();
        catalog.unavailable.extend(more);
        snapshot::write(&self.layout.catalog(), &catalog)
    }
}

#[cfg(test)]
mod compact_tests;
#[cfg(test)]
mod tests;

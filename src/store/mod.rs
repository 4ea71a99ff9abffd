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
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::model::{ChatMeta, Message};
pub use chats::Loaded;
use codec::Frame;
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

/// The message of `chat` at `loc` in its segment `file`, or `None` if it was erased. Blocking.
fn read_message_in(file: &File, chat: ChatNo, loc: Loc) -> Result<Option<Message>, StoreError> {
    let mut buf = vec![0u8; loc.len as usize];
    file.read_exact_at(&mut buf, loc.pos.offset).map_err(io_error)?;
    let corrupt =
        || StoreError::Corrupt(format!("log record at {}:{} of chat {chat}", loc.pos.segment, loc.pos.offset));
    let Frame::Valid { payload, .. } = codec::read_frame(&buf) else {
        return Err(corrupt());
    };
    match codec::decode_record::<Record>(payload)? {
        Record::Message { chat: c, msg } | Record::Copied { chat: c, msg } if c == chat => Ok(Some(msg)),
        Record::Erased(_) => Ok(None),
        _ => Err(corrupt()),
    }
}

/// Overwrites each record at `locs` with an erased filler and fsyncs the segments touched.
fn erase_in_place(layout: &Layout, locs: &[Loc]) -> Result<(), StoreError> {
    let mut touched: Vec<(u64, File)> = Vec::new();
    for loc in locs {
        let filler = erased_frame(loc.len as usize)?;
        let at = match touched.iter().position(|(segment, _)| *segment == loc.pos.segment) {
            Some(at) => at,
            None => {
                let path = wal::segment_path(&layout.wal, loc.pos.segment);
                let file = match std::fs::OpenOptions::new().write(true).open(path) {
                    Ok(file) => file,
                    // Compaction removed the segment: the record left the disk with it.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io_error(e)),
                };
                touched.push((loc.pos.segment, file));
                touched.len() - 1
            }
        };
        touched[at].1.write_all_at(&filler, loc.pos.offset).map_err(io_error)?;
    }
    for (_, file) in touched {
        file.sync_data().map_err(io_error)?;
    }
    Ok(())
}

/// A valid frame of exactly `len` bytes holding [`Record::Erased`].
fn erased_frame(len: usize) -> Result<Vec<u8>, StoreError> {
    // The filler's own length prefix takes 1 to 9 bytes; find the size that lands exactly.
    for prefix in [1, 3, 5, 9] {
        let Some(fill) = len.checked_sub(codec::HEADER_LEN + 1 + prefix) else {
            continue;
        };
        let frame = codec::frame(&Record::Erased(vec![0; fill]), record::NO_CHAT)?;
        if frame.len() == len {
            return Ok(frame);
        }
    }
    Err(StoreError::Io(format!("cannot erase a record of {len} bytes in place")))
}

pub fn io_error(e: io::Error) -> StoreError {
    if e.kind() == io::ErrorKind::StorageFull || e.raw_os_error() == Some(28) {
        StoreError::DiskFull
    } else {
        StoreError::Io(e.to_string())
    }
}

/// fsyncs a directory, making file creations and renames in it durable.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_error)
}

/// Creates `dir` and any missing parents, fsyncing the parent of each one it creates: a new
/// directory's entry is durable only once its parent is, and a first start must not lose its
/// data dir (with every acknowledged message in it) to a power cut.
fn create_dir_durably(dir: &Path) -> Result<(), StoreError> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    create_dir_durably(parent)?;
    match std::fs::create_dir(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(io_error(e)),
        _ => {}
    }
    sync_dir(parent)
}

/// Where each kind of file lives under the data dir.
pub struct Layout {
    pub wal: PathBuf,
    pub snap: PathBuf,
}

impl Layout {
    fn new(data_dir: &Path) -> Layout {
        Layout { wal: data_dir.join("wal"), snap: data_dir.join("snap") }
    }

    pub fn catalog(&self) -> PathBuf {
        snapshot::catalog_path(&self.snap)
    }

    pub fn chat(&self, chat: ChatNo) -> PathBuf {
        snapshot::chat_path(&self.snap, chat)
    }

    pub fn head(&self, chat: ChatNo) -> PathBuf {
        snapshot::head_path(&self.snap, chat)
    }

    pub fn index(&self, chat: ChatNo) -> PathBuf {
        snapshot::index_path(&self.snap, chat)
    }
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

    /// The sealed segments wholly before segment `before` that are worth compacting (see
    /// `compact.rs`), oldest first, each with an upper bound of its live bytes: those of the
    /// messages of `chats` (the directory) and `held` (chats out of service). Segments not yet
    /// looked at are read up to `read_budget` bytes per call (the rest wait for the next), so a
    /// first pass over a long log does not hold up the checkpoints behind it. Blocking.
    pub fn compaction_plan(
        &self,
        before: u64,
        chats: &HashSet<ChatNo>,
        held: &HashSet<ChatNo>,
        read_budget: u64,
    ) -> Result<Vec<(u64, u64)>, StoreError> {
        let segments: Vec<u64> = scan::list_segments(&self.layout.wal)?.into_iter().filter(|&s| s < before).collect();
        let mut plan = Vec::new();
        let mut read = 0;
        for segment in segments {
            let known = lock(&self.summaries).get(&segment).cloned();
            let summary = match known {
                Some(summary) => summary,
                None if read >= read_budget => continue,
                None => {
                    let summary = compact::summarize(&self.layout, segment)?;
                    read += summary.len;
                    lock(&self.summaries).insert(segment, summary.clone());
                    summary
                }
            };
            let live = summary.bytes_of(chats) + summary.bytes_of(held);
            if summary.worth_it(live) {
                plan.push((segment, live));
            }
        }
        Ok(plan)
    }

    /// What of a segment must outlive it, or `None` if it must stay (see `compact.rs`). Blocking.
    pub fn live_records(
        &self,
        segment: u64,
        held: &HashSet<ChatNo>,
        indexes: &mut compact::Indexes,
    ) -> Result<Option<compact::Found>, StoreError> {
        compact::live_records(&self.layout, segment, held, indexes)
    }

    /// A chat's metadata as its files hold it (`None`: it has no files). Blocking.
    pub fn stored_meta(&self, chat: ChatNo) -> Result<Option<ChatMeta>, StoreError> {
        compact::stored_meta(&self.layout, chat)
    }

    /// Moves a chat's index onto copies (only its chat actor calls this). Blocking.
    pub fn relocate_index(
        &self,
        chat: ChatNo,
        mark: IndexMark,
        moves: &[compact::Move],
    ) -> Result<(IndexMark, Vec<compact::Move>), StoreError> {
        compact::relocate_index(&self.layout, chat, mark, moves)
    }

    /// Removes segments no index points into: listed as removed (durably), kept open for
    /// readers that still hold a position in them, then unlinked. Answers the bytes freed.
    /// Blocking.
    pub fn retire(&self, segments: &[u64]) -> Result<u64, StoreError> {
        if segments.is_empty() {
            return Ok(0);
        }
        compact::note_removed(&self.layout, segments)?;
        let mut freed = 0;
        for &segment in segments {
            // A page read may have taken a position in it just before its chat moved.
            match self.segment(segment) {
                Ok(file) => freed += file.metadata().map(|m| m.len()).unwrap_or(0),
                Err(err) => tracing::debug!(segment, error = %err, "a compacted segment is already gone"),
            }
            snapshot::remove(&wal::segment_path(&self.layout.wal, segment))?;
            lock(&self.summaries).remove(&segment);
            lock(&self.retired).push((segment, Instant::now()));
        }
        sync_dir(&self.layout.wal)?;
        Ok(freed)
    }

    /// Closes the files of segments removed more than `grace` ago (their space returns then).
    pub fn evict_retired(&self, grace: Duration) {
        let mut retired = lock(&self.retired);
        let mut open = lock(&self.segments);
        retired.retain(|(segment, at)| {
            let keep = at.elapsed() < grace;
            if !keep {
                open.remove(segment);
            }
            keep
        });
    }
}

#[cfg(test)]
mod tests;

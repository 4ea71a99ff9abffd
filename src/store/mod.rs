//! Storage: a shared write-ahead log plus per-chat index snapshots.
//!
//! Why one log for all chats: durability costs an fsync (about 175 µs here), and a log per chat
//! would pay it per chat. One log lets a single fsync cover every chat's sends in a batch (group
//! commit). Each chat keeps only an index of where its messages lie in the log and snapshots that
//! index; a history page is then a handful of positioned reads, whatever the chat's length.
//!
//! ```text
//! data/
//!   wal/00000000000000000001.wal   log segments: checksummed records (see codec.rs)
//!   snap/catalog.snap               the directory (each chat's number, namespace, id, members)
//!                                   + the log position all snapshots cover
//!   snap/chat-000000000000002a.snap one chat's metadata and message index (by server-allocated
//!                                   number, never a client string)
//! ```
//! Everything here that blocks (file I/O) runs on the log writer thread or a blocking pool,
//! never on an actor's arbiter.
//!
//! What a chat needs of its storage is few operations, and they are this module's boundary (a
//! second backend, such as a JetStream cluster, would stand behind the same ones): append
//! records and learn when they are durable ([`Store::append`], [`Store::append_durable`]), read
//! a message by position ([`Store::read_message`]), snapshot and load a chat
//! ([`Store::save_chat`], [`Store::load_chat`]), erase ([`Store::erase`]), recover ([`Store::open`]).
//! It takes its own [`Options`] and answers [`StoreError`]; it knows nothing above it.

pub mod codec;
pub mod record;
pub mod recovery;
pub mod scan;
pub mod snapshot;
pub mod wal;

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::model::Message;
use codec::Frame;
use record::{Catalog, ChatNo, ChatSnapshot, Loc, Pos, Record};
pub use recovery::Recovered;
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

/// Overwrites each record at `locs` with an erased filler and fsyncs the segments touched.
fn erase_in_place(layout: &Layout, locs: &[Loc]) -> Result<(), StoreError> {
    let mut touched: Vec<(u64, File)> = Vec::new();
    for loc in locs {
        let filler = erased_frame(loc.len as usize)?;
        let at = match touched.iter().position(|(segment, _)| *segment == loc.pos.segment) {
            Some(at) => at,
            None => {
                let path = wal::segment_path(&layout.wal, loc.pos.segment);
                let file = std::fs::OpenOptions::new().write(true).open(path).map_err(io_error)?;
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
}

pub struct Store {
    layout: Layout,
    wal: Wal,
    /// Open segment files for positioned reads, shared by every reader.
    segments: Mutex<HashMap<u64, Arc<File>>>,
    /// Checkpoints may overlap; their catalog writes must not.
    catalog_lock: Mutex<()>,
}

impl Store {
    /// Recovers the data dir and starts the log writer.
    pub fn open(options: &Options) -> Result<(Arc<Store>, Recovered), StoreError> {
        let layout = Layout::new(&options.data_dir);
        for dir in [&options.data_dir, &layout.wal, &layout.snap] {
            create_dir_durably(dir)?;
        }
        let recovered = recovery::recover(&layout)?;
        let opts = WalOptions {
            fsync: options.fsync,
            fsync_interval: options.fsync_interval.max(Duration::from_millis(1)),
            segment_bytes: options.segment_bytes.max(4096),
        };
        let (wal, _writer) = Wal::start(layout.wal.clone(), recovered.end, opts)?;
        let store = Store { layout, wal, segments: Mutex::new(HashMap::new()), catalog_lock: Mutex::new(()) };
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

    /// The log's end, once everything appended so far is durable (fsynced whatever the mode).
    pub async fn mark(&self) -> Result<Pos, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.wal.mark(Box::new(move |res| drop(tx.send(res))));
        rx.await.unwrap_or_else(|_| Err(StoreError::Failed("the log writer has stopped".into())))
    }

    /// Reads one message of `chat` back from the log. Blocking.
    pub fn read_message(&self, chat: ChatNo, loc: Loc) -> Result<Message, StoreError> {
        let file = self.segment(loc.pos.segment)?;
        let mut buf = vec![0u8; loc.len as usize];
        file.read_exact_at(&mut buf, loc.pos.offset).map_err(io_error)?;
        let corrupt =
            || StoreError::Corrupt(format!("log record at {}:{} of chat {chat}", loc.pos.segment, loc.pos.offset));
        let Frame::Valid { payload, .. } = codec::read_frame(&buf) else {
            return Err(corrupt());
        };
        match codec::decode_record::<Record>(payload)? {
            Record::Message { chat: c, msg } if c == chat => Ok(msg),
            Record::Erased(_) => Err(StoreError::Erased),
            _ => Err(corrupt()),
        }
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

    /// A chat's snapshot, or the chat rebuilt from the whole log if its snapshot is damaged or
    /// missing. Blocking.
    pub fn load_chat(&self, chat: ChatNo) -> Result<ChatSnapshot, StoreError> {
        match snapshot::read::<ChatSnapshot>(&self.layout.chat(chat)) {
            Ok(Some(found)) if found.chat == chat => Ok(found),
            found => {
                let why = match found {
                    Err(err) => err.to_string(),
                    _ => "it is missing".to_owned(),
                };
                tracing::error!(chat, why, "chat snapshot unusable; rebuilding the chat from the log");
                let segments = scan::list_segments(&self.layout.wal)?;
                let rebuilt = recovery::rebuild_chat(&self.layout, &segments, chat)?;
                self.save_chat(&rebuilt)?;
                Ok(rebuilt)
            }
        }
    }

    /// Overwrites records in place with [`Record::Erased`] frames of the same length and fsyncs:
    /// a deleted chat's messages leave the disk at once, and nobody else's positions move. Blocking.
    pub fn erase(&self, locs: &[Loc]) -> Result<(), StoreError> {
        erase_in_place(&self.layout, locs)
    }

    /// Removes a deleted chat's snapshot. Blocking.
    pub fn remove_chat(&self, chat: ChatNo) -> Result<(), StoreError> {
        snapshot::remove(&self.layout.chat(chat))?;
        sync_dir(&self.layout.snap)
    }

    /// Writes a chat's snapshot atomically. Blocking.
    pub fn save_chat(&self, snapshot: &ChatSnapshot) -> Result<(), StoreError> {
        snapshot::write(&self.layout.chat(snapshot.chat), snapshot)
    }

    /// Writes the catalog atomically. Blocking.
    pub fn save_catalog(&self, catalog: &Catalog) -> Result<(), StoreError> {
        let _one_at_a_time = self.catalog_lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        snapshot::write(&self.layout.catalog(), catalog)
    }
}

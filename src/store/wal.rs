//! The shared write-ahead log: one writer thread, group commit, segment files.
//!
//! Every chat appends to this one log, so one fsync makes a whole batch durable whatever the
//! number of chats. Appends queue on a channel; the writer takes everything queued, writes it with
//! one `write` ended by a commit record, fsyncs once (under `fsync = "always"`), then completes the
//! batch in order. It never waits to fill a batch: whatever arrives during one fsync forms the next
//! one. Recovery keeps only batches whose commit record made it to disk.
//!
//! A failed fsync, or a failed write for any reason but a full disk, is fatal for the log: the
//! page cache may have dropped the data, so retrying would pretend it is safe (PostgreSQL's
//! "fsyncgate"). Every later append fails too, and recovery on restart decides what is on disk.
//!
//! A full disk is different: the write failed before anything was fsynced or acknowledged, and
//! the log's end did not move, so the next batch simply writes there again. But a chat's records
//! must stay gap-free: once a batch fails for lack of space, every chat with a record in it is
//! *held* — its later appends already queued fail too — until the chat, having given up its
//! in-flight messages, says [`Wal::resume`]. Other chats carry on; everyone succeeds again once
//! space returns, without a restart.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::codec;
use super::record::{Loc, Pos, Record, NO_CHAT};
use super::{io_error, sync_dir, Fsync as FsyncMode, StoreError};

/// Called on the writer thread once an append is durable (or has failed); must be quick.
pub type AppendDone = Box<dyn FnOnce(Result<Loc, StoreError>) + Send>;
pub type MarkDone = Box<dyn FnOnce(Result<Pos, StoreError>) + Send>;

/// A batch stops growing past this many bytes, so one slow write cannot hold everything up.
const MAX_BATCH_BYTES: usize = 4 << 20;
/// Zeros are written ahead of the log in chunks of this size.
const PREALLOCATE: u64 = 1 << 20;

enum Request {
    Append {
        frame: Vec<u8>,
        /// The chat the record belongs to (its frame's tag).
        tag: u64,
        done: AppendDone,
    },
    /// A chat held after a full disk may append again.
    Resume { tag: u64 },
    /// Completes with the log's end once everything queued before it is durable.
    Mark { done: MarkDone },
}

pub fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{segment:020}.wal"))
}

/// Opens (creating if needed) a segment for positioned writes; also answers its length.
fn open_segment(dir: &Path, segment: u64) -> Result<(File, u64), StoreError> {
    let path = segment_path(dir, segment);
    let created = !path.exists();
    let file = OpenOptions::new().create(true).write(true).truncate(false).open(path);
    let file = file.map_err(io_error)?;
    let len = file.metadata().map_err(io_error)?.len();
    // A new segment's name is durable once its directory is; an existing one's already was.
    if created || len == 0 {
        sync_dir(dir)?;
    }
    Ok((file, len))
}

/// The handle chats append through. Dropping every handle stops the writer after a final fsync.
pub struct Wal {
    tx: Sender<Request>,
    /// Why the log is out of service, once it is (for `/ready`).
    failure: Arc<OnceLock<String>>,
    /// Bytes written to the log since it started.
    written: Arc<AtomicU64>,
}

pub struct WalOptions {
    pub fsync: FsyncMode,
    pub fsync_interval: Duration,
    pub segment_bytes: u64,
}

impl Wal {
    /// Starts the writer, appending at `end` (where recovery found the log to end).
    pub fn start(dir: PathBuf, end: Pos, opts: WalOptions) -> Result<(Wal, JoinHandle<()>), StoreError> {
        let (file, zeroed) = open_segment(&dir, end.segment)?;
        let written = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            written: written.clone(),
            dir,
            file,
            segment: end.segment,
            offset: end.offset,
            zeroed: zeroed.max(end.offset),
            commit: codec::frame(&Record::Commit, NO_CHAT)?,
            opts,
            failed: None,
            unsynced: false,
            last_sync: Instant::now(),
            buf: Vec::new(),
            held: HashSet::new(),
            failure: Arc::new(OnceLock::new()),
        };
        let failure = writer.failure.clone();
        let (tx, rx) = mpsc::channel();
        let thread =
            std::thread::Builder::new().name("chatd-wal".into()).spawn(move || writer.run(rx)).map_err(io_error)?;
        Ok((Wal { tx, failure, written }, thread))
    }

    /// Queues a framed record of chat `tag`; `done` runs once it is durable under the fsync mode.
    pub fn append(&self, frame: Vec<u8>, tag: u64, done: AppendDone) {
        if let Err(mpsc::SendError(Request::Append { done, .. })) = self.tx.send(Request::Append { frame, tag, done }) {
            done(Err(StoreError::Failed("the log writer has stopped".into())));
        }
    }

    /// Chat `tag`, held after a full disk, has given up what it had in flight: its appends
    /// from here on are written again.
    pub fn resume(&self, tag: u64) {
        let _ = self.tx.send(Request::Resume { tag });
    }

    /// Why the log takes no more writes, once a write or an fsync failed.
    pub fn failure(&self) -> Option<&str> {
        self.failure.get().map(String::as_str)
    }

    /// Bytes written to the log since it started.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// `done` gets the log's end position once everything appended before is durable.
    pub fn mark(&self, done: MarkDone) {
        if let Err(mpsc::SendError(Request::Mark { done })) = self.tx.send(Request::Mark { done }) {
            done(Err(StoreError::Failed("the log writer has stopped".into())));
        }
    }
}

struct Writer {
    written: Arc<AtomicU64>,
    dir: PathBuf,
    file: File,
    segment: u64,
    /// Where the next record goes.
    offset: u64,
    /// The segment file's length: zeros written ahead of `offset` (see `make_room`).
    zeroed: u64,
    opts: WalOptions,
    /// The framed commit record that ends every batch.
    commit: Vec<u8>,
    /// Set by the first failed write or fsync; every later request fails with it.
    failed: Option<StoreError>,
    unsynced: bool,
    last_sync: Instant,
    buf: Vec<u8>,
    /// Chats held after a batch of theirs failed for a full disk (see the module comment).
    held: HashSet<u64>,
    /// `failed`, shown to [`Wal::failure`].
    failure: Arc<OnceLock<String>>,
}

impl Writer {
    fn run(mut self, rx: Receiver<Request>) {
        loop {
            if let Some(err) = &self.failed {
                let _ = self.failure.set(err.to_string());
            }
            let first = if self.unsynced && self.opts.fsync == FsyncMode::Interval {
                let wait = self.opts.fsync_interval.saturating_sub(self.last_sync.elapsed());
                match rx.recv_timeout(wait) {
                    Ok(req) => req,
                    Err(RecvTimeoutError::Timeout) => {
                        self.sync();
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match rx.recv() {
                    Ok(req) => req,
                    Err(_) => break,
                }
            };
            let mut batch = vec![first];
            let mut bytes = 0;
            while bytes < MAX_BATCH_BYTES {
                match rx.try_recv() {
                    Ok(req) => {
                        if let Request::Append { frame, .. } = &req {
                            bytes += frame.len();
                        }
                        batch.push(req);
                    }
                    Err(_) => break,
                }
            }
            self.commit(batch);
        }
        // Every handle is gone: make what was written durable before the thread ends.
        if self.unsynced {
            self.sync();
        }
    }

    fn commit(&mut self, batch: Vec<Request>) {
        if let Some(err) = &self.failed {
            return fail_all(batch, err);
        }
        let batch = self.release_or_refuse_held(batch);
        self.buf.clear();
        let mut needs_sync = self.opts.fsync == FsyncMode::Always;
        for req in &batch {
            match req {
                Request::Append { frame, .. } => self.buf.extend_from_slice(frame),
                Request::Mark { .. } => needs_sync = true,
                Request::Resume { .. } => {}
            }
        }
        // The commit record ends the batch: recovery keeps a batch only if its commit is there.
        let committed = !self.buf.is_empty();
        if committed {
            self.buf.extend_from_slice(&self.commit);
        }
        if let Err(e) = self.make_room().and_then(|()| self.file.write_all_at(&self.buf, self.offset)) {
            return match io_error(e) {
                StoreError::DiskFull => self.disk_full(batch),
                err => self.fail(batch, err),
            };
        }
        self.unsynced |= !self.buf.is_empty();
        crate::telemetry::measure::log_batch(batch.iter().filter(|r| matches!(r, Request::Append { .. })).count());
        self.written.fetch_add(self.buf.len() as u64, Ordering::Relaxed);
        let interval_due =
            self.opts.fsync == FsyncMode::Interval && self.last_sync.elapsed() >= self.opts.fsync_interval;
        if self.unsynced && (needs_sync || interval_due) {
            self.sync();
            if let Some(err) = self.failed.clone() {
                return fail_all(batch, &err);
            }
        }
        for req in batch {
            match req {
                Request::Append { frame, done, .. } => {
                    let loc = Loc { pos: Pos { segment: self.segment, offset: self.offset }, len: frame.len() as u32 };
                    self.offset += frame.len() as u64;
                    done(Ok(loc));
                }
                Request::Mark { done } => done(Ok(Pos { segment: self.segment, offset: self.offset })),
                Request::Resume { .. } => {}
            }
        }
        if committed {
            self.offset += self.commit.len() as u64;
        }
        if self.offset >= self.opts.segment_bytes {
            self.rotate();
        }
    }

    /// Writes zeros ahead of the log a chunk at a time, so that most fsyncs only flush data:
    /// an fsync that must also record a new file size costs a journal commit too. Recovery reads
    /// an all-zero tail as the end of the log.
    fn make_room(&mut self) -> std::io::Result<()> {
        let needed = self.offset + self.buf.len() as u64;
        if needed <= self.zeroed {
            return Ok(());
        }
        let target = needed.div_ceil(PREALLOCATE) * PREALLOCATE;
        self.file.write_all_at(&vec![0; (target - self.zeroed) as usize], self.zeroed)?;
        self.zeroed = target;
        Ok(())
    }

    fn sync(&mut self) {
        if self.failed.is_some() {
            return;
        }
        let started = Instant::now();
        match self.file.sync_data() {
            Ok(()) => {
                crate::telemetry::measure::fsync(started.elapsed());
                self.unsynced = false;
                self.last_sync = Instant::now();
            }
            Err(e) => {
                let err = io_error(e);
                tracing::error!(error = %err, "fsync of the log failed; refusing all further writes");
                self.failed = Some(err);
            }
        }
    }

    /// Answers the appends of held chats with `DiskFull` (in queue order, so a chat's appends
    /// before its `Resume` are refused and those after it are written) and keeps the rest.
    fn release_or_refuse_held(&mut self, batch: Vec<Request>) -> Vec<Request> {
        if self.held.is_empty() && !batch.iter().any(|r| matches!(r, Request::Resume { .. })) {
            return batch;
        }
        let mut kept = Vec::with_capacity(batch.len());
        for req in batch {
            match req {
                Request::Resume { tag } => drop(self.held.remove(&tag)),
                Request::Append { tag, done, .. } if self.held.contains(&tag) => done(Err(StoreError::DiskFull)),
                other => kept.push(other),
            }
        }
        kept
    }

    /// The disk is full: nothing of this batch was acknowledged and the log's end stays where
    /// it was, so the log serves on; the chats in the batch are held until they resume.
    fn disk_full(&mut self, batch: Vec<Request>) {
        tracing::warn!(records = batch.len(), "the disk is full; a batch of the log was refused");
        for req in &batch {
            if let Request::Append { tag, .. } = req {
                if *tag != NO_CHAT {
                    self.held.insert(*tag);
                }
            }
        }
        fail_all(batch, &StoreError::DiskFull);
    }

    fn fail(&mut self, batch: Vec<Request>, err: StoreError) {
        tracing::error!(error = %err, "write to the log failed; refusing all further writes");
        self.failed = Some(err.clone());
        fail_all(batch, &err);
    }

    /// Closes the full segment (durably, cut to its data: the zeros laid ahead of it would
    /// otherwise stay on disk as long as it does) and starts the next one.
    fn rotate(&mut self) {
        if let Err(e) = self.file.set_len(self.offset) {
            tracing::warn!(error = %e, segment = self.segment, "could not cut a full log segment to its data");
        }
        self.sync();
        if self.failed.is_some() {
            return;
        }
        let next = self.segment + 1;
        match open_segment(&self.dir, next) {
            Ok((file, zeroed)) => {
                self.file = file;
                self.segment = next;
                self.offset = 0;
                self.zeroed = zeroed;
            }
            Err(err) => {
                tracing::error!(error = %err, "could not start a new log segment; refusing all further writes");
                self.failed = Some(err);
            }
        }
    }
}

fn fail_all(batch: Vec<Request>, err: &StoreError) {
    for req in batch {
        match req {
            Request::Append { done, .. } => done(Err(err.clone())),
            Request::Mark { done } => done(Err(err.clone())),
            Request::Resume { .. } => {}
        }
    }
}

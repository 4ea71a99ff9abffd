//! The shared write-ahead log: one writer thread, group commit, segment files.
//!
//! Every chat appends to this one log, so one fsync makes a whole batch durable whatever the
//! number of chats. Appends queue on a channel; the writer takes everything queued, writes it with
//! one `write`, fsyncs once (under `fsync = "always"`), then completes the batch in order. It never
//! waits to fill a batch: whatever arrives during one fsync forms the next one.
//!
//! A failed write or fsync is fatal for the log: the page cache may have dropped the data, so
//! retrying would pretend it is safe (PostgreSQL's "fsyncgate"). Every later append fails too,
//! and recovery on restart decides what is really on disk.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::record::{Loc, Pos};
use super::{io_error, sync_dir, StoreError};
use crate::config::FsyncMode;

/// Called on the writer thread once an append is durable (or has failed); must be quick.
pub type AppendDone = Box<dyn FnOnce(Result<Loc, StoreError>) + Send>;
pub type MarkDone = Box<dyn FnOnce(Result<Pos, StoreError>) + Send>;

/// A batch stops growing past this many bytes, so one slow write cannot hold everything up.
const MAX_BATCH_BYTES: usize = 4 << 20;

enum Request {
    Append {
        frame: Vec<u8>,
        done: AppendDone,
    },
    /// Completes with the log's end once everything queued before it is durable.
    Mark {
        done: MarkDone,
    },
}

pub fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{segment:020}.wal"))
}

/// The handle chats append through. Dropping every handle stops the writer after a final fsync.
pub struct Wal {
    tx: Sender<Request>,
}

pub struct WalOptions {
    pub fsync: FsyncMode,
    pub fsync_interval: Duration,
    pub segment_bytes: u64,
}

impl Wal {
    /// Starts the writer, appending at `end` (where recovery found the log to end).
    pub fn start(dir: PathBuf, end: Pos, opts: WalOptions) -> Result<(Wal, JoinHandle<()>), StoreError> {
        let path = segment_path(&dir, end.segment);
        let file = OpenOptions::new().create(true).append(true).open(&path).map_err(io_error)?;
        sync_dir(&dir)?;
        let writer = Writer {
            dir,
            file,
            segment: end.segment,
            offset: end.offset,
            opts,
            failed: None,
            unsynced: false,
            last_sync: Instant::now(),
            buf: Vec::new(),
        };
        let (tx, rx) = mpsc::channel();
        let thread =
            std::thread::Builder::new().name("chatd-wal".into()).spawn(move || writer.run(rx)).map_err(io_error)?;
        Ok((Wal { tx }, thread))
    }

    /// Queues a framed record; `done` runs once it is durable under the fsync mode.
    pub fn append(&self, frame: Vec<u8>, done: AppendDone) {
        if let Err(mpsc::SendError(Request::Append { done, .. })) = self.tx.send(Request::Append { frame, done }) {
            done(Err(StoreError::Failed("the log writer has stopped".into())));
        }
    }

    /// `done` gets the log's end position once everything appended before is durable.
    pub fn mark(&self, done: MarkDone) {
        if let Err(mpsc::SendError(Request::Mark { done })) = self.tx.send(Request::Mark { done }) {
            done(Err(StoreError::Failed("the log writer has stopped".into())));
        }
    }
}

struct Writer {
    dir: PathBuf,
    file: File,
    segment: u64,
    offset: u64,
    opts: WalOptions,
    /// Set by the first failed write or fsync; every later request fails with it.
    failed: Option<StoreError>,
    unsynced: bool,
    last_sync: Instant,
    buf: Vec<u8>,
}

impl Writer {
    fn run(mut self, rx: Receiver<Request>) {
        loop {
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
        self.buf.clear();
        let mut needs_sync = self.opts.fsync == FsyncMode::Always;
        for req in &batch {
            match req {
                Request::Append { frame, .. } => self.buf.extend_from_slice(frame),
                Request::Mark { .. } => needs_sync = true,
            }
        }
        if let Err(e) = self.file.write_all(&self.buf) {
            return self.fail(batch, io_error(e));
        }
        self.unsynced |= !self.buf.is_empty();
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
                Request::Append { frame, done } => {
                    let loc = Loc { pos: Pos { segment: self.segment, offset: self.offset }, len: frame.len() as u32 };
                    self.offset += frame.len() as u64;
                    done(Ok(loc));
                }
                Request::Mark { done } => done(Ok(Pos { segment: self.segment, offset: self.offset })),
            }
        }
        if self.offset >= self.opts.segment_bytes {
            self.rotate();
        }
    }

    fn sync(&mut self) {
        if self.failed.is_some() {
            return;
        }
        match self.file.sync_data() {
            Ok(()) => {
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

    fn fail(&mut self, batch: Vec<Request>, err: StoreError) {
        tracing::error!(error = %err, "write to the log failed; refusing all further writes");
        self.failed = Some(err.clone());
        fail_all(batch, &err);
    }

    /// Closes the full segment (durably) and starts the next one.
    fn rotate(&mut self) {
        self.sync();
        if self.failed.is_some() {
            return;
        }
        let next = self.segment + 1;
        let opened = OpenOptions::new()
            .create(true)
            .append(true)
            .open(segment_path(&self.dir, next))
            .map_err(io_error)
            .and_then(|file| sync_dir(&self.dir).map(|()| file));
        match opened {
            Ok(file) => {
                self.file = file;
                self.segment = next;
                self.offset = 0;
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
        }
    }
}

//! Where the store's files lie under the data dir ([`Layout`]), and the few ways they are
//! touched in place: reading one message back, overwriting deleted records with fillers of the
//! same length, and making files and directories durable.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::codec::{self, Frame};
use super::record::{ChatNo, Loc, Record, NO_CHAT};
use super::{snapshot, wal, StoreError};
use crate::model::Message;

/// The message of `chat` at `loc` in its segment `file`, or `None` if it was erased. Blocking.
pub(super) fn read_message_in(file: &File, chat: ChatNo, loc: Loc) -> Result<Option<Message>, StoreError> {
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
pub(super) fn erase_in_place(layout: &Layout, locs: &[Loc]) -> Result<(), StoreError> {
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
        let frame = codec::frame(&Record::Erased(vec![0; fill]), NO_CHAT)?;
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
pub(super) fn create_dir_durably(dir: &Path) -> Result<(), StoreError> {
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
    pub(super) fn new(data_dir: &Path) -> Layout {
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

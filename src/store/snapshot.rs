//! Snapshot files (the catalog, each chat's metadata): one checksummed frame each, replaced
//! atomically. Each chat's message index is appended to a file of its own instead (`index.rs`).
//!
//! A snapshot is written to a temporary file, fsynced, renamed over the old one, and the directory
//! is fsynced, so a crash leaves either the old snapshot or the new one, never a mix. Snapshots
//! hold indexes, not messages: the log stays the one copy of every message, and a damaged
//! snapshot is rebuilt from it.

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::codec::{self, Frame};
use super::record::ChatNo;
use super::{io_error, sync_dir, StoreError};

/// A chat's whole snapshot as versions before the append-only index wrote it (read only).
pub fn chat_path(dir: &Path, chat: ChatNo) -> PathBuf {
    dir.join(format!("chat-{chat:016x}.snap"))
}

/// A chat's metadata snapshot.
pub fn head_path(dir: &Path, chat: ChatNo) -> PathBuf {
    dir.join(format!("chat-{chat:016x}.meta"))
}

/// A chat's append-only index file (see `index.rs`).
pub fn index_path(dir: &Path, chat: ChatNo) -> PathBuf {
    dir.join(format!("chat-{chat:016x}.idx"))
}

pub fn catalog_path(dir: &Path) -> PathBuf {
    dir.join("catalog.snap")
}

/// Writes `value` to `path` so that a crash at any moment leaves a whole snapshot there.
pub fn write<T: Serialize>(path: &Path, value: &T) -> Result<(), StoreError> {
    let bytes = codec::frame(value, 0)?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("snap");
    let tmp = path.with_extension(format!("{ext}.tmp"));
    let mut file = File::create(&tmp).map_err(io_error)?;
    file.write_all(&bytes).map_err(io_error)?;
    file.sync_all().map_err(io_error)?;
    drop(file);
    fs::rename(&tmp, path).map_err(io_error)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Reads a snapshot: `Ok(None)` if there is none, an error if it fails its checksum.
pub fn read<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, StoreError> {
    read_with(path, codec::decode)
}

/// Reads a snapshot whose payload `decode` decodes (one with more than one layout on disk).
pub fn read_with<T>(path: &Path, decode: impl FnOnce(&[u8]) -> Result<T, StoreError>) -> Result<Option<T>, StoreError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(e)),
    };
    match codec::read_frame(&bytes) {
        Frame::Valid { payload, len, .. } if len == bytes.len() => decode(payload).map(Some),
        _ => Err(StoreError::Corrupt(format!("snapshot {} fails its checksum", path.display()))),
    }
}

pub fn remove(path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(io_error(e)),
        _ => Ok(()),
    }
}

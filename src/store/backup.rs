//! A consistent copy of a running store, as a tar stream, while sends go on.
//!
//! ```text
//! snap/...                      every chat's files and the catalog, as of one moment
//! wal/00000000000000000001.wal  each log segment up to the end taken first (the last one cut there)
//! chatd-backup.json             last: the end position and the count of files (a copy without it
//!                               is incomplete)
//! ```
//! Under the maintenance turn (no checkpoint, no compaction, no erasure meanwhile: see
//! `maintenance.rs`): freeze the chats' file writes, take the log's durable end, copy `snap/`,
//! unfreeze, copy the log up to that end. Every message acknowledged before the backup began is
//! durable by that end, so it is in the copy: the chats' files refer to nothing past the end,
//! and recovering the copy replays the log after its catalog, as after any stop. The copy is the
//! data dir itself: restore it by putting it in place of one.
//!
//! It is written file by file, straight to `out` (which buffers as its sink needs): memory
//! stays the same whatever the size.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::maintenance::{SnapFrozen, Turn};
use super::record::Pos;
use super::{chats, erase_in_place, io_error, lock, scan, Layout, Store, StoreError};

/// The name of the last entry of a backup.
pub const MANIFEST: &str = "chatd-backup.json";

/// What a backup holds.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// Where the copied log ends.
    pub end: Pos,
    /// Regular files before the manifest.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// How long a backup waits for a checkpoint under way (or another backup) to finish.
pub const TURN_WAIT: Duration = Duration::from_secs(30);

impl Store {
    /// Writes a backup to `out` (see the module comment), holding `turn` throughout. Queued
    /// erasures run when it ends, whether it succeeded or not.
    pub async fn backup<W: Write + Send + 'static>(
        self: &Arc<Self>,
        turn: Turn,
        out: W,
    ) -> Result<Manifest, StoreError> {
        let store = self.clone();
        blocking(move || {
            // Waits for an erasure under way: none may tear a record the copy reads.
            lock(&store.maintenance.deletions).backup = true;
            Ok(())
        })
        .await?;
        let res = self.copy(out).await;
        let store = self.clone();
        let ended = blocking(move || store.end_backup()).await;
        drop(turn);
        if let Err(err) = &ended {
            tracing::error!(error = %err, "could not erase the chats deleted during a backup; a restart will finish it");
        }
        res
    }

    async fn copy<W: Write + Send + 'static>(self: &Arc<Self>, out: W) -> Result<Manifest, StoreError> {
        let frozen = self.maintenance.freeze_snap().await;
        let end = self.mark().await?;
        let store = self.clone();
        blocking(move || write(&store.layout, end, frozen, out)).await
    }

    /// Lets erasures run again, and runs those queued meanwhile.
    fn end_backup(&self) -> Result<(), StoreError> {
        let mut deletions = lock(&self.maintenance.deletions);
        deletions.backup = false;
        let queued = std::mem::take(&mut deletions.queued);
        for (chat, locs) in queued {
            erase_in_place(&self.layout, &locs)?;
            chats::remove(&self.layout, chat)?;
        }
        Ok(())
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(res) => res,
        Err(e) => Err(StoreError::Io(format!("backup task failed: {e}"))),
    }
}

/// The tar stream itself. Blocking.
fn write(layout: &Layout, end: Pos, frozen: SnapFrozen, out: impl Write) -> Result<Manifest, StoreError> {
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Deterministic);
    let mut manifest = Manifest { end, files: 0, bytes: 0 };
    for dir in ["snap", "wal"] {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_size(0);
        tar.append_data(&mut header, format!("{dir}/"), io::empty()).map_err(io_error)?;
    }
    let mut names: Vec<String> = std::fs::read_dir(&layout.snap)
        .map_err(io_error)?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        // A temporary file is a snapshot being written (before the freeze) or a crash's leftover.
        .filter(|name| !name.ends_with(".tmp"))
        .collect();
    names.sort_unstable();
    for name in names {
        let Some(len) = file_len(&layout.snap.join(&name))? else { continue };
        append(&mut tar, &layout.snap.join(&name), &format!("snap/{name}"), len, &mut manifest)?;
    }
    drop(frozen);
    for segment in scan::list_segments(&layout.wal)?.into_iter().filter(|&s| s <= end.segment) {
        let path = super::wal::segment_path(&layout.wal, segment);
        let Some(len) = file_len(&path)? else { continue };
        // The last segment grows as sends go on: only what is before the end is copied.
        let len = if segment == end.segment { end.offset.min(len) } else { len };
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        append(&mut tar, &path, &format!("wal/{name}"), len, &mut manifest)?;
    }
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| StoreError::Io(e.to_string()))?;
    let mut header = file_header(json.len() as u64);
    tar.append_data(&mut header, MANIFEST, json.as_slice()).map_err(io_error)?;
    let mut out = tar.into_inner().map_err(io_error)?;
    out.flush().map_err(io_error)?;
    Ok(manifest)
}

/// A file's length, `None` if it is gone (a chat removed before the freeze).
fn file_len(path: &Path) -> Result<Option<u64>, StoreError> {
    match std::fs::metadata(path) {
        Ok(meta) => Ok(Some(meta.len())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(e)),
    }
}

fn file_header(len: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_size(len);
    header
}

/// Appends the first `len` bytes of the file at `path` as `name`.
fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &Path,
    name: &str,
    len: u64,
    manifest: &mut Manifest,
) -> Result<(), StoreError> {
    let file = File::open(path).map_err(io_error)?;
    let mut header = file_header(len);
    tar.append_data(&mut header, name, file.take(len)).map_err(io_error)?;
    manifest.files += 1;
    manifest.bytes += len;
    Ok(())
}

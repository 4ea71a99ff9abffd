//! Maintenance: the work that changes what is already on disk, and the backup that must see
//! it hold still.
//!
//! A checkpoint (and the log compaction that runs inside it) rewrites the catalog and the
//! chats' files, and may drop log segments; a backup copies them. They take turns: each holds
//! the one [`Turn`] for as long as it runs. A checkpoint that finds it taken is skipped (its
//! timers ask again); a backup waits, for a bounded time, for a checkpoint to finish.
//!
//! While a backup runs, two more writers are held back, and sends go on as ever:
//! - a chat's own writes to its files (its snapshot as it stops idle, the fold of its recovery
//!   tail when it loads) wait while the backup copies `snap/`, so the copy holds every chat's
//!   files as of one moment, none referring past the log end the backup took just before;
//! - a deleted chat's in-place erasure waits until the backup ends: the delete is answered at
//!   once (its deletion record is durable), and the erasure runs when the backup ends, or in
//!   recovery at the next start if the server stops first (`recovery.rs` finishes erasures).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedMutexGuard, OwnedRwLockWriteGuard, RwLock, RwLockReadGuard};

use super::record::{ChatNo, Loc};
use super::StoreError;

/// Held by the one checkpoint or backup running: see the module comment.
pub struct Turn(#[allow(dead_code)] OwnedMutexGuard<()>);

/// Held by a backup while it copies `snap/`: chats write none of their files meanwhile.
pub struct SnapFrozen(#[allow(dead_code)] OwnedRwLockWriteGuard<()>);

/// Held by a chat while it writes its files.
pub struct SnapWrite<'a>(#[allow(dead_code)] RwLockReadGuard<'a, ()>);

#[derive(Default)]
pub struct Deletions {
    /// A backup is running: erasures are queued, not done.
    pub backup: bool,
    /// Deleted chats and their message records, to erase once the backup ends.
    pub queued: Vec<(ChatNo, Vec<Loc>)>,
}

#[derive(Default)]
pub struct Maintenance {
    turn: Arc<tokio::sync::Mutex<()>>,
    snap: Arc<RwLock<()>>,
    /// Held while an erasure runs, so a backup begins before it or after it, never during it.
    pub deletions: Mutex<Deletions>,
}

impl Maintenance {
    /// The turn, if nobody holds it.
    pub fn try_turn(&self) -> Option<Turn> {
        self.turn.clone().try_lock_owned().ok().map(Turn)
    }

    /// The turn, once whoever holds it lets go (at most `wait`).
    pub async fn turn(&self, wait: Duration) -> Result<Turn, StoreError> {
        match tokio::time::timeout(wait, self.turn.clone().lock_owned()).await {
            Ok(guard) => Ok(Turn(guard)),
            Err(_) => Err(StoreError::Busy(format!(
                "a checkpoint or another backup has run for over {} s; try again shortly",
                wait.as_secs()
            ))),
        }
    }

    /// Stops chats writing their files until the answer is dropped (waits for those under way).
    pub async fn freeze_snap(&self) -> SnapFrozen {
        SnapFrozen(self.snap.clone().write_owned().await)
    }

    /// Leave for a chat to write its files, waiting while a backup copies them. Blocking: for
    /// the blocking pool (or a thread outside any runtime).
    pub fn snap_write(&self) -> SnapWrite<'_> {
        SnapWrite(self.snap.blocking_read())
    }
}

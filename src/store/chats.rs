//! A chat's files: its metadata snapshot and its append-only index (`index.rs`).
//!
//! ```text
//! snap/chat-000000000000002a.meta   ChatHead: the chat's metadata and index length, replaced
//!                                   atomically at each snapshot
//! snap/chat-000000000000002a.idx    IndexChunk frames: where each message lies in the log
//! snap/chat-000000000000002a.snap   (versions before these) the whole chat in one snapshot
//! ```
//! A chat with no messages whose metadata fits in its catalog entry (a bare chat, see
//! [`CatalogEntry::bare`](super::record::CatalogEntry::bare)) has neither file: it is loaded
//! from the metadata its catalog entry gives, and gets its files with its first message.
//!
//! Loading reads both, folds in the chat's tail from recovery if it has one, and writes what
//! that added (an index append, a new metadata snapshot) before the chat serves, so the next
//! checkpoint may move past the tail; a chat still bare after its tail writes nothing. A chat in the old single-snapshot format is converted on
//! its first load. Damage anywhere, or an index the log has moved past (a gap), rebuilds the
//! chat from the whole log, the one copy of every message.

use super::index;
use super::record::{fits_catalog, ChatHead, ChatNo, ChatSnapshot, IndexEntry, IndexMark};
use super::tail::Tail;
use super::{recovery, scan, snapshot, sync_dir, Layout, StoreError};
use crate::model::ChatMeta;

/// A chat as loaded, and how much of its index is in its index file (everything, once loaded).
pub struct Loaded {
    pub snapshot: ChatSnapshot,
    pub mark: IndexMark,
    /// Whether the chat has files of its own; a bare chat has none (its catalog entry is all).
    pub filed: bool,
}

/// What a chat's files hold, without its tail.
enum Stored {
    Current { meta: ChatMeta, entries: Vec<IndexEntry>, mark: IndexMark },
    Old(ChatSnapshot),
    Missing,
}

fn read_stored(layout: &Layout, chat: ChatNo, entries: bool) -> Result<Stored, StoreError> {
    if let Some(head) = snapshot::read::<ChatHead>(&layout.head(chat))? {
        if head.chat != chat {
            return Err(StoreError::Corrupt(format!("the metadata snapshot of chat {chat} names chat {}", head.chat)));
        }
        let read = index::read(&layout.index(chat), chat, !entries)?;
        if read.mark.entries < head.indexed {
            return Err(StoreError::Corrupt(format!(
                "the index of chat {chat} holds {} entries, its metadata snapshot says {}",
                read.mark.entries, head.indexed
            )));
        }
        if read.torn > 0 {
            tracing::warn!(chat, torn = read.torn, "a chat's index ends in a torn append; the next one cuts it off");
        }
        return Ok(Stored::Current { meta: head.meta, entries: read.entries, mark: read.mark });
    }
    match snapshot::read::<ChatSnapshot>(&layout.chat(chat))? {
        Some(old) if old.chat == chat => Ok(Stored::Old(old)),
        Some(_) => Err(StoreError::Corrupt(format!("the snapshot of chat {chat} names another chat"))),
        None => Ok(Stored::Missing),
    }
}

/// Loads a chat with `tail` folded in and made durable in its files. With `entries` false the
/// index is only counted, not decoded (what a checkpoint needs to fold a tail). `bare` is the
/// chat's metadata if its catalog entry holds it: used when the chat has no files. Blocking.
pub fn load(
    layout: &Layout,
    chat: ChatNo,
    tail: Option<&Tail>,
    entries: bool,
    bare: Option<&ChatMeta>,
) -> Result<Loaded, StoreError> {
    let stored = match read_stored(layout, chat, entries) {
        Ok(stored) => stored,
        Err(err) => {
            tracing::error!(chat, error = %err, "chat snapshot unusable; rebuilding the chat from the log");
            return rebuild(layout, chat);
        }
    };
    // `missing`: the chat has no files (made after the checkpoint, its tail has its creation; or bare).
    let (mut meta, mut all, mut mark, missing) = match stored {
        Stored::Current { meta, entries, mark } => (meta, entries, mark, false),
        Stored::Old(old) => {
            let mark = convert(layout, &old)?;
            (old.meta, old.entries, mark, false)
        }
        Stored::Missing => match tail.and_then(|t| t.created.clone()).or_else(|| bare.cloned()) {
            Some(meta) => (meta, Vec::new(), IndexMark::default(), true),
            None => {
                tracing::error!(chat, "chat snapshot missing; rebuilding the chat from the log");
                return rebuild(layout, chat);
            }
        },
    };
    let (mut added, mut edited) = (Vec::new(), false);
    if let Some(tail) = tail {
        let Some(folded) = tail.fold(&mut meta, mark.entries) else {
            tracing::warn!(chat, len = mark.entries, "chat index is behind the log; rebuilding the chat from the log");
            return rebuild(layout, chat);
        };
        (added, edited) = (folded, !tail.edits.is_empty());
    }
    if missing && added.is_empty() && fits_catalog(&meta) {
        // Still bare: its catalog entry (members included, from the same log) holds it all.
        return Ok(Loaded { snapshot: ChatSnapshot { chat, meta, entries: all }, mark, filed: false });
    }
    mark = index::append(&layout.index(chat), chat, mark, &added)?;
    all.extend(added);
    // The head's count may lag its index (never lead it): it is rewritten only for edits.
    let head_changed = missing || edited;
    if head_changed {
        snapshot::write(&layout.head(chat), &ChatHead { chat, meta: meta.clone(), indexed: mark.entries })?;
    }
    Ok(Loaded { snapshot: ChatSnapshot { chat, meta, entries: all }, mark, filed: true })
}

/// Writes an old-format snapshot as an index file and a metadata snapshot, then removes it. A
/// crash before the metadata snapshot is written leaves the old snapshot in charge.
fn convert(layout: &Layout, old: &ChatSnapshot) -> Result<IndexMark, StoreError> {
    let mark = index::replace(&layout.index(old.chat), old.chat, &old.entries)?;
    let head = ChatHead { chat: old.chat, meta: old.meta.clone(), indexed: mark.entries };
    snapshot::write(&layout.head(old.chat), &head)?;
    snapshot::remove(&layout.chat(old.chat))?;
    sync_dir(&layout.snap)?;
    tracing::info!(chat = old.chat, entries = old.entries.len(), "converted a chat snapshot to the append-only index");
    Ok(mark)
}

/// The slow path: the chat from every record of the log, written out afresh.
fn rebuild(layout: &Layout, chat: ChatNo) -> Result<Loaded, StoreError> {
    let segments = scan::list_segments(&layout.wal)?;
    let rebuilt = recovery::rebuild_chat(layout, &segments, chat)?;
    let mark = index::replace(&layout.index(chat), chat, &rebuilt.entries)?;
    snapshot::write(&layout.head(chat), &ChatHead { chat, meta: rebuilt.meta.clone(), indexed: mark.entries })?;
    snapshot::remove(&layout.chat(chat))?;
    Ok(Loaded { snapshot: rebuilt, mark, filed: true })
}

/// Every index entry a chat's files hold, in either format (recovery's checks). Blocking.
pub fn stored_entries(layout: &Layout, chat: ChatNo) -> Result<Vec<IndexEntry>, StoreError> {
    Ok(match read_stored(layout, chat, true)? {
        Stored::Current { entries, .. } => entries,
        Stored::Old(old) => old.entries,
        Stored::Missing => Vec::new(),
    })
}

/// Appends `entries` to a chat's index at `mark`, then replaces its metadata snapshot. Blocking.
pub fn save(
    layout: &Layout,
    chat: ChatNo,
    meta: &ChatMeta,
    entries: &[IndexEntry],
    mark: IndexMark,
) -> Result<IndexMark, StoreError> {
    let mark = index::append(&layout.index(chat), chat, mark, entries)?;
    snapshot::write(&layout.head(chat), &ChatHead { chat, meta: meta.clone(), indexed: mark.entries })?;
    Ok(mark)
}

/// Removes every file of a chat. Blocking.
pub fn remove(layout: &Layout, chat: ChatNo) -> Result<(), StoreError> {
    snapshot::remove(&layout.head(chat))?;
    snapshot::remove(&layout.index(chat))?;
    snapshot::remove(&layout.chat(chat))?;
    sync_dir(&layout.snap)
}

//! Log compaction's storage steps: which old segments are worth it, which of their records are
//! still live, moving a chat's index onto copies, and removing segments for good.
//!
//! A record is live when a chat's index points at it: messages live in the log only and the
//! index (`index.rs`) is what recovery trusts for everything before the catalog's position.
//! Everything else before that position is dead: erased records of deleted chats, copies an
//! index never moved onto, and every creation, membership and metadata record (the `.meta`
//! snapshot supersedes them once a checkpoint covers them). So only segments wholly before the
//! catalog's position are candidates, and a segment holding a record of a chat held out of
//! service, or of a chat whose index cannot be read, is left alone.
//!
//! The log must still rebuild a chat whose files are damaged (storage rule 5), so before a
//! segment holding a chat's creation or changes goes, the chat's metadata as its `.meta`
//! snapshot holds it is written forward ([`Record::Recreated`]): that snapshot covers every
//! change logged before the catalog's position, and the rebuild applies those after it. Such
//! a record counts as live while its chat lives (else a segment of them would be removed and
//! written forward again at every checkpoint); recovery reads it only to rebuild a directory
//! from the whole log (a damaged catalog), never after the chat's deletion.
//!
//! Live messages of a mostly-dead segment are copied forward *through the log writer*, as
//! [`Record::Copied`] records: in small batches, so a send waits behind a batch of copies at
//! most, and with the log's own framing, checksums, group commit and crash handling, so no
//! second kind of segment (with its own numbering, recovery and readers) exists. Recovery
//! never replays a copy (it is not a new message; the index decides whether it is the one read),
//! while the slow rebuild of a chat from the log reads copies like messages, the first of a seq
//! counting. What a crash at each step leaves:
//!
//! - copies written, no index moved: the copies are dead (nothing points at them); next time
//!   they are compacted away like any dead record.
//! - some indexes moved: those chats read their copies, the others still read the old segment,
//!   which stays until every chat with a live record in it has moved.
//! - a chat deleted while its messages were being copied: its copies are erased in place
//!   like its other records once its actor says it is gone.
//! - the segment listed as removed (`snap/compacted.snap`) but not yet unlinked: it is simply
//!   removed again. The list tells recovery that a missing segment was compacted, not lost.
//!
//! A segment is removed only after the catalog that no longer needs it is durable (the caller
//! runs compaction after each checkpoint's catalog, storage rule 5), and its open file stays
//! in the store's reader cache for a grace period, so a page read holding an old position
//! still reads it ([`super::Store::retire`]).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::record::{ChatHead, ChatNo, ChatSnapshot, IndexEntry, IndexMark, Loc, Pos, RecordView};
use super::scan::{scan, Chats, Repair};
use super::wal::segment_path;
use super::{chats, index, io_error, lock, scan as scan_log, snapshot, sync_dir, wal, Layout, StoreError};
use crate::model::{ChatMeta, Message};

/// What one sealed segment holds, by chat: the bytes of its message records (copies too) and
/// of the metadata compaction wrote forward.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The segment file's length.
    pub len: u64,
    /// Message bytes by chat, sorted by chat.
    pub by_chat: Vec<(ChatNo, u64)>,
    /// A damaged record was found: the segment is never touched.
    pub damaged: bool,
}

impl Summary {
    /// The bytes of message records whose chats are in `chats`: an upper bound of what is live.
    pub fn bytes_of(&self, chats: &HashSet<ChatNo>) -> u64 {
        self.by_chat.iter().filter(|(chat, _)| chats.contains(chat)).map(|(_, bytes)| bytes).sum()
    }

    /// Worth compacting: live bytes under two thirds of the file. So a segment that stays wastes
    /// at most a third of itself: the log is at most 1.5x its live records.
    pub fn worth_it(&self, live: u64) -> bool {
        !self.damaged && live.saturating_mul(3) < self.len.saturating_mul(2)
    }
}

/// Reads one sealed segment and sums its message bytes by chat. Blocking.
pub fn summarize(layout: &Layout, segment: u64) -> Result<Summary, StoreError> {
    let len = std::fs::metadata(segment_path(&layout.wal, segment)).map_err(io_error)?.len();
    let mut by_chat: HashMap<ChatNo, u64> = HashMap::new();
    let from = Pos { segment, offset: 0 };
    let scanned = scan(layout, &[segment], from, Repair::ReadOnly, Chats::All, |loc, record| {
        // A chat's metadata written forward counts as live too: were it dead, a segment of
        // them would be removed and each written forward again, at every checkpoint.
        if let RecordView::Message { chat, .. } | RecordView::Copied { chat, .. } | RecordView::Recreated { chat, .. } =
            record
        {
            *by_chat.entry(chat).or_default() += u64::from(loc.len);
        }
    })?;
    let mut by_chat: Vec<(ChatNo, u64)> = by_chat.into_iter().collect();
    by_chat.sort_unstable();
    Ok(Summary { len, by_chat, damaged: !scanned.damaged.is_empty() })
}

/// One live message to copy forward: where it lies now, and what it is.
#[derive(Debug, Clone)]
pub struct Live {
    pub chat: ChatNo,
    pub loc: Loc,
    pub msg: Message,
}

/// Each chat's indexed positions, read once per compaction run.
pub struct Indexes {
    locs: HashMap<ChatNo, Option<Vec<Pos>>>,
    /// The directory's chats: one of them with no files yet (not snapshotted since its
    /// creation) is not a deleted chat, and nothing of it may go.
    directory: Arc<HashSet<ChatNo>>,
}

impl Indexes {
    pub fn new(directory: Arc<HashSet<ChatNo>>) -> Indexes {
        Indexes { locs: HashMap::new(), directory }
    }

    /// Whether message `seq` of `chat` at `loc` is the one its index points at; `None` when the
    /// chat's index cannot be read, or the directory has the chat and it has no files (then
    /// nothing of its records may go).
    fn points_at(&mut self, layout: &Layout, chat: ChatNo, seq: u64, loc: Loc) -> Option<bool> {
        let directory = &self.directory;
        let locs = self.locs.entry(chat).or_insert_with(|| {
            if directory.contains(&chat) && !has_files(layout, chat) {
                tracing::info!(chat, "compaction: a chat has no files yet; its segments stay");
                return None;
            }
            match chats::stored_entries(layout, chat) {
                Ok(entries) => Some(entries.iter().map(|e| e.loc.pos).collect()),
                Err(err) => {
                    tracing::warn!(chat, error = %err, "compaction: a chat's index is unreadable; its segments stay");
                    None
                }
            }
        });
        locs.as_ref().map(|locs| locs.get((seq as usize).wrapping_sub(1)) == Some(&loc.pos))
    }
}

/// Whether a chat has a metadata snapshot (or one in the old format).
fn has_files(layout: &Layout, chat: ChatNo) -> bool {
    layout.head(chat).exists() || layout.chat(chat).exists()
}

/// What of a segment must outlive it.
#[derive(Debug, Clone, Default)]
pub struct Found {
    /// The messages chats' indexes point at: copied forward.
    pub live: Vec<Live>,
    /// The chats whose creation or changes it holds: their metadata is written forward
    /// ([`Record::Recreated`]) so the log alone still rebuilds them.
    pub meta_chats: Vec<ChatNo>,
}

/// What of `segment` must outlive it, or `None` if it must stay as it is (a record of a chat
/// in `held`, or of one whose index cannot be read). Blocking.
pub fn live_records(
    layout: &Layout,
    segment: u64,
    held: &HashSet<ChatNo>,
    indexes: &mut Indexes,
) -> Result<Option<Found>, StoreError> {
    let mut messages: Vec<(ChatNo, u64, Loc)> = Vec::new();
    let mut meta_chats: HashSet<ChatNo> = HashSet::new();
    let mut untouchable = false;
    let from = Pos { segment, offset: 0 };
    let scanned = scan(layout, &[segment], from, Repair::ReadOnly, Chats::All, |loc, record| match record {
        RecordView::Message { chat, msg } | RecordView::Copied { chat, msg } => {
            untouchable |= held.contains(&chat);
            messages.push((chat, msg.seq, loc));
        }
        RecordView::ChatCreated { chat, .. }
        | RecordView::Member { chat, .. }
        | RecordView::ChatUpdated { chat, .. }
        | RecordView::Recreated { chat, .. } => {
            untouchable |= held.contains(&chat);
            meta_chats.insert(chat);
        }
        RecordView::ChatDeleted { .. } | RecordView::Erased(_) | RecordView::Commit => {}
    })?;
    if untouchable || !scanned.damaged.is_empty() {
        return Ok(None);
    }
    let file = File::open(segment_path(&layout.wal, segment)).map_err(io_error)?;
    let mut live = Vec::new();
    for (chat, seq, loc) in messages {
        match indexes.points_at(layout, chat, seq, loc) {
            None => return Ok(None),
            Some(false) => {}
            // Nothing to copy if erased since: its chat was just deleted.
            Some(true) => {
                if let Some(msg) = super::read_message_in(&file, chat, loc)? {
                    live.push(Live { chat, loc, msg });
                }
            }
        }
    }
    let mut meta_chats: Vec<ChatNo> = meta_chats.into_iter().collect();
    meta_chats.sort_unstable();
    Ok(Some(Found { live, meta_chats }))
}

/// A chat's metadata as its files hold it, or `None` if it has none (it was deleted). Blocking.
pub fn stored_meta(layout: &Layout, chat: ChatNo) -> Result<Option<ChatMeta>, StoreError> {
    if let Some(head) = snapshot::read::<ChatHead>(&layout.head(chat))? {
        return Ok(Some(head.meta));
    }
    Ok(snapshot::read::<ChatSnapshot>(&layout.chat(chat))?.map(|old| old.meta))
}

/// One message's move: seq, its old place, its copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    pub seq: u64,
    pub from: Loc,
    pub to: Loc,
}

/// Rewrites a chat's index with `moves` applied (where it still points at their old place),
/// atomically (`index::replace`: temp file, fsync, rename, directory fsync). `mark` is what the
/// chat's owner knows of its index file; a file that differs is left alone. Answers the new mark
/// and the moves applied. Blocking; only the chat's owner calls it.
pub fn relocate_index(
    layout: &Layout,
    chat: ChatNo,
    mark: IndexMark,
    moves: &[Move],
) -> Result<(IndexMark, Vec<Move>), StoreError> {
    let path = layout.index(chat);
    let read = index::read(&path, chat, false)?;
    if read.mark != mark {
        return Err(StoreError::Corrupt(format!("the index of chat {chat} is not what its chat last wrote")));
    }
    let mut entries: Vec<IndexEntry> = read.entries;
    let mut applied = Vec::new();
    for m in moves {
        if let Some(entry) = entries.get_mut((m.seq as usize).wrapping_sub(1)) {
            if entry.loc == m.from {
                entry.loc = m.to;
                applied.push(*m);
            }
        }
    }
    if applied.is_empty() {
        return Ok((mark, applied));
    }
    let mark = index::replace(&path, chat, &entries)?;
    Ok((mark, applied))
}

/// Where the segments compaction removed are listed.
fn removed_path(layout: &Layout) -> std::path::PathBuf {
    layout.snap.join("compacted.snap")
}

/// The segments compaction removed, sorted (empty if none, or if the list is damaged: then a
/// missing segment is looked into as possible loss, the safe side).
pub fn removed(layout: &Layout) -> Vec<u64> {
    match snapshot::read::<Vec<u64>>(&removed_path(layout)) {
        Ok(found) => found.unwrap_or_default(),
        Err(err) => {
            tracing::warn!(error = %err, "the list of compacted segments is damaged");
            Vec::new()
        }
    }
}

/// Adds `segments` to the list of removed ones, durably, before they go. Blocking.
pub fn note_removed(layout: &Layout, segments: &[u64]) -> Result<(), StoreError> {
    let mut all = removed(layout);
    all.extend_from_slice(segments);
    all.sort_unstable();
    all.dedup();
    snapshot::write(&removed_path(layout), &all)
}

/// Compaction's steps, as the store offers them to the registry (`registry/compaction.rs`).
impl super::Store {
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
        let segments: Vec<u64> =
            scan_log::list_segments(&self.layout.wal)?.into_iter().filter(|&s| s < before).collect();
        let mut plan = Vec::new();
        let mut read = 0;
        for segment in segments {
            let known = lock(&self.summaries).get(&segment).cloned();
            let summary = match known {
                Some(summary) => summary,
                None if read >= read_budget => continue,
                None => {
                    let summary = summarize(&self.layout, segment)?;
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
        indexes: &mut Indexes,
    ) -> Result<Option<Found>, StoreError> {
        live_records(&self.layout, segment, held, indexes)
    }

    /// A chat's metadata as its files hold it (`None`: it has no files). Blocking.
    pub fn stored_meta(&self, chat: ChatNo) -> Result<Option<ChatMeta>, StoreError> {
        stored_meta(&self.layout, chat)
    }

    /// Moves a chat's index onto copies (only its chat actor calls this). Blocking.
    pub fn relocate_index(
        &self,
        chat: ChatNo,
        mark: IndexMark,
        moves: &[Move],
    ) -> Result<(IndexMark, Vec<Move>), StoreError> {
        relocate_index(&self.layout, chat, mark, moves)
    }

    /// Removes segments no index points into: listed as removed (durably), kept open for
    /// readers that still hold a position in them, then unlinked. Answers the bytes freed.
    /// Blocking.
    pub fn retire(&self, segments: &[u64]) -> Result<u64, StoreError> {
        if segments.is_empty() {
            return Ok(0);
        }
        note_removed(&self.layout, segments)?;
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

//! Recovery: from the last catalog checkpoint to a consistent store, before anything is served.
//!
//! 1. Read the catalog (every chat's metadata and the log position its snapshots cover).
//! 2. Scan the log from that position only, so restart time follows what changed since the last
//!    checkpoint, not the total history. A torn record at the very end (a crash mid-write) is cut
//!    off with a warning. A bad record followed by good ones is corruption: it is reported loudly,
//!    skipped over, and every chat it leaves with a gap is held out of service.
//! 3. Fold the scanned messages into each chat's snapshot, then write a fresh catalog at the end
//!    of the log, so a second crash does not repeat the work.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, OpenOptions};
use std::path::Path;

use super::codec::{self, Frame};
use super::record::{Catalog, CatalogEntry, ChatIndex, ChatNo, IndexEntry, Loc, Pos, Record};
use super::wal::segment_path;
use super::{io_error, snapshot, Layout, StoreError};

/// What the server starts from.
pub struct Recovered {
    pub catalog: Catalog,
    /// Where the log ends: the writer appends here.
    pub end: Pos,
    /// Chats whose stored data failed a check; they answer 503 rather than serve wrong data.
    pub unavailable: HashSet<ChatNo>,
}

pub fn recover(layout: &Layout) -> Result<Recovered, StoreError> {
    let mut catalog = match snapshot::read::<Catalog>(&layout.catalog()) {
        Ok(found) => found.unwrap_or_default(),
        Err(err) => {
            tracing::error!(error = %err, "the catalog is damaged; rebuilding it from the whole log");
            Catalog::default()
        }
    };
    let segments = list_segments(&layout.wal)?;
    let from = catalog.pos.unwrap_or(Pos { segment: segments.first().copied().unwrap_or(1), offset: 0 });

    let mut known: HashSet<ChatNo> = catalog.chats.iter().map(|c| c.chat).collect();
    let mut tails: BTreeMap<ChatNo, Vec<(u64, IndexEntry)>> = BTreeMap::new();
    let mut deleted = Vec::new();
    let scanned = scan(layout, &segments, from, Repair::CutTornTail, |loc, record| match record {
        Record::ChatCreated { chat, ns, meta } => {
            catalog.next_chat = catalog.next_chat.max(chat + 1);
            if known.insert(chat) {
                catalog.chats.push(CatalogEntry { chat, ns, meta });
            }
        }
        Record::Message { chat, msg } => {
            tails.entry(chat).or_default().push((msg.seq, IndexEntry { loc, client_id: msg.client_id }));
        }
        Record::ChatUpdated { chat, meta } => {
            if let Some(entry) = catalog.chats.iter_mut().find(|c| c.chat == chat) {
                entry.meta = meta;
            }
        }
        Record::ChatDeleted { chat } => {
            catalog.chats.retain(|c| c.chat != chat);
            known.remove(&chat);
            let tail = tails.remove(&chat).unwrap_or_default();
            deleted.push((chat, tail.into_iter().map(|(_, e)| e.loc).collect::<Vec<Loc>>()));
        }
        Record::Erased(_) | Record::Commit => {}
    })?;
    // Chats held out before stay held out: nothing has repaired them.
    let mut unavailable: HashSet<ChatNo> = catalog.unavailable.iter().copied().collect();
    unavailable.extend(scanned.damaged);

    // A crash may have come between a deletion and its erasure: finish it.
    for (chat, tail) in deleted {
        erase_deleted(layout, &segments, chat, tail)?;
    }

    for (chat, tail) in tails {
        if unavailable.contains(&chat) {
            continue;
        }
        if !known.contains(&chat) {
            tracing::error!(chat, "the log holds messages of a chat it never created; ignoring them");
            continue;
        }
        match fold_tail(layout, &segments, chat, tail) {
            Ok(index) => snapshot::write(&layout.chat(chat), &index)?,
            Err(err) => {
                tracing::error!(chat, error = %err, "chat is held out of service");
                unavailable.insert(chat);
            }
        }
    }
    let end = scanned.end;
    catalog.pos = Some(end);
    catalog.unavailable = unavailable.iter().copied().collect();
    snapshot::write(&layout.catalog(), &catalog)?;
    Ok(Recovered { catalog, end, unavailable })
}

/// Overwrites every message record of a deleted chat: those its snapshot knows and those in
/// the replayed tail (or, if the snapshot is damaged, every one in the log).
fn erase_deleted(layout: &Layout, segments: &[u64], chat: ChatNo, tail: Vec<Loc>) -> Result<(), StoreError> {
    let known = match snapshot::read::<ChatIndex>(&layout.chat(chat)) {
        Ok(found) => found.map(|index| index.entries),
        Err(_) => Some(rebuild_index(layout, segments, chat).map(|index| index.entries).unwrap_or_default()),
    };
    let mut locs: Vec<Loc> = known.unwrap_or_default().into_iter().map(|e| e.loc).collect();
    locs.extend(tail);
    super::erase_in_place(layout, &locs)?;
    snapshot::remove(&layout.chat(chat))
}

/// Adds the log's newer entries to a chat's snapshot; a gap means the snapshot is missing
/// something, so the index is rebuilt from the whole log instead.
fn fold_tail(
    layout: &Layout,
    segments: &[u64],
    chat: ChatNo,
    tail: Vec<(u64, IndexEntry)>,
) -> Result<ChatIndex, StoreError> {
    let mut index = match snapshot::read::<ChatIndex>(&layout.chat(chat)) {
        Ok(found) => found.unwrap_or(ChatIndex { chat, entries: Vec::new() }),
        Err(err) => {
            tracing::error!(chat, error = %err, "chat snapshot is damaged; rebuilding it from the log");
            return rebuild_index(layout, segments, chat);
        }
    };
    for (seq, entry) in tail {
        let len = index.entries.len() as u64;
        if seq == len + 1 {
            index.entries.push(entry);
        } else if seq > len + 1 {
            tracing::warn!(chat, seq, len, "chat snapshot is behind the log; rebuilding it from the log");
            return rebuild_index(layout, segments, chat);
        }
    }
    Ok(index)
}

/// The slow path: a chat's index from every record of the log. Fails on any gap in seq.
pub fn rebuild_index(layout: &Layout, segments: &[u64], chat: ChatNo) -> Result<ChatIndex, StoreError> {
    let mut entries = Vec::new();
    let mut gap = None;
    let from = Pos { segment: segments.first().copied().unwrap_or(1), offset: 0 };
    let scanned = scan(layout, segments, from, Repair::ReadOnly, |loc, record| {
        if let Record::Message { chat: c, msg } = record {
            if c == chat {
                let expected = entries.len() as u64 + 1;
                if msg.seq == expected {
                    entries.push(IndexEntry { loc, client_id: msg.client_id });
                } else if msg.seq > expected && gap.is_none() {
                    gap = Some((expected, msg.seq));
                }
            }
        }
    })?;
    if scanned.damaged.contains(&chat) {
        return Err(StoreError::Corrupt(format!("a record of chat {chat} in the log is damaged")));
    }
    match gap {
        Some((expected, found)) => {
            Err(StoreError::Corrupt(format!("the log lacks message {expected} of chat {chat} (next found: {found})")))
        }
        None => Ok(ChatIndex { chat, entries }),
    }
}

pub fn list_segments(dir: &Path) -> Result<Vec<u64>, StoreError> {
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error)? {
        let name = entry.map_err(io_error)?.file_name();
        let name = name.to_string_lossy();
        if let Some(number) = name.strip_suffix(".wal").and_then(|n| n.parse::<u64>().ok()) {
            segments.push(number);
        }
    }
    segments.sort_unstable();
    Ok(segments)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Repair {
    /// Truncate a torn record at the end of the last segment (startup only).
    CutTornTail,
    ReadOnly,
}

/// What a scan found besides the records it visited.
struct Scanned {
    /// Where the log ends.
    end: Pos,
    /// Chats with a damaged record (before the tail) in the scanned part of the log.
    damaged: HashSet<ChatNo>,
}

/// Visits every record of every committed batch from `from` on.
///
/// The writer ends each batch with a `Commit` record, in the same write, before the batch's one
/// fsync. So a batch at the very end of the log whose commit is missing, or which is damaged with
/// no commit after the damage, was never made durable (under `fsync = "always"` nothing in it was
/// acknowledged): a torn write, cut off (at startup) with a warning. Damage followed by a later
/// commit is corruption, reported loudly: pinned on its chat when the frame header survived, else
/// on every chat with records in that segment, since we cannot tell whose it was.
fn scan(
    layout: &Layout,
    segments: &[u64],
    from: Pos,
    repair: Repair,
    mut visit: impl FnMut(Loc, Record),
) -> Result<Scanned, StoreError> {
    let mut scanned = Scanned { end: from, damaged: HashSet::new() };
    for (i, &segment) in segments.iter().enumerate().filter(|(_, &s)| s >= from.segment) {
        let path = segment_path(&layout.wal, segment);
        let bytes = fs::read(&path).map_err(io_error)?;
        let is_last = i + 1 == segments.len();
        let mut offset = if segment == from.segment { from.offset as usize } else { 0 };
        // The records read since the last commit, and where that batch began.
        let mut batch: Vec<(Loc, Record)> = Vec::new();
        let mut batch_start = offset;
        let mut seen_here = HashSet::new();
        let mut unattributed = false;
        while offset < bytes.len() {
            let (resume, owner) = match codec::read_frame(&bytes[offset..]) {
                Frame::Valid { payload, len, tag } => {
                    match codec::decode::<Record>(payload) {
                        Ok(Record::Commit) => {
                            batch.drain(..).for_each(|(loc, record)| visit(loc, record));
                            batch_start = offset + len;
                        }
                        Ok(record) => {
                            seen_here.insert(tag);
                            let pos = Pos { segment, offset: offset as u64 };
                            batch.push((Loc { pos, len: len as u32 }, record));
                        }
                        Err(err) => {
                            tracing::error!(segment, offset, chat = tag, error = %err, "CORRUPTION: a checksummed log record does not decode");
                            scanned.damaged.insert(tag);
                        }
                    }
                    offset += len;
                    continue;
                }
                // The zeros the writer lays ahead of the log: the data ends here.
                _ if bytes[offset..].iter().all(|&b| b == 0) => break,
                Frame::BadPayload { len, tag } => (offset + len, Some(tag)),
                Frame::Short | Frame::Bad => (offset + 1, None),
            };
            if is_last && next_commit(&bytes, resume).is_none() {
                break; // a torn final batch: cut below
            }
            let to = next_valid(&bytes, resume).unwrap_or(bytes.len());
            match owner {
                Some(chat) => {
                    tracing::error!(
                        segment,
                        from = offset,
                        to,
                        chat,
                        "CORRUPTION: a damaged log record before the end of the log; its chat is held out of service"
                    );
                    scanned.damaged.insert(chat);
                }
                None => {
                    tracing::error!(segment, from = offset, to, "CORRUPTION: unreadable bytes before the end of the log; every chat with records in this segment is held out of service");
                    unattributed = true;
                }
            }
            offset = to;
        }
        if unattributed {
            scanned.damaged.extend(seen_here);
        }
        if !is_last {
            // A later segment exists, so this one's last batch was made durable before it began.
            batch.drain(..).for_each(|(loc, record)| visit(loc, record));
            scanned.end = Pos { segment, offset: offset.min(bytes.len()) as u64 };
            continue;
        }
        // Whatever follows the last commit was never made durable.
        let tail = &bytes[batch_start.min(bytes.len())..];
        if !tail.iter().all(|&b| b == 0) && repair == Repair::CutTornTail {
            let (cut, dropped) = (tail.len(), batch.len());
            tracing::warn!(
                segment,
                offset = batch_start,
                cut,
                dropped,
                "the log ends in a torn write (a crash before its fsync); cutting it off"
            );
            let file = OpenOptions::new().write(true).open(&path).map_err(io_error)?;
            file.set_len(batch_start as u64).map_err(io_error)?;
            file.sync_all().map_err(io_error)?;
        }
        scanned.end = Pos { segment, offset: batch_start as u64 };
    }
    Ok(scanned)
}

/// The offset of the first whole, checksummed commit record at or after `from`.
fn next_commit(bytes: &[u8], from: usize) -> Option<usize> {
    (from..bytes.len()).find(|&at| match codec::read_frame(&bytes[at..]) {
        Frame::Valid { payload, .. } => matches!(codec::decode::<Record>(payload), Ok(Record::Commit)),
        _ => false,
    })
}

/// The first offset at or after `from` where a whole, checksummed, decodable record starts.
fn next_valid(bytes: &[u8], from: usize) -> Option<usize> {
    (from..bytes.len()).find(|&at| match codec::read_frame(&bytes[at..]) {
        Frame::Valid { payload, .. } => codec::decode::<Record>(payload).is_ok(),
        _ => false,
    })
}

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
    let from = catalog.pos.unwrap_or(Pos {
        segment: segments.first().copied().unwrap_or(1),
        offset: 0,
    });

    let mut known: HashSet<ChatNo> = catalog.chats.iter().map(|c| c.chat).collect();
    let mut tails: BTreeMap<ChatNo, Vec<(u64, IndexEntry)>> = BTreeMap::new();
    let mut unavailable = HashSet::new();
    let mut deleted = Vec::new();
    let end = scan(
        layout,
        &segments,
        from,
        Repair::CutTornTail,
        |loc, record| match record {
            Record::ChatCreated { chat, ns, meta } => {
                catalog.next_chat = catalog.next_chat.max(chat + 1);
                if known.insert(chat) {
                    catalog.chats.push(CatalogEntry { chat, ns, meta });
                }
            }
            Record::Message { chat, msg } => {
                tails.entry(chat).or_default().push((
                    msg.seq,
                    IndexEntry {
                        loc,
                        client_id: msg.client_id,
                    },
                ));
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
                deleted.push((
                    chat,
                    tail.into_iter().map(|(_, e)| e.loc).collect::<Vec<Loc>>(),
                ));
            }
            Record::Erased(_) => {}
        },
    )?;

    // A crash may have come between a deletion and its erasure: finish it.
    for (chat, tail) in deleted {
        erase_deleted(layout, &segments, chat, tail)?;
    }

    for (chat, tail) in tails {
        if !known.contains(&chat) {
            tracing::error!(
                chat,
                "the log holds messages of a chat it never created; ignoring them"
            );
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
    catalog.pos = Some(end);
    snapshot::write(&layout.catalog(), &catalog)?;
    Ok(Recovered {
        catalog,
        end,
        unavailable,
    })
}

/// Overwrites every message record of a deleted chat: those its snapshot knows and those in
/// the replayed tail (or, if the snapshot is damaged, every one in the log).
fn erase_deleted(
    layout: &Layout,
    segments: &[u64],
    chat: ChatNo,
    tail: Vec<Loc>,
) -> Result<(), StoreError> {
    let known = match snapshot::read::<ChatIndex>(&layout.chat(chat)) {
        Ok(found) => found.map(|index| index.entries),
        Err(_) => Some(
            rebuild_index(layout, segments, chat)
                .map(|index| index.entries)
                .unwrap_or_default(),
        ),
    };
    let mut locs: Vec<Loc> = known
        .unwrap_or_default()
        .into_iter()
        .map(|e| e.loc)
        .collect();
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
        Ok(found) => found.unwrap_or(ChatIndex {
            chat,
            entries: Vec::new(),
        }),
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
            tracing::warn!(
                chat,
                seq,
                len,
                "chat snapshot is behind the log; rebuilding it from the log"
            );
            return rebuild_index(layout, segments, chat);
        }
    }
    Ok(index)
}

/// The slow path: a chat's index from every record of the log. Fails on any gap in seq.
pub fn rebuild_index(
    layout: &Layout,
    segments: &[u64],
    chat: ChatNo,
) -> Result<ChatIndex, StoreError> {
    let mut entries = Vec::new();
    let mut gap = None;
    let from = Pos {
        segment: segments.first().copied().unwrap_or(1),
        offset: 0,
    };
    scan(layout, segments, from, Repair::ReadOnly, |loc, record| {
        if let Record::Message { chat: c, msg } = record {
            if c == chat {
                let expected = entries.len() as u64 + 1;
                if msg.seq == expected {
                    entries.push(IndexEntry {
                        loc,
                        client_id: msg.client_id,
                    });
                } else if msg.seq > expected && gap.is_none() {
                    gap = Some((expected, msg.seq));
                }
            }
        }
    })?;
    match gap {
        Some((expected, found)) => Err(StoreError::Corrupt(format!(
            "the log lacks message {expected} of chat {chat} (next found: {found})"
        ))),
        None => Ok(ChatIndex { chat, entries }),
    }
}

pub fn list_segments(dir: &Path) -> Result<Vec<u64>, StoreError> {
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error)? {
        let name = entry.map_err(io_error)?.file_name();
        let name = name.to_string_lossy();
        if let Some(number) = name
            .strip_suffix(".wal")
            .and_then(|n| n.parse::<u64>().ok())
        {
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

/// Visits every valid record from `from` on and returns where the log ends.
fn scan(
    layout: &Layout,
    segments: &[u64],
    from: Pos,
    repair: Repair,
    mut visit: impl FnMut(Loc, Record),
) -> Result<Pos, StoreError> {
    let mut end = from;
    for (i, &segment) in segments
        .iter()
        .enumerate()
        .filter(|(_, &s)| s >= from.segment)
    {
        let path = segment_path(&layout.wal, segment);
        let bytes = fs::read(&path).map_err(io_error)?;
        let is_last = i + 1 == segments.len();
        let mut offset = if segment == from.segment {
            from.offset as usize
        } else {
            0
        };
        while offset < bytes.len() {
            if let Frame::Valid { payload, len } = codec::read_frame(&bytes[offset..]) {
                match codec::decode::<Record>(payload) {
                    Ok(record) => {
                        let loc = Loc {
                            pos: Pos {
                                segment,
                                offset: offset as u64,
                            },
                            len: len as u32,
                        };
                        visit(loc, record);
                    }
                    Err(err) => {
                        tracing::error!(segment, offset, error = %err, "log record does not decode; skipped")
                    }
                }
                offset += len;
                continue;
            }
            match next_valid(&bytes, offset + 1) {
                None if is_last => {
                    if repair == Repair::CutTornTail {
                        tracing::warn!(
                            segment,
                            offset,
                            cut = bytes.len() - offset,
                            "the log ends in a torn record (an interrupted write); cutting it off"
                        );
                        let file = OpenOptions::new()
                            .write(true)
                            .open(&path)
                            .map_err(io_error)?;
                        file.set_len(offset as u64).map_err(io_error)?;
                        file.sync_all().map_err(io_error)?;
                    }
                    return Ok(Pos {
                        segment,
                        offset: offset as u64,
                    });
                }
                None => {
                    tracing::error!(
                        segment,
                        from = offset,
                        to = bytes.len(),
                        "CORRUPTION: unreadable bytes at the end of a log segment"
                    );
                    offset = bytes.len();
                }
                Some(next) => {
                    tracing::error!(
                        segment,
                        from = offset,
                        to = next,
                        "CORRUPTION: unreadable bytes in the log, followed by good records"
                    );
                    offset = next;
                }
            }
        }
        end = Pos {
            segment,
            offset: bytes.len() as u64,
        };
    }
    Ok(end)
}

/// The first offset at or after `from` where a whole, checksummed, decodable record starts.
fn next_valid(bytes: &[u8], from: usize) -> Option<usize> {
    (from..bytes.len()).find(|&at| match codec::read_frame(&bytes[at..]) {
        Frame::Valid { payload, .. } => codec::decode::<Record>(payload).is_ok(),
        _ => false,
    })
}

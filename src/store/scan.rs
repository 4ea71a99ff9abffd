//! Reading the log back: every record of every committed batch, in order, with what the end of
//! the log and any damage say. Recovery, and the slow rebuild of one chat, both read through here.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::codec::{self, Frame};
use super::record::{ChatNo, Loc, Pos, RecordView, NO_CHAT};
use super::wal::segment_path;
use super::{io_error, Layout, StoreError};

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
pub enum Repair {
    /// Truncate a torn record at the end of the last segment (startup only).
    CutTornTail,
    ReadOnly,
}

/// What a scan found besides the records it visited.
pub struct Scanned {
    /// Where the log ends.
    pub end: Pos,
    /// Chats with a damaged record (before the tail) in the scanned part of the log.
    pub damaged: HashSet<ChatNo>,
}

/// Which records a scan decodes and visits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Chats {
    All,
    /// Only this chat's (and the commits): every other record is checksummed but not decoded,
    /// so reading one chat back from the whole log runs at the speed of the disk and the CRC.
    Only(ChatNo),
}

/// Visits every record of every committed batch from `from` on. Records are decoded as views
/// that borrow from the segment's bytes ([`RecordView`]): no allocation for what nobody keeps.
///
/// The writer ends each batch with a `Commit` record, in the same write, before the batch's one
/// fsync. So a batch at the very end of the log whose commit is missing, or which is damaged with
/// no commit after the damage, was never made durable (under `fsync = "always"` nothing in it was
/// acknowledged): a torn write, cut off (at startup) with a warning. Damage followed by a later
/// commit is corruption, reported loudly: pinned on its chat when the frame header survived, else
/// on every chat with records in that segment, since we cannot tell whose it was.
pub fn scan(
    layout: &Layout,
    segments: &[u64],
    from: Pos,
    repair: Repair,
    chats: Chats,
    mut visit: impl FnMut(Loc, RecordView<'_>),
) -> Result<Scanned, StoreError> {
    let mut scanned = Scanned { end: from, damaged: HashSet::new() };
    let wanted = |tag: u64| match chats {
        Chats::All => true,
        Chats::Only(chat) => tag == chat || tag == NO_CHAT,
    };
    for (i, &segment) in segments.iter().enumerate().filter(|(_, &s)| s >= from.segment) {
        let path = segment_path(&layout.wal, segment);
        // Only what follows `from`: the checkpoint's segment is read from its position on.
        let base = if segment == from.segment { from.offset } else { 0 };
        let bytes = read_from(&path, base)?;
        let is_last = i + 1 == segments.len();
        let mut offset = 0;
        // The records read since the last commit, and where that batch began.
        let mut batch: Vec<(Loc, RecordView)> = Vec::new();
        let mut batch_start = offset;
        let mut seen_here = HashSet::new();
        let mut unattributed = false;
        while offset < bytes.len() {
            let (resume, owner) = match codec::read_frame(&bytes[offset..]) {
                Frame::Valid { len, tag, .. } if !wanted(tag) => {
                    seen_here.insert(tag);
                    offset += len;
                    continue;
                }
                Frame::Valid { payload, len, tag } => {
                    match codec::decode_record_view::<RecordView>(payload) {
                        Ok(RecordView::Commit) => {
                            batch.drain(..).for_each(|(loc, record)| visit(loc, record));
                            batch_start = offset + len;
                        }
                        Ok(record) => {
                            seen_here.insert(tag);
                            let pos = Pos { segment, offset: base + offset as u64 };
                            batch.push((Loc { pos, len: len as u32 }, record));
                        }
                        Err(err) => {
                            let offset = base + offset as u64;
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
            let (at, until) = (base + offset as u64, base + to as u64);
            match owner {
                Some(chat) => {
                    tracing::error!(
                        segment,
                        from = at,
                        to = until,
                        chat,
                        "CORRUPTION: a damaged log record before the end of the log; its chat is held out of service"
                    );
                    scanned.damaged.insert(chat);
                }
                None => {
                    tracing::error!(segment, from = at, to = until, "CORRUPTION: unreadable bytes before the end of the log; every chat with records in this segment is held out of service");
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
            scanned.end = Pos { segment, offset: base + offset.min(bytes.len()) as u64 };
            continue;
        }
        // Whatever follows the last commit was never made durable.
        let tail = &bytes[batch_start.min(bytes.len())..];
        if !tail.iter().all(|&b| b == 0) && repair == Repair::CutTornTail {
            let (cut, dropped) = (tail.len(), batch.len());
            tracing::warn!(
                segment,
                offset = base + batch_start as u64,
                cut,
                dropped,
                "the log ends in a torn write (a crash before its fsync); cutting it off"
            );
            let file = OpenOptions::new().write(true).open(&path).map_err(io_error)?;
            file.set_len(base + batch_start as u64).map_err(io_error)?;
            file.sync_all().map_err(io_error)?;
        }
        scanned.end = Pos { segment, offset: base + batch_start as u64 };
    }
    Ok(scanned)
}

/// A segment's bytes from `offset` to its end.
fn read_from(path: &Path, offset: u64) -> Result<Vec<u8>, StoreError> {
    if offset == 0 {
        return fs::read(path).map_err(io_error);
    }
    let mut file = File::open(path).map_err(io_error)?;
    let len = file.metadata().map_err(io_error)?.len();
    let mut bytes = Vec::with_capacity(len.saturating_sub(offset) as usize);
    file.seek(SeekFrom::Start(offset)).map_err(io_error)?;
    file.read_to_end(&mut bytes).map_err(io_error)?;
    Ok(bytes)
}

/// The offset of the first whole, checksummed commit record at or after `from`.
pub(super) fn next_commit(bytes: &[u8], from: usize) -> Option<usize> {
    (from..bytes.len()).find(|&at| match codec::read_frame(&bytes[at..]) {
        Frame::Valid { payload, .. } => {
            matches!(codec::decode_record_view::<RecordView>(payload), Ok(RecordView::Commit))
        }
        _ => false,
    })
}

/// The first offset at or after `from` where a whole, checksummed, decodable record starts.
pub(super) fn next_valid(bytes: &[u8], from: usize) -> Option<usize> {
    (from..bytes.len()).find(|&at| match codec::read_frame(&bytes[at..]) {
        Frame::Valid { payload, .. } => codec::decode_record_view::<RecordView>(payload).is_ok(),
        _ => false,
    })
}

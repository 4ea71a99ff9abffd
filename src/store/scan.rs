//! Reading the log back: every record of every committed batch, in order, with what the end of
//! the log and any damage say. Recovery, and the slow rebuild of one chat, both read through here.

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::path::Path;

use super::codec::{self, Frame};
use super::record::{ChatNo, Loc, Pos, Record};
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

/// Visits every record of every committed batch from `from` on.
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
                    match codec::decode_record::<Record>(payload) {
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
        Frame::Valid { payload, .. } => matches!(codec::decode_record::<Record>(payload), Ok(Record::Commit)),
        _ => false,
    })
}

/// The first offset at or after `from` where a whole, checksummed, decodable record starts.
fn next_valid(bytes: &[u8], from: usize) -> Option<usize> {
    (from..bytes.len()).find(|&at| match codec::read_frame(&bytes[at..]) {
        Frame::Valid { payload, .. } => codec::decode_record::<Record>(payload).is_ok(),
        _ => false,
    })
}

//! `chatd check`: every checksum of a stopped server's data dir, read only, damage pinned on the
//! chat it belongs to.
//!
//! What is read, and what it says:
//! - each log segment, frame by frame (`codec.rs`): a frame whose payload fails its checksum, or
//!   that does not decode, is damage to the chat its header names; bytes whose header fails too
//!   cannot be pinned on one chat, so (as recovery does) every chat with records in that segment
//!   is named. A segment missing from the numbering, and not listed as compacted away, is damage
//!   to the whole log. What follows the last commit of the newest segment is a write a crash left
//!   before its fsync, never acknowledged under `fsync = "always"`: a warning (the server cuts it
//!   at start), not damage;
//! - the catalog, each chat's metadata snapshot and index (a torn last index append is a warning:
//!   the next one cuts it off; an entry naming a place past the end of the log, or in a missing
//!   segment, is damage), and each old-format chat snapshot;
//! - the catalog's held-out chats: damage the server found before.
//!
//! Chats are named by namespace and id from the catalog and the log's creation records.
//! Nothing here opens a file for writing, and recovery's repairs do not run.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::Path;

use super::codec::{self, Frame};
use super::record::{Catalog, ChatHead, ChatNo, ChatSnapshot, IndexEntry, Pos, RecordView, NO_CHAT};
use super::scan::{list_segments, next_commit, next_valid};
use super::{index, io_error, snapshot, Layout, StoreError};

/// What check found about one chat.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ChatReport {
    pub namespace: Option<String>,
    pub id: Option<String>,
    /// Its records in the log (creation, messages, membership).
    pub records: u64,
    /// Its deletion is in the log.
    pub deleted: bool,
    pub damage: Vec<String>,
    pub warnings: Vec<String>,
}

/// What check found: by chat, and what belongs to no one chat.
#[derive(Debug, Default)]
pub struct Report {
    pub chats: BTreeMap<ChatNo, ChatReport>,
    pub damage: Vec<String>,
    pub warnings: Vec<String>,
    pub segments: u64,
    pub records: u64,
}

impl Report {
    /// Whether anything is damaged (warnings are not damage).
    pub fn damaged(&self) -> bool {
        !self.damage.is_empty() || self.chats.values().any(|c| !c.damage.is_empty())
    }

    fn chat(&mut self, chat: ChatNo) -> &mut ChatReport {
        self.chats.entry(chat).or_default()
    }
}

/// Checks the data dir at `data_dir`. Fails only if it is no data dir (no `wal/`) or cannot be
/// read; damage is in the report.
pub fn check(data_dir: &Path) -> Result<Report, StoreError> {
    let layout = Layout::new(data_dir);
    if !layout.wal.is_dir() {
        return Err(StoreError::Io(format!("{} is not a chatd data dir (it has no wal/)", data_dir.display())));
    }
    let mut report = Report::default();
    let checkpoint = check_catalog(&layout, &mut report);
    let segments = check_log(&layout, checkpoint, &mut report)?;
    if layout.snap.is_dir() {
        check_chat_files(&layout, &segments, &mut report)?;
    }
    Ok(report)
}

/// Answers the catalog's replay point.
fn check_catalog(layout: &Layout, report: &mut Report) -> Option<Pos> {
    match snapshot::read::<Catalog>(&layout.catalog()) {
        Ok(Some(catalog)) => {
            for entry in &catalog.chats {
                let chat = report.chat(entry.chat);
                chat.namespace = Some(entry.names.ns().to_string());
                chat.id = Some(entry.names.id().to_string());
            }
            for &held in &catalog.unavailable {
                report
                    .chat(held)
                    .damage
                    .push("the server holds this chat out of service: a check failed before".into());
            }
            catalog.pos
        }
        Ok(None) => None,
        Err(err) => {
            report.damage.push(format!("snap/catalog.snap: {err} (the server rebuilds it from the whole log)"));
            None
        }
    }
}

/// Answers each segment's length.
fn check_log(layout: &Layout, checkpoint: Option<Pos>, report: &mut Report) -> Result<HashMap<u64, u64>, StoreError> {
    let segments = list_segments(&layout.wal)?;
    report.segments = segments.len() as u64;
    let last = segments.last().copied().unwrap_or(0);
    // The catalog's segment existed when it was written.
    let highest = last.max(checkpoint.map_or(0, |pos| pos.segment));
    let mut lens = HashMap::new();
    // Segments log compaction removed are listed in `snap/compacted.snap` (`compact.rs`).
    let compacted = super::compact::removed(layout);
    let lost = |n: &u64| segments.binary_search(n).is_err() && compacted.binary_search(n).is_err();
    for missing in (1..=highest).filter(lost) {
        report.damage.push(format!("log segment {missing} is missing: its records are lost"));
    }
    for &segment in &segments {
        let path = super::wal::segment_path(&layout.wal, segment);
        let name = format!("wal/{}", path.file_name().and_then(|n| n.to_str()).unwrap_or_default());
        let bytes = fs::read(&path).map_err(io_error)?;
        check_segment(&name, &bytes, segment == last, report);
        lens.insert(segment, bytes.len() as u64);
    }
    Ok(lens)
}

/// Damage, if an index entry names a place the log does not have.
fn outside_log(entry: &IndexEntry, segments: &HashMap<u64, u64>) -> Option<String> {
    let Pos { segment, offset } = entry.loc.pos;
    match segments.get(&segment) {
        None => Some(format!("names a message in log segment {segment}, which is missing")),
        Some(&len) if offset + u64::from(entry.loc.len) > len => {
            Some(format!("names a message at {segment}:{offset}, past the end of that log segment"))
        }
        Some(_) => None,
    }
}

/// One segment's frames (see the module comment).
fn check_segment(name: &str, bytes: &[u8], is_last: bool, report: &mut Report) {
    let mut offset = 0;
    let mut committed = 0;
    let mut seen = HashSet::new();
    let mut unattributed = Vec::new();
    while offset < bytes.len() {
        let (resume, owner) = match codec::read_frame(&bytes[offset..]) {
            Frame::Valid { payload, len, tag } => {
                match codec::decode_record_view::<RecordView>(payload) {
                    Ok(record) => {
                        report.records += 1;
                        if matches!(record, RecordView::Commit) {
                            committed = offset + len;
                        }
                        if tag != NO_CHAT {
                            seen.insert(tag);
                        }
                        visit(report, record);
                    }
                    Err(err) => {
                        let at = format!("{name} at {offset}: a record whose checksum holds does not decode: {err}");
                        blame(report, tag, at, &mut unattributed);
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
        if is_last && next_commit(bytes, resume).is_none() {
            break; // a torn final write: warned of below
        }
        let to = next_valid(bytes, resume).unwrap_or(bytes.len());
        let at = format!("{name} bytes {offset}..{to}: a record fails its checksum");
        match owner {
            Some(tag) => blame(report, tag, at, &mut unattributed),
            None => unattributed.push(format!("{at}, its header too, so whose it was cannot be told")),
        }
        offset = to;
    }
    for why in &unattributed {
        report.damage.push(why.clone());
        for &chat in &seen {
            report.chat(chat).damage.push(format!("{why}; this chat has records in that segment"));
        }
    }
    let rest = &bytes[committed.min(bytes.len())..];
    if is_last && !rest.iter().all(|&b| b == 0) {
        let len = rest.iter().rposition(|&b| b != 0).map_or(0, |at| at + 1);
        report.warnings.push(format!(
            "{name} ends in a torn write at {committed} ({len} bytes after the last commit): what a crash before \
             its fsync leaves, never acknowledged under fsync = \"always\"; the server cuts it off at start"
        ));
    }
}

/// Damage pinned on the chat a frame's header names (or on none, for records of no chat).
fn blame(report: &mut Report, tag: u64, why: String, unattributed: &mut Vec<String>) {
    if tag == NO_CHAT {
        unattributed.push(why);
    } else {
        report.chat(tag).damage.push(why);
    }
}

fn visit(report: &mut Report, record: RecordView<'_>) {
    match record {
        RecordView::ChatCreated { chat, ns, meta } => {
            let found = report.chat(chat);
            found.namespace.get_or_insert_with(|| ns.as_str().to_string());
            found.id.get_or_insert_with(|| meta.id.as_str().to_string());
            found.records += 1;
        }
        RecordView::ChatDeleted { chat } => {
            let found = report.chat(chat);
            found.deleted = true;
            found.records += 1;
        }
        RecordView::Recreated { chat, ns, meta, .. } => {
            let found = report.chat(chat);
            found.namespace.get_or_insert_with(|| ns.as_str().to_string());
            found.id.get_or_insert_with(|| meta.id.as_str().to_string());
            found.records += 1;
        }
        RecordView::Message { chat, .. }
        | RecordView::Copied { chat, .. }
        | RecordView::ChatUpdated { chat, .. }
        | RecordView::Member { chat, .. } => {
            report.chat(chat).records += 1;
        }
        RecordView::Erased(_) | RecordView::Commit => {}
    }
}

fn check_chat_files(layout: &Layout, segments: &HashMap<u64, u64>, report: &mut Report) -> Result<(), StoreError> {
    let mut names: Vec<String> = fs::read_dir(&layout.snap)
        .map_err(io_error)?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort_unstable();
    for name in names {
        let Some((chat, ext)) = chat_file(&name) else { continue };
        let shown = format!("snap/{name}");
        let path = layout.snap.join(&name);
        match ext {
            "meta" => match snapshot::read::<ChatHead>(&path) {
                Ok(Some(head)) if head.chat != chat => {
                    report.chat(chat).damage.push(format!("{shown} names chat {}", head.chat))
                }
                Ok(Some(head)) => {
                    let read = index::read(&layout.index(chat), chat, true);
                    if let Ok(read) = read {
                        if read.mark.entries < head.indexed {
                            report.chat(chat).damage.push(format!(
                                "snap/chat-{chat:016x}.idx holds {} entries, its metadata snapshot says {}",
                                read.mark.entries, head.indexed
                            ));
                        }
                    }
                }
                Ok(None) => {}
                Err(err) => report.chat(chat).damage.push(format!("{shown}: {err}")),
            },
            "idx" => match index::read(&path, chat, false) {
                Ok(read) => {
                    if let Some(why) = read.entries.iter().find_map(|e| outside_log(e, segments)) {
                        report.chat(chat).damage.push(format!("{shown} {why}"));
                    }
                    if read.torn > 0 {
                        report.chat(chat).warnings.push(format!(
                            "{shown} ends in a torn append of {} bytes (a crash mid-checkpoint): the next one cuts it off",
                            read.torn
                        ));
                    }
                }
                Err(err) => report.chat(chat).damage.push(format!("{shown}: {err}")),
            },
            "snap" => match snapshot::read::<ChatSnapshot>(&path) {
                Ok(Some(old)) if old.chat != chat => {
                    report.chat(chat).damage.push(format!("{shown} names chat {}", old.chat))
                }
                Ok(_) => {}
                Err(err) => report.chat(chat).damage.push(format!("{shown}: {err}")),
            },
            _ => {}
        }
    }
    Ok(())
}

/// `chat-000000000000002a.meta` → (42, "meta").
fn chat_file(name: &str) -> Option<(ChatNo, &str)> {
    let (stem, ext) = name.strip_prefix("chat-")?.split_once('.')?;
    let chat = u64::from_str_radix(stem, 16).ok().filter(|_| stem.len() == 16)?;
    Some((chat, ext))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::record::Record;

    #[test]
    fn chat_files_are_named_by_their_number() {
        assert_eq!(chat_file("chat-000000000000002a.meta"), Some((42, "meta")));
        assert_eq!(chat_file("chat-000000000000002a.idx.tmp"), Some((42, "idx.tmp")));
        assert_eq!(chat_file("catalog.snap"), None);
        assert_eq!(chat_file("chat-2a.meta"), None);
    }

    /// A flipped payload byte is damage to the chat the frame names; a torn end of the newest
    /// segment only a warning; the same bytes in an older segment are damage.
    #[test]
    fn damage_is_pinned_on_its_chat_and_a_torn_end_is_a_warning() {
        let mut log = Vec::new();
        for chat in [1u64, 2] {
            let frame = codec::frame(&Record::ChatDeleted { chat }, chat);
            log.extend(frame.expect("frame")); // ok: test
        }
        log.extend(codec::frame(&Record::Commit, NO_CHAT).expect("frame")); // ok: test
        let whole = log.len();
        let mut bad = log.clone();
        bad[codec::HEADER_LEN + 1] ^= 1;
        let mut report = Report::default();
        check_segment("wal/1.wal", &bad, true, &mut report);
        assert_eq!(report.chat(1).damage.len(), 1, "{report:?}");
        assert!(report.chat(2).damage.is_empty() && report.damage.is_empty() && report.warnings.is_empty());

        log.extend(&codec::frame(&Record::ChatDeleted { chat: 2 }, 2).expect("frame")[..10]); // ok: test
        let mut report = Report::default();
        check_segment("wal/1.wal", &log, true, &mut report);
        assert!(!report.damaged() && report.warnings.len() == 1, "{report:?}");
        let mut report = Report::default();
        check_segment("wal/1.wal", &log, false, &mut report);
        assert!(report.damaged(), "a torn record before a later segment is damage");
        assert!(whole < log.len());
    }
}
